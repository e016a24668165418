package podbench

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/procfs"
)

// testdata/proc holds two nodes: ours under /tmp/b/state (devnode 100,
// podagent 101, containerd 102, shims 103-105, 105 already gone from
// smaps) and another under /tmp/other, plus a podagent whose state
// directory only shares a prefix with ours.
func testProc(t *testing.T) procfs.FS {
	t.Helper()
	fs, err := procfs.NewFS("testdata/proc")
	if err != nil {
		t.Fatalf("open fixture /proc: %v", err)
	}
	return fs
}

func TestNodeProcesses(t *testing.T) {
	tests := []struct {
		name string
		node Node
		want []Process
	}{
		{
			name: "by state directory and descent",
			node: Node{StateDir: "/tmp/b/state", DevnodePID: 100},
			want: []Process{{101, RoleAgent}, {102, RoleContainerd}, {103, RoleShim}, {104, RoleShim}, {105, RoleShim}},
		},
		{
			name: "another node's state directory",
			node: Node{StateDir: "/tmp/other"},
			want: []Process{{200, RoleContainerd}, {202, RoleShim}},
		},
		{
			name: "agent by descent alone",
			node: Node{StateDir: "/tmp/nothing", DevnodePID: 100},
			want: []Process{{101, RoleAgent}},
		},
		{
			name: "nothing",
			node: Node{StateDir: "/tmp/nothing"},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.node.Proc = testProc(t)
			got, err := tt.node.Processes()
			if err != nil {
				t.Fatalf("Processes: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Processes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeMemory(t *testing.T) {
	n := Node{Proc: testProc(t), StateDir: "/tmp/b/state", DevnodePID: 100}
	got, err := n.Memory()
	if err != nil {
		t.Fatalf("Memory: %v", err)
	}
	want := Memory{Agent: 20000 << 10, Containerd: 40000 << 10, Shims: 11000 << 10, ShimCount: 2, AgentThreads: 8}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Memory (-want +got):\n%s", diff)
	}
	if got, want := got.Total(), uint64(71000<<10); got != want {
		t.Errorf("Total = %d, want %d", got, want)
	}
}

func TestNodeMemoryNeedsAgentAndContainerd(t *testing.T) {
	n := Node{Proc: testProc(t), StateDir: "/tmp/other"}
	if m, err := n.Memory(); err == nil {
		t.Errorf("Memory of a node without podagent = %+v, want an error", m)
	}
}

func TestNodeAgentAndCPUTime(t *testing.T) {
	n := Node{Proc: testProc(t), StateDir: "/tmp/b/state", DevnodePID: 100}
	pid, err := n.Agent()
	if err != nil {
		t.Fatalf("Agent: %v", err)
	}
	if pid != 101 {
		t.Errorf("Agent = %d, want 101", pid)
	}
	cpu, err := n.CPUTime(pid)
	if err != nil {
		t.Fatalf("CPUTime: %v", err)
	}
	if want := 3800 * time.Millisecond; cpu != want {
		t.Errorf("CPUTime = %v, want %v", cpu, want)
	}
	if _, err := n.CPUTime(999); err == nil {
		t.Error("CPUTime of a missing pid: want an error")
	}
	if pid, err := (Node{Proc: testProc(t), StateDir: "/tmp/nothing"}).Agent(); err == nil {
		t.Errorf("Agent of a node without one = %d, want an error", pid)
	}
}
