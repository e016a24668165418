package podbench

import (
	"os"
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
