package expansion

import "testing"

// Cases from kubelet's expansion tests (third_party/forked/golang/expansion
// expand_test.go, TestExpand), plus non-ASCII text after a $.
func TestExpand(t *testing.T) {
	vars := map[string]string{"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}
	other := map[string]string{"VAR_A": "shadowed", "VAR_D": "D"}
	mapping := MappingFuncFor(vars, other)
	tests := []struct{ in, want string }{
		{"$(VAR_A)", "A"},
		{"___$(VAR_B)___", "___B___"},
		{"$(VAR_A)-$(VAR_A)", "A-A"},
		{"$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"},
		{"$(VAR_REF)", "$(VAR_A)"},
		{"foo$(VAR_EMPTY)bar", "foobar"},
		{"$(VAR_D)", "D"},
		{"$(VAR_DNE)", "$(VAR_DNE)"},
		{"$$(VAR_A)", "$(VAR_A)"},
		{"$$$(VAR_A)", "$A"},
		{"$$$$(VAR_A)", "$$(VAR_A)"},
		{"$(VAR_A", "$(VAR_A"},
		{"$VAR_A", "$VAR_A"},
		{"$", "$"},
		{"foo$", "foo$"},
		{"$$", "$"},
		{"$()", "$()"},
		{"$(VAR_A)$", "A$"},
		{"f00__(VAR_A)__", "f00__(VAR_A)__"},
		{"$(VAR_A)__$(VAR_B)__", "A__B__"},
		{"$(VAR_A)___$(VAR_DNE)", "A___$(VAR_DNE)"},
		{"$é$(VAR_A)", "$éA"},
		{"$$é", "$é"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Expand(tt.in, mapping); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
