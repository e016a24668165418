package containerd

import "strings"

// expand replaces $(VAR) references in input with their values, as kubelet
// does for env values, command and args (k8s.io/kubernetes
// third_party/forked/golang/expansion): $$ is an escaped $, a reference to
// an unknown variable is left as written, and a lone $ is kept.
func expand(input string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] != '$' || cursor+1 >= len(input) {
			continue
		}
		b.WriteString(input[checkpoint:cursor])
		read, isVar, advance := readVariableName(input[cursor+1:])
		if isVar {
			if v, ok := lookup(read); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + read + ")")
			}
		} else {
			b.WriteString(read)
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return b.String() + input[checkpoint:]
}

// readVariableName reads what follows a $: the name of a $(NAME) reference,
// or the text to keep when it is not one, and how many bytes it used.
func readVariableName(input string) (string, bool, int) {
	switch input[0] {
	case '$':
		return "$", false, 1
	case '(':
		for i := 1; i < len(input); i++ {
			if input[i] == ')' {
				return input[1:i], true, i + 1
			}
		}
		return "$(", false, 1
	default:
		return "$" + input[0:1], false, 1
	}
}
