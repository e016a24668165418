package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/podboot/podboot/internal/integration"
)

// IntegrationEnv is the environment variable that turns a skip into a
// failure.
const IntegrationEnv = integration.Env

// Unavailable skips the test with the reason and a hint, or fails it when
// PODBOOT_INTEGRATION=1 (see internal/integration).
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	integration.Unavailable(t, format, args...)
}

// RequireRoot skips (or fails) a test that is not running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	integration.RequireRoot(t)
}

// RepoRoot is the directory of the module's go.mod, found by walking up from
// the working directory (a test's is its package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// SharedEnv names the shared folder (design notes, conformance examples)
// when it is not beside the repository; make test sets it.
const SharedEnv = "PODBOOT_SHARED"

// ConformanceDir is the Kubernetes website examples folder,
// <shared>/conformance/k8s-website, used in place and never copied.
func ConformanceDir(t testing.TB) string {
	t.Helper()
	shared := os.Getenv(SharedEnv)
	if shared == "" {
		root, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		shared = filepath.Join(root, "..", "shared")
	}
	dir := filepath.Join(shared, "conformance", "k8s-website")
	if _, err := os.Stat(dir); err != nil {
		Unavailable(t, "needs the conformance examples at %s (the shared/ folder beside the repository, or %s): %v", dir, SharedEnv, err)
	}
	return dir
}
