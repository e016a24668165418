package probe

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/expansion"
)

// expandCommand is kubelet's ExpandContainerCommandOnlyStatic: $(VAR) in
// an exec probe's command is replaced by the value of the container's env
// entry VAR as written in the spec (an entry with valueFrom has the empty
// value), a reference to an unknown name is left as written, and $$ is an
// escaped $.
func expandCommand(cmd []string, env []corev1.EnvVar) []string {
	if len(cmd) == 0 {
		return nil
	}
	vars := make(map[string]string, len(env))
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	mapping := expansion.MappingFuncFor(vars)
	out := make([]string, len(cmd))
	for i, arg := range cmd {
		out[i] = expansion.Expand(arg, mapping)
	}
	return out
}
