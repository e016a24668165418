// Package expansion is kubelet's $(VAR) expansion, used for a container's
// env values, command and args and for exec probes' commands: a port of
// k8s.io/kubernetes v1.37.2 third_party/forked/golang/expansion (Apache
// License 2.0, The Kubernetes Authors; itself forked from Go's os.Expand),
// which is not importable outside that module. It must match kubelet
// byte for byte: $$ is an escaped $, a reference to an unknown variable is
// left as written, a lone $ is kept.
package expansion

import (
	"strings"
	"unicode/utf8"
)

const (
	operator        = '$'
	referenceOpener = '('
	referenceCloser = ')'
)

// syntaxWrap returns name wrapped in the expansion syntax: $(name).
func syntaxWrap(name string) string {
	return string(operator) + string(referenceOpener) + name + string(referenceCloser)
}

// MappingFuncFor returns a mapping for Expand that looks a name up in each
// of context in turn and leaves an unknown one as written.
func MappingFuncFor(context ...map[string]string) func(string) string {
	return func(name string) string {
		for _, vars := range context {
			if v, ok := vars[name]; ok {
				return v
			}
		}
		return syntaxWrap(name)
	}
}

// Expand replaces the variable references in input with what mapping
// gives for their names.
func Expand(input string, mapping func(string) string) string {
	var b strings.Builder
	checkpoint := 0
	for cursor := 0; cursor < len(input); cursor++ {
		if input[cursor] != operator || cursor+1 >= len(input) {
			continue
		}
		b.WriteString(input[checkpoint:cursor])
		read, isVar, advance := tryReadVariableName(input[cursor+1:])
		if isVar {
			b.WriteString(mapping(read))
		} else {
			b.WriteString(read)
		}
		cursor += advance
		checkpoint = cursor + 1
	}
	return b.String() + input[checkpoint:]
}

// tryReadVariableName reads what follows a $: the name of a $(NAME)
// reference, or the text to keep when it is not one, and how many bytes
// it used.
func tryReadVariableName(input string) (string, bool, int) {
	r, size := utf8.DecodeRuneInString(input)
	switch r {
	case operator:
		return input[0:size], false, size
	case referenceOpener:
		for i := 1; i < len(input); i++ {
			if input[i] == referenceCloser {
				return input[1:i], true, i + 1
			}
		}
		return string(operator) + string(referenceOpener), false, 1
	default:
		return string(operator) + string(r), false, size
	}
}
