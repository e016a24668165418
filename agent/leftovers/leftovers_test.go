package leftovers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

type fakeRuntime struct {
	sandboxes  []runtime.Sandbox
	containers []runtime.ContainerStatus
	err        error
}

func (f fakeRuntime) ListSandboxes(context.Context) ([]runtime.Sandbox, error) {
	return f.sandboxes, f.err
}

func (f fakeRuntime) ListContainers(context.Context) ([]runtime.ContainerStatus, error) {
	return f.containers, nil
}

// fakeCgroups has pod cgroups with container cgroups in them.
type fakeCgroups struct {
	pods    map[types.UID][]string // pod UID → its container cgroups
	removed []types.UID
}

func (f *fakeCgroups) PodUIDs() ([]types.UID, error) {
	var uids []types.UID
	for uid := range f.pods {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	return uids, nil
}

func (f *fakeCgroups) RemovePod(uid types.UID) error {
	f.removed = append(f.removed, uid)
	delete(f.pods, uid)
	return nil
}

func (f *fakeCgroups) RemoveStrayContainers(uid types.UID, live func(string) bool) ([]string, error) {
	var gone []string
	f.pods[uid] = slices.DeleteFunc(f.pods[uid], func(id string) bool {
		if live(id) {
			return false
		}
		gone = append(gone, id)
		return true
	})
	return gone, nil
}

func sandbox(uid types.UID) runtime.Sandbox {
	return runtime.Sandbox{Pod: runtime.PodRef{UID: uid}}
}

func container(uid types.UID, id string, state runtime.ContainerState) runtime.ContainerStatus {
	return runtime.ContainerStatus{ID: id, Pod: runtime.PodRef{UID: uid}, State: state}
}

func TestCollect(t *testing.T) {
	for _, tc := range []struct {
		name         string
		rt           fakeRuntime
		dirs         []string // pod UIDs with directories under netns/ and kubelet/pods/
		cgroups      map[types.UID][]string
		want         Report // paths relative to the state directory
		wantCgroups  map[types.UID][]string
		wantErr      bool
		wantDirsLeft []string
	}{
		{
			name: "a pod with neither sandbox nor container is collected, one with either is kept",
			rt: fakeRuntime{
				sandboxes:  []runtime.Sandbox{sandbox("running")},
				containers: []runtime.ContainerStatus{container("running", "c1", runtime.ContainerRunning), container("norecord", "c2", runtime.ContainerRunning)},
			},
			dirs:    []string{"running", "norecord", "dead"},
			cgroups: map[types.UID][]string{"running": {"c1"}, "norecord": {"c2"}, "dead": {"c0"}},
			want: Report{
				PodDirs:    []string{"netns/dead", "kubelet/pods/dead"},
				PodCgroups: []types.UID{"dead"},
			},
			wantCgroups:  map[types.UID][]string{"running": {"c1"}, "norecord": {"c2"}},
			wantDirsLeft: []string{"netns/norecord", "netns/running", "kubelet/pods/norecord", "kubelet/pods/running"},
		},
		{
			name: "container cgroups of a kept pod go when their task is not live",
			rt: fakeRuntime{
				sandboxes: []runtime.Sandbox{sandbox("p")},
				containers: []runtime.ContainerStatus{
					container("p", "exited", runtime.ContainerExited),
					container("p", "running", runtime.ContainerRunning),
					container("p", "created", runtime.ContainerCreated),
					container("p", "unknown", runtime.ContainerUnknown),
				},
			},
			dirs:         []string{"p"},
			cgroups:      map[types.UID][]string{"p": {"created", "deleted", "exited", "running", "unknown"}},
			want:         Report{ContainerCgroups: []string{"deleted", "exited"}},
			wantCgroups:  map[types.UID][]string{"p": {"created", "running", "unknown"}},
			wantDirsLeft: []string{"netns/p", "kubelet/pods/p"},
		},
		{
			name:         "nothing is collected when the runtime cannot be listed",
			rt:           fakeRuntime{err: errors.New("containerd is gone")},
			dirs:         []string{"p"},
			cgroups:      map[types.UID][]string{"p": {"c"}},
			wantErr:      true,
			wantCgroups:  map[types.UID][]string{"p": {"c"}},
			wantDirsLeft: []string{"netns/p", "kubelet/pods/p"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			podDirs := []string{filepath.Join(state, "netns"), filepath.Join(state, "kubelet", "pods")}
			for _, uid := range tc.dirs {
				for _, d := range podDirs {
					if err := os.MkdirAll(filepath.Join(d, uid, "volumes"), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			cg := &fakeCgroups{pods: tc.cgroups}
			c := &Collector{Runtime: tc.rt, Cgroups: cg, PodDirs: podDirs}
			got, err := c.Collect(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("Collect: %v, want error %v", err, tc.wantErr)
			}
			for i, p := range got.PodDirs {
				got.PodDirs[i], _ = filepath.Rel(state, p)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCgroups, cg.pods); diff != "" {
				t.Errorf("cgroups left (-want +got):\n%s", diff)
			}
			var left []string
			for _, d := range podDirs {
				des, _ := os.ReadDir(d)
				for _, de := range des {
					rel, _ := filepath.Rel(state, filepath.Join(d, de.Name()))
					left = append(left, rel)
				}
			}
			if diff := cmp.Diff(tc.wantDirsLeft, left); diff != "" {
				t.Errorf("pod directories left (-want +got):\n%s", diff)
			}
		})
	}
}
