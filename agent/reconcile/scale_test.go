package reconcile

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// podsNamed returns n two-container pods named p0..p<n-1>.
func podsNamed(n int) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		p := newTestPod(types.UID(fmt.Sprintf("u%d", i)), corev1.RestartPolicyAlways, "a", "b")
		p.Name = fmt.Sprintf("p%d", i)
		out = append(out, p)
	}
	return out
}

func (p *publisher) published() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.history)
}

// TestPodStartCostDoesNotGrowWithPods starts 50 pods one at a time, on a
// runtime whose list costs 1 ms per container, and checks that starting a
// pod lists nothing and takes no time whatever the number already running.
func TestPodStartCostDoesNotGrowWithPods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		rt.SetListCost(time.Millisecond)
		e := newEnv(t, rt, "")
		e.m.SetDesired(nil)
		e.run()
		defer e.stop()
		pods := podsNamed(50)
		type cost struct {
			Lists      int
			Listed     int
			Took       time.Duration
			Publishes  int
			OthersSeen int // publishes of other pods
		}
		var got, want []cost
		for i := range pods {
			lists, listed := rt.ListCount()
			pubs := e.pub.published()
			start := time.Now()
			e.m.SetDesired(pods[:i+1])
			synctest.Wait()
			if st := e.status(pods[i].UID); st.Phase != corev1.PodRunning {
				t.Fatalf("pod %d: phase %s", i, st.Phase)
			}
			l2, n2 := rt.ListCount()
			c := cost{Lists: l2 - lists, Listed: n2 - listed, Took: time.Since(start), Publishes: e.pub.published() - pubs}
			e.pub.mu.Lock()
			for _, p := range e.pub.history[pubs:] {
				if p.UID != pods[i].UID {
					c.OthersSeen++
				}
			}
			e.pub.mu.Unlock()
			got = append(got, c)
			// Published at once, after the sandbox, after each container.
			want = append(want, cost{Publishes: 4})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("per-pod start cost (-want +got):\n%s", diff)
		}
	})
}

// TestIdlePodsCostOneRelistPerPeriod: 50 running pods, a minute with
// nothing happening: one list per relist period, nothing republished, the
// state file not rewritten.
func TestIdlePodsCostOneRelistPerPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		stateFile := t.TempDir() + "/agent-state.json"
		e := newEnv(t, rt, stateFile)
		e.m.SetDesired(podsNamed(50))
		e.run()
		defer e.stop()
		advance(time.Second) // the debounced state write
		lists, _ := rt.ListCount()
		pubs := e.pub.published()
		writes := 0
		e.m.state.mu.Lock()
		saved := string(e.m.state.saved)
		e.m.state.mu.Unlock()
		for range 60 {
			advance(time.Second)
			e.m.state.mu.Lock()
			if string(e.m.state.saved) != saved {
				writes++
			}
			e.m.state.mu.Unlock()
		}
		l2, _ := rt.ListCount()
		type idle struct{ Lists, Publishes, StateWrites int }
		if diff := cmp.Diff(idle{Lists: 6}, idle{Lists: l2 - lists, Publishes: e.pub.published() - pubs, StateWrites: writes}); diff != "" {
			t.Errorf("a minute idle (-want +got):\n%s", diff)
		}
		if saved == "" {
			t.Error("state file never written")
		}
	})
}
