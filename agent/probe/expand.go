package probe

import (
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
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
	out := make([]string, len(cmd))
	for i, arg := range cmd {
		out[i] = expand(arg, vars)
	}
	return out
}

// expand is kubelet's third_party/forked/golang/expansion.Expand with
// MappingFuncFor(vars).
func expand(input string, vars map[string]string) string {
	var b strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] != '$' || cursor+1 >= len(input) {
			continue
		}
		b.WriteString(input[checkpoint:cursor])
		read, isVar, advance := readVariableName(input[cursor+1:])
		switch {
		case !isVar:
			b.WriteString(read)
		case hasKey(vars, read):
			b.WriteString(vars[read])
		default:
			b.WriteString("$(" + read + ")")
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return b.String() + input[checkpoint:]
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// readVariableName reads what follows a $: the name of a $(NAME)
// reference, or the text to keep when it is not one, and how many bytes
// it used.
func readVariableName(input string) (string, bool, int) {
	r, size := utf8.DecodeRuneInString(input)
	switch r {
	case '$':
		return input[:size], false, size
	case '(':
		for i := 1; i < len(input); i++ {
			if input[i] == ')' {
				return input[1:i], true, i + 1
			}
		}
		return "$(", false, 1
	default:
		return "$" + string(r), false, size
	}
}
