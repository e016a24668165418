package containerd

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestIntegrationVersion checks Version against what the containerd binary
// itself says ("containerd <pkg> <version> <revision>").
func TestIntegrationVersion(t *testing.T) {
	h := newHarness(t)
	got, err := h.r.Version(h.ctx)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	bin := filepath.Join(h.env.BinDir, "containerd")
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		t.Fatalf("%s --version printed %q", bin, out)
	}
	if want := fields[2]; got != want {
		t.Errorf("Version() = %q, want %q (from %s --version)", got, want, bin)
	}
}
