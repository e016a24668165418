package integration

import "testing"

func TestRequired(t *testing.T) {
	t.Setenv(Env, "1")
	if !Required() {
		t.Errorf("%s=1: Required() = false", Env)
	}
	t.Setenv(Env, "")
	if Required() {
		t.Errorf("%s unset: Required() = true", Env)
	}
}
