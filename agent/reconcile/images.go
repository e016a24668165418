package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/backoff"
	"github.com/podboot/podboot/agent/runtime"
)

// ensureImage is kubelet's EnsureImageExists: honour the pull policy, back
// off failed pulls per pod and image, and record the events and waiting
// reasons kubelet does. It reports whether the container can be created.
func (w *worker) ensureImage(ctx context.Context, pod *corev1.Pod, c corev1.Container, field string) (runtime.Image, bool) {
	rt, ev := w.m.cfg.Runtime, w.m.cfg.Events
	policy := pullPolicy(c)
	fail := func(reason, message string) (runtime.Image, bool) {
		ev.EventfOnField(pod, field, corev1.EventTypeWarning, "Failed", "Error: %s", reason)
		w.setWaiting(c.Name, reason, message)
		w.syncFailed()
		return runtime.Image{}, false
	}
	if policy != corev1.PullAlways {
		img, err := rt.EnsureImage(ctx, c.Image, corev1.PullNever)
		switch {
		case err == nil:
			ev.EventfOnField(pod, field, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
			return img, true
		case !errors.Is(err, runtime.ErrImageNeverPull):
			msg := fmt.Sprintf("Failed to inspect image %q: %v", c.Image, err)
			ev.EventfOnField(pod, field, corev1.EventTypeWarning, "InspectFailed", "%s", msg)
			return fail("ImageInspectError", msg)
		case policy == corev1.PullNever:
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			ev.EventfOnField(pod, field, corev1.EventTypeWarning, "ErrImageNeverPull", "%s", msg)
			return fail("ErrImageNeverPull", msg)
		}
	}

	key := backoff.ImageKey(pod.UID, c.Image)
	now := w.m.cfg.Now()
	if w.m.images.IsInBackOffSinceUpdate(key, now) {
		msg := fmt.Sprintf("Back-off pulling image %q", c.Image)
		ev.EventfOnField(pod, field, corev1.EventTypeNormal, "BackOff", "%s", msg)
		if prev, ok := w.pullErrs[key]; ok {
			msg = fmt.Sprintf("%s: %s", msg, prev)
		}
		w.retryAtLeast(w.m.images.LastUpdate(key).Add(w.m.images.Get(key)))
		return fail("ImagePullBackOff", msg)
	}
	delete(w.pullErrs, key)
	ev.EventfOnField(pod, field, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	img, err := rt.EnsureImage(ctx, c.Image, policy)
	took := w.m.cfg.Now().Sub(now).Truncate(time.Millisecond)
	if err != nil {
		cause := err
		var pe *runtime.PullError
		if errors.As(err, &pe) && pe.Err != nil {
			cause = pe.Err
		}
		if img, ok := w.storedWhenOffline(ctx, pod, c, field, pe, cause); ok {
			return img, true
		}
		ev.EventfOnField(pod, field, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", c.Image, cause)
		now := w.m.cfg.Now()
		w.m.images.Next(key, now, now)
		w.m.state.markDirty()
		if w.pullErrs == nil {
			w.pullErrs = map[string]string{}
		}
		w.pullErrs[key] = "ErrImagePull: " + cause.Error()
		w.retryAtLeast(now.Add(w.m.images.Get(key)))
		return fail("ErrImagePull", cause.Error())
	}
	// kubelet also reports "Image size: N bytes."; runtime.Image has no size.
	ev.EventfOnField(pod, field, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v (%v including waiting)", c.Image, took, took)
	return img, true
}

// offlineFallbackReason is the Warning event's reason when a container runs
// the stored image because no registry answered its pull. kubelet has no
// such event: it never runs an image it failed to pull.
const offlineFallbackReason = "OfflineFallback"

// storedWhenOffline is the offline fallback (Config.OfflineImageFallback):
// when no registry answered the pull (pe says so, not just any failed
// pull) and the image is in the store, the container runs that image and
// a Warning says so. Nothing goes into the pull backoff: the next start
// pulls again, as kubelet's policy Always does, so the image is updated as
// soon as a registry answers.
func (w *worker) storedWhenOffline(ctx context.Context, pod *corev1.Pod, c corev1.Container, field string, pe *runtime.PullError, cause error) (runtime.Image, bool) {
	if !w.m.cfg.OfflineImageFallback || pe == nil || !pe.RegistryUnreachable {
		return runtime.Image{}, false
	}
	img, err := w.m.cfg.Runtime.EnsureImage(ctx, c.Image, corev1.PullNever)
	if err != nil {
		// Not in the store (or unreadable): the pull's failure stands.
		return runtime.Image{}, false
	}
	ev := w.m.cfg.Events
	ev.EventfOnField(pod, field, corev1.EventTypeWarning, offlineFallbackReason,
		"Failed to pull image %q, no registry answered: %v; running the image already present on machine", c.Image, cause)
	ev.EventfOnField(pod, field, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
	return img, true
}

// syncErrorRetry is kubelet's pod worker backOffPeriod: a sync that
// failed (an image pull, a container that could not be created, a
// crash-loop backoff) is retried this soon, so a pull backoff shows as
// ImagePullBackOff and a fixed cause is picked up.
const syncErrorRetry = 10 * time.Second

// syncFailed makes the worker sync again within syncErrorRetry.
func (w *worker) syncFailed() {
	w.retryAtLeast(w.m.cfg.Now().Add(syncErrorRetry))
}

// retryAtLeast makes the worker wake by t.
func (w *worker) retryAtLeast(t time.Time) {
	if w.retryAt.IsZero() || t.Before(w.retryAt) {
		w.retryAt = t
	}
}

// pullPolicy is the API server's default when the manifest left it empty:
// Always for :latest or untagged images, IfNotPresent otherwise.
func pullPolicy(c corev1.Container) corev1.PullPolicy {
	if c.ImagePullPolicy != "" {
		return c.ImagePullPolicy
	}
	name := c.Image
	if i := strings.LastIndex(name, "@"); i >= 0 {
		return corev1.PullIfNotPresent
	}
	if i := strings.LastIndex(name, ":"); i < 0 || strings.Contains(name[i:], "/") || name[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}
