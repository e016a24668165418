package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// publishedView is what `kubectl get pods` and the conditions show of one
// published version, and which runtime calls had been made by then.
func publishedView(p *corev1.Pod, calls []string) string {
	var cs []string
	for _, c := range p.Status.ContainerStatuses {
		cs = append(cs, c.Name+"="+stateString(c.State))
	}
	var conds []string
	for _, c := range p.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	var made []string
	for _, c := range calls {
		if strings.HasPrefix(c, "RunSandbox") || strings.HasPrefix(c, "StartContainer") {
			made = append(made, strings.Fields(c)[0])
		}
	}
	return fmt.Sprintf("%s %s [%s] calls=%s", p.Status.Phase, strings.Join(cs, " "), strings.Join(conds, " "), strings.Join(made, ","))
}

func TestNewPodPublishedBeforeAnyRuntimeWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		var views []string
		var created []bool
		e.pub.onPublish = func(p *corev1.Pod) {
			views = append(views, publishedView(p, rt.Calls()))
			created = append(created, !p.CreationTimestamp.IsZero())
		}
		e.run()
		defer e.stop()
		e.m.SetDesired([]*corev1.Pod{newTestPod("u1", corev1.RestartPolicyAlways, "a", "b")})
		synctest.Wait()

		want := []string{
			"Pending a=waiting ContainerCreating b=waiting ContainerCreating [PodReadyToStartContainers=False Initialized=True Ready=False ContainersReady=False PodScheduled=True] calls=",
			"Pending a=waiting ContainerCreating b=waiting ContainerCreating [PodReadyToStartContainers=True Initialized=True Ready=False ContainersReady=False PodScheduled=True] calls=RunSandbox",
			"Pending a=running b=waiting ContainerCreating [PodReadyToStartContainers=True Initialized=True Ready=False ContainersReady=False PodScheduled=True] calls=RunSandbox,StartContainer",
			"Running a=running b=running [PodReadyToStartContainers=True Initialized=True Ready=True ContainersReady=True PodScheduled=True] calls=RunSandbox,StartContainer,StartContainer",
		}
		if diff := cmp.Diff(want, views); diff != "" {
			t.Errorf("published versions (-want +got):\n%s", diff)
		}
		if slices.Contains(created, false) {
			t.Errorf("a version was published without creationTimestamp: %v", created)
		}
	})
}

// TestImagePullBackOffShownWithoutWake: as kubelet's pod worker retries a
// failed sync after 10 s, a failing pull shows ErrImagePull, then
// ImagePullBackOff while the pull backoff (now 20 s) lasts, with nothing
// else waking the pod.
func TestImagePullBackOffShownWithoutWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.SetPullError("busybox:1.36", errors.New("not found"))
		e := newEnv(t, rt, "")
		e.m.SetDesired([]*corev1.Pod{newTestPod("u1", corev1.RestartPolicyAlways, "app")})
		e.run()
		defer e.stop()
		var got []string
		for range 3 {
			got = append(got, containerState(e.status("u1"), "app"))
			advance(10 * time.Second)
		}
		want := []string{
			"waiting ErrImagePull: not found restarts=0",
			"waiting ErrImagePull: not found restarts=0", // the second pull, 10 s later, fails too
			`waiting ImagePullBackOff: Back-off pulling image "busybox:1.36": ErrImagePull: not found restarts=0`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("app over time (-want +got):\n%s", diff)
		}
	})
}
