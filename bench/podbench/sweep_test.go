package podbench

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/procfs"
)

func TestMountsUnder(t *testing.T) {
	var mounts []*procfs.MountInfo
	for _, p := range []string{
		"/",
		"/tmp/b/state/netns",
		"/tmp/b/state/netns/uid/net",
		"/tmp/b/state/netns/uid/net", // mounted twice
		"/tmp/b/state/containerd/state/io.containerd.runtime.v2.task/podboot/abc/rootfs",
		"/tmp/b/state-other/netns",
		"/tmp/b/state",
	} {
		mounts = append(mounts, &procfs.MountInfo{MountPoint: p})
	}
	want := []string{
		"/tmp/b/state/containerd/state/io.containerd.runtime.v2.task/podboot/abc/rootfs",
		"/tmp/b/state/netns/uid/net",
		"/tmp/b/state/netns/uid/net",
		"/tmp/b/state/netns",
		"/tmp/b/state",
	}
	if diff := cmp.Diff(want, MountsUnder(mounts, "/tmp/b/state")); diff != "" {
		t.Errorf("MountsUnder (-want +got):\n%s", diff)
	}
	if got := MountsUnder(mounts, "/nothing"); got != nil {
		t.Errorf("MountsUnder(/nothing) = %v, want none", got)
	}
}
