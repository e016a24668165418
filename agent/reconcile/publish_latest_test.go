package reconcile

import (
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// A label written while the worker is in a long sync (here the 30 s kill
// of a container whose image changed; on a board under TCG, a container
// start) shows in the published pod at once, and no publish of that sync
// takes it back out: the API starts its next write (kubectl annotate right
// after kubectl label) from the published pod, so a stale publish would
// lose the label for good.
func TestLabelDuringALongSyncIsNeverTakenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		rt.AddImage("busybox:1.37")
		rt.IgnoreSIGTERM("app", true) // the kill waits out the grace
		e := newEnv(t, rt, "")
		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
		pod.Labels = map[string]string{"app": "kubia"}
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		advance(time.Minute)

		newImage := pod.DeepCopy()
		newImage.Spec.Containers[0].Image = "busybox:1.37"
		e.m.SetDesired([]*corev1.Pod{newImage})
		advance(5 * time.Second) // the worker is killing app (30 s grace)

		labelled := newImage.DeepCopy()
		labelled.Labels["creation_method"] = "manual"
		e.m.SetDesired([]*corev1.Pod{labelled})
		synctest.Wait() // no time passes
		e.pub.mu.Lock()
		from := len(e.pub.history)
		e.pub.mu.Unlock()
		if got := e.pub.get("u1").Labels["creation_method"]; got != "manual" {
			t.Fatalf("published labels %v right after the write, want creation_method=manual at once", e.pub.get("u1").Labels)
		}

		advance(2 * time.Minute) // the kill ends, app starts with 1.37
		e.pub.mu.Lock()
		later := e.pub.history[from-1:]
		e.pub.mu.Unlock()
		for i, p := range later {
			if p.Labels["creation_method"] != "manual" {
				t.Errorf("publish %d after the label write has labels %v: the label was taken back", i, p.Labels)
			}
		}
		got := e.pub.get("u1")
		if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].RestartCount != 1 {
			t.Errorf("container statuses %+v, want app restarted once with the new image", got.Status.ContainerStatuses)
		}
	})
}
