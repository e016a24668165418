// Package lifecycle runs a container's postStart and preStop hooks as
// kubelet's lifecycle.HandlerRunner does (pkg/kubelet/lifecycle/
// handlers.go): exec in the container, httpGet, or sleep, each until it
// ends or its context does, and on failure kubelet's event message.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"github.com/podboot/podboot/agent/probe"
	"github.com/podboot/podboot/agent/runtime"
)

// maxRespBodyLength is how much of a hook's HTTP response body is read
// before the connection is closed (kubelet's, 10 KiB).
const maxRespBodyLength = 10 * 1 << 10

// EventRecorder records an event about obj; agent/store's Recorder
// satisfies it.
type EventRecorder interface {
	Eventf(obj k8sruntime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Runner runs lifecycle hook handlers.
type Runner struct {
	// Exec runs exec hooks in the container; nil makes an exec hook fail.
	Exec probe.Execer
	// UserAgent is sent by httpGet hooks unless their httpHeaders set
	// one: kubelet's "kube-lifecycle/<major>.<minor>"
	// (probe.UserAgent("lifecycle", version)).
	UserAgent string
	// Dial opens httpGet hooks' connections; nil = probe.DefaultDial.
	Dial probe.DialFunc
	// Events, when set, gets kubelet's LifecycleHTTPFallback warning on
	// the pod when an HTTPS hook is answered in plain HTTP and retried.
	Events EventRecorder
}

// Run runs one hook handler (exec, httpGet, sleep) against t until it ends
// or ctx ends. On failure it returns kubelet's event message (the one
// recorded with FailedPostStartHook / FailedPreStopHook) and a non-nil
// error. As in kubelet, an httpGet hook fails only when no response comes
// back: its status code is not looked at.
func (r *Runner) Run(ctx context.Context, h *corev1.LifecycleHandler, t probe.Target) (string, error) {
	name := ""
	if t.Container != nil {
		name = t.Container.Name
	}
	switch {
	case h != nil && h.Exec != nil:
		output, err := r.runExec(ctx, h.Exec.Command, t.ContainerID)
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q",
				h.Exec.Command, name, probe.FormatPod(t.Pod), err, output), err
		}
		return "", nil
	case h != nil && h.HTTPGet != nil:
		if err := r.runHTTP(ctx, h.HTTPGet, t); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v",
				h.HTTPGet.Path, name, probe.FormatPod(t.Pod), err), err
		}
		return "", nil
	case h != nil && h.Sleep != nil:
		if err := runSleep(ctx, h.Sleep.Seconds); err != nil {
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v",
				h.Sleep.Seconds, name, probe.FormatPod(t.Pod), err), err
		}
		return "", nil
	default:
		err := fmt.Errorf("invalid handler: %v", h)
		return fmt.Sprintf("Cannot run handler: %v", err), err
	}
}

// ExitError is an exec hook whose command exited non-zero, worded as
// kubelet's CRI client words it (the command's stderr after the code).
type ExitError struct {
	Exit   *runtime.ExitError
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("command '%s' exited with %d: %s", strings.Join(e.Exit.Cmd, " "), e.Exit.Code, e.Stderr)
}

func (e *ExitError) Unwrap() error { return e.Exit }

// runExec is kubelet's RunInContainer with no timeout of its own (ctx
// bounds it): the output is stdout then stderr when the command ran, and
// empty when it could not.
func (r *Runner) runExec(ctx context.Context, cmd []string, id string) (string, error) {
	if r.Exec == nil {
		return "", fmt.Errorf("exec %q in container %q: no exec runtime", cmd, id)
	}
	out, err := probe.RunInContainer(ctx, r.Exec, id, cmd, 0)
	if err == nil {
		return out.Combined(), nil
	}
	if exit, ok := errors.AsType[*runtime.ExitError](err); ok {
		if exit.Code == 0 {
			return out.Combined(), nil
		}
		return out.Combined(), &ExitError{Exit: exit, Stderr: string(out.Stderr)}
	}
	return "", err
}

// runSleep is kubelet's runSleepHandler.
func runSleep(ctx context.Context, seconds int64) error {
	timer := time.NewTimer(time.Duration(seconds) * time.Second)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return errors.New("container terminated before sleep hook finished")
	case <-timer.C:
		return nil
	}
}

// runHTTP is kubelet's runHTTPHandler: a GET built as a probe's (User-Agent
// kube-lifecycle), redirects followed to the same host only, and an HTTPS
// request answered in plain HTTP retried once in HTTP without its
// Authorization header.
func (r *Runner) runHTTP(ctx context.Context, h *corev1.HTTPGetAction, t probe.Target) error {
	if h.Host == "" && t.PodIP == "" {
		// kubelet asks the runtime for the pod's IPs and fails so when
		// there are none.
		return fmt.Errorf("failed to find networking container: pod %s has no IP", probe.FormatPod(t.Pod))
	}
	req, err := probe.NewRequest(h, t.Container, t.PodIP, r.UserAgent)
	if err != nil {
		return err
	}
	req = req.WithContext(ctx)
	dial := r.Dial
	if dial == nil {
		dial = probe.DefaultDial
	}
	tr, closeConns := probe.NewTransport(dial)
	// kubelet's lifecycle client is a plain transport: it accepts gzip.
	tr.DisableCompression = false
	defer closeConns()
	client := &http.Client{Transport: tr, CheckRedirect: probe.CheckRedirect}

	resp, err := client.Do(req)
	discardBody(resp)
	if isHTTPResponseError(err) {
		req := req.Clone(ctx)
		req.URL.Scheme = "http"
		req.Header.Del("Authorization")
		resp, httpErr := client.Do(req)
		discardBody(resp)
		if httpErr == nil {
			if r.Events != nil {
				r.Events.Eventf(t.Pod, corev1.EventTypeWarning, "LifecycleHTTPFallback",
					"request to HTTPS lifecycle hook %s got HTTP response, retry with HTTP succeeded", req.URL.Host)
			}
			err = nil
		}
	}
	return err
}

// discardBody reads a little of the body and closes it (kubelet's
// discardHTTPRespBody).
func discardBody(resp *http.Response) {
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	if resp.ContentLength <= maxRespBodyLength {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRespBodyLength))
	}
}

func isHTTPResponseError(err error) bool {
	if err == nil {
		return false
	}
	urlErr, ok := errors.AsType[*url.Error](err)
	return ok && strings.Contains(urlErr.Err.Error(), "server gave HTTP response to HTTPS client")
}
