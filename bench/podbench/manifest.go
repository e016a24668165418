package podbench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PodSpec is the shape of a benchmark pod: Containers identical containers
// running Command from Image, pulled only if absent.
type PodSpec struct {
	Name       string
	Containers int
	Image      string
	Command    []string
	// GracePeriod is terminationGracePeriodSeconds: `sleep` as PID 1 ignores
	// SIGTERM, so removing a pod always waits this long.
	GracePeriod int
}

// Manifest renders the pod as a Kubernetes v1 Pod manifest in YAML, the
// same document for podboot and for podman kube play.
func (s PodSpec) Manifest() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  labels:\n    app: podbench\n", s.Name)
	fmt.Fprintf(&b, "spec:\n  terminationGracePeriodSeconds: %d\n  containers:\n", s.GracePeriod)
	quoted := make([]string, len(s.Command))
	for i, arg := range s.Command {
		quoted[i] = strconv.Quote(arg)
	}
	for i := range s.Containers {
		fmt.Fprintf(&b, "  - name: c%d\n    image: %s\n    imagePullPolicy: IfNotPresent\n    command: [%s]\n",
			i, s.Image, strings.Join(quoted, ", "))
	}
	return []byte(b.String())
}

// Staged is a manifest written to a temporary file beside the pods
// directory, waiting to be renamed into it: the rename is the instant the
// agent's directory watcher sees a whole file, and the instant a latency
// is measured from.
type Staged struct {
	tmp, dst string
}

// Stage writes data to a temporary file in dir's parent, which must be on
// the same filesystem as dir, for Publish to rename to dir/name.
func Stage(dir, name string, data []byte) (Staged, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dir), "."+name+".*")
	if err != nil {
		return Staged{}, fmt.Errorf("stage manifest %q: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return Staged{}, fmt.Errorf("stage manifest %q: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return Staged{}, fmt.Errorf("stage manifest %q: %w", tmp.Name(), err)
	}
	return Staged{tmp: tmp.Name(), dst: filepath.Join(dir, name)}, nil
}

// Publish renames the staged file into the pods directory.
func (s Staged) Publish() error {
	if err := os.Rename(s.tmp, s.dst); err != nil {
		return fmt.Errorf("publish manifest %q: %w", s.dst, err)
	}
	return nil
}

// Discard removes a staged file that was never published.
func (s Staged) Discard() {
	os.Remove(s.tmp)
}
