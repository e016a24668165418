package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

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
