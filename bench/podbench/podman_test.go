package podbench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePodmanPodsAndCheckRunning(t *testing.T) {
	data, err := os.ReadFile("testdata/podman-pod-ps.json")
	if err != nil {
		t.Fatal(err)
	}
	pods, err := ParsePodmanPods(data)
	if err != nil {
		t.Fatalf("ParsePodmanPods: %v", err)
	}
	var names []string
	for _, p := range pods {
		names = append(names, p.Name+" "+p.Status)
	}
	if diff := cmp.Diff([]string{"podbench-x Running", "podbench-degraded Degraded"}, names); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}

	tests := []struct {
		names   []string
		wantErr string
	}{
		{[]string{"podbench-x"}, ""},
		{nil, ""},
		{[]string{"podbench-x", "podbench-degraded"}, `podman pod "podbench-degraded": status Degraded, want Running`},
		{[]string{"podbench-missing"}, `podman pod "podbench-missing": not found`},
	}
	for _, tt := range tests {
		err := CheckRunning(pods, tt.names)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("CheckRunning(%v) = %q, want %q", tt.names, got, tt.wantErr)
		}
	}

	if _, err := ParsePodmanPods([]byte("not json")); err == nil {
		t.Error("ParsePodmanPods of garbage: want an error")
	}
}

func TestPodmanCommands(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "args")
	t.Setenv("FAKE_PODMAN_LOG", logPath)
	t.Setenv("FAKE_PODMAN_PS", "testdata/podman-pod-ps.json")
	out, err := os.Create(filepath.Join(dir, "podman.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p := Podman{Bin: "testdata/fake-podman.sh", Runtime: "/bin/runc", Network: "none", Output: out}
	ctx := context.Background()

	if err := p.Load(ctx, "/tmp/busybox.tar"); err != nil {
		t.Errorf("Load: %v", err)
	}
	if took, err := p.Play(ctx, "/tmp/pod.yaml"); err != nil || took <= 0 {
		t.Errorf("Play = %v, %v; want a positive duration", took, err)
	}
	if _, err := p.Play(ctx, "/tmp/bad.yaml"); err == nil || !strings.Contains(err.Error(), "podman.log") {
		t.Errorf("Play of a failing manifest = %v, want an error naming the output file", err)
	}
	if err := p.RemovePods(ctx, "podbench-"); err != nil {
		t.Errorf("RemovePods: %v", err)
	}

	args, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"--runtime /bin/runc load -i /tmp/busybox.tar",
		"--runtime /bin/runc kube play --network none /tmp/pod.yaml",
		"--runtime /bin/runc kube play --network none /tmp/bad.yaml",
		"--runtime /bin/runc pod ps --filter name=^podbench- --format json",
		"--runtime /bin/runc pod rm --force --time 0 podbench-degraded podbench-x",
	}, "\n") + "\n"
	if diff := cmp.Diff(want, string(args)); diff != "" {
		t.Errorf("podman invocations (-want +got):\n%s", diff)
	}
	printed, _ := os.ReadFile(out.Name())
	if !strings.Contains(string(printed), "Error: bad manifest") {
		t.Errorf("podman.log = %q, want kube play's output", printed)
	}
}
