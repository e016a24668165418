package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

// podSnapshot is what the runtime holds for one pod.
type podSnapshot struct {
	ref        runtime.PodRef
	sandbox    *runtime.Sandbox
	containers []runtime.ContainerStatus
}

// fingerprint changes whenever an instance appears, goes or changes state.
func (p podSnapshot) fingerprint() string {
	var b strings.Builder
	if p.sandbox != nil {
		b.WriteString("sandbox;")
	}
	parts := make([]string, 0, len(p.containers))
	for _, c := range p.containers {
		parts = append(parts, fmt.Sprintf("%s:%s:%d:%t", c.ID, c.State, c.ExitCode, c.OOMKilled))
	}
	slices.Sort(parts)
	b.WriteString(strings.Join(parts, ";"))
	return b.String()
}

type snapshot struct {
	pods map[types.UID]podSnapshot
}

func listRuntime(ctx context.Context, rt runtime.Runtime) (snapshot, error) {
	sandboxes, err := rt.ListSandboxes(ctx)
	if err != nil {
		return snapshot{}, fmt.Errorf("list sandboxes: %w", err)
	}
	containers, err := rt.ListContainers(ctx)
	if err != nil {
		return snapshot{}, fmt.Errorf("list containers: %w", err)
	}
	s := snapshot{pods: map[types.UID]podSnapshot{}}
	for _, sb := range sandboxes {
		p := s.pods[sb.Pod.UID]
		p.ref = sb.Pod
		sb := sb
		p.sandbox = &sb
		s.pods[sb.Pod.UID] = p
	}
	for _, c := range containers {
		p := s.pods[c.Pod.UID]
		p.ref = c.Pod
		p.containers = append(p.containers, c)
		s.pods[c.Pod.UID] = p
	}
	return s, nil
}
