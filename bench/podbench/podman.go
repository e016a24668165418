package podbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Podman runs `podman kube play` as the yardstick for pod start latency.
type Podman struct {
	Bin string // "podman"
	// Runtime is the OCI runtime binary (podman --runtime): crun refuses
	// the hybrid cgroup layout of these hosts, and the same runc as
	// podboot's keeps the comparison about the two agents.
	Runtime string
	// Network is kube play's --network: "none" gives each pod a network
	// namespace with loopback only, as podboot's pods have today.
	Network string
	// Output receives kube play's output. A file and not a pipe, so that
	// the timing ends when kube play exits, not when the last holder of a
	// pipe closes it. Nil: discarded.
	Output *os.File
}

func (p Podman) command(ctx context.Context, args ...string) *exec.Cmd {
	var global []string
	if p.Runtime != "" {
		global = append(global, "--runtime", p.Runtime)
	}
	return exec.CommandContext(ctx, p.Bin, append(global, args...)...)
}

func (p Podman) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := p.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Load imports an image archive.
func (p Podman) Load(ctx context.Context, archive string) error {
	_, err := p.run(ctx, "load", "-i", archive)
	return err
}

// Play runs `podman kube play` of one manifest and returns how long it took
// from start to exit: kube play returns once it has started the pod's
// containers. Running tells whether they really run.
func (p Podman) Play(ctx context.Context, manifest string) (time.Duration, error) {
	args := []string{"kube", "play"}
	if p.Network != "" {
		args = append(args, "--network", p.Network)
	}
	args = append(args, manifest)
	cmd := p.command(ctx, args...)
	if p.Output != nil {
		cmd.Stdout, cmd.Stderr = p.Output, p.Output
	}
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		where := ""
		if p.Output != nil {
			where = " (output in " + p.Output.Name() + ")"
		}
		return took, fmt.Errorf("podman kube play %s: %w%s", manifest, err, where)
	}
	return took, nil
}

// PodmanPod is one pod of `podman pod ps --format json`.
type PodmanPod struct {
	Name       string
	Status     string
	Containers []struct {
		Names  string
		Status string
	}
}

// Pods lists the pods whose names start with prefix.
func (p Podman) Pods(ctx context.Context, prefix string) ([]PodmanPod, error) {
	out, err := p.run(ctx, "pod", "ps", "--filter", "name=^"+prefix, "--format", "json")
	if err != nil {
		return nil, err
	}
	return ParsePodmanPods(out)
}

// ParsePodmanPods decodes `podman pod ps --format json`.
func ParsePodmanPods(data []byte) ([]PodmanPod, error) {
	var pods []PodmanPod
	if err := json.Unmarshal(data, &pods); err != nil {
		return nil, fmt.Errorf("decode podman pod ps: %w", err)
	}
	return pods, nil
}

// CheckRunning verifies that each named pod is Running with every
// container (the infra container included) running.
func CheckRunning(pods []PodmanPod, names []string) error {
	byName := make(map[string]PodmanPod, len(pods))
	for _, p := range pods {
		byName[p.Name] = p
	}
	for _, name := range names {
		p, ok := byName[name]
		if !ok {
			return fmt.Errorf("podman pod %q: not found", name)
		}
		if p.Status != "Running" {
			return fmt.Errorf("podman pod %q: status %s, want Running", name, p.Status)
		}
		for _, c := range p.Containers {
			if c.Status != "running" {
				return fmt.Errorf("podman pod %q: container %s is %s, want running", name, c.Names, c.Status)
			}
		}
	}
	return nil
}

// RemovePods removes the pods whose names start with prefix, without a
// grace period: they are the benchmark's own.
func (p Podman) RemovePods(ctx context.Context, prefix string) error {
	pods, err := p.Pods(ctx, prefix)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return nil
	}
	names := make([]string, 0, len(pods))
	for _, pod := range pods {
		names = append(names, pod.Name)
	}
	slices.Sort(names)
	_, err = p.run(ctx, append([]string{"pod", "rm", "--force", "--time", "0"}, names...)...)
	return err
}
