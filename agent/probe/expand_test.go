package probe

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// TestExpandCommand checks kubelet's ExpandContainerCommandOnlyStatic on
// the cases of its expansion tests.
func TestExpandCommand(t *testing.T) {
	env := []corev1.EnvVar{
		{Name: "GREETING", Value: "hello"},
		{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}},
		{Name: "TWICE", Value: "first"},
		{Name: "TWICE", Value: "second"},
	}
	tests := []struct {
		in, want string
	}{
		{"echo $(GREETING)", "echo hello"},
		{"$(GREETING)$(GREETING)", "hellohello"},
		{"echo $(MISSING)", "echo $(MISSING)"},
		{"echo $(FROM_SECRET).", "echo ."},
		{"echo $(TWICE)", "echo second"},
		{"echo $$(GREETING)", "echo $(GREETING)"},
		{"cost $5 $", "cost $5 $"},
		{"open $(GREETING", "open $(GREETING"},
		{"no refs", "no refs"},
		{"$é", "$é"},
	}
	for _, tt := range tests {
		got := expandCommand([]string{"sh", "-c", tt.in}, env)
		if diff := cmp.Diff([]string{"sh", "-c", tt.want}, got); diff != "" {
			t.Errorf("expandCommand(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	if got := expandCommand(nil, env); got != nil {
		t.Errorf("expandCommand(nil) = %q, want nil", got)
	}
}
