// Package integration decides whether a test that needs the real machine
// (root, binaries, a kernel feature) skips or fails: it skips with the
// reason and a hint, and fails when PODBOOT_INTEGRATION=1, as in CI, so a
// green run can never hide a skipped test. It imports only the standard
// library, so every test can use it, whatever it builds on.
package integration

import (
	"fmt"
	"os"
	"testing"
)

// Env is the environment variable that turns a skip into a failure.
const Env = "PODBOOT_INTEGRATION"

// Required reports whether integration tests must run (Env=1).
func Required() bool { return os.Getenv(Env) == "1" }

// Unavailable skips the test with the reason and a hint, or fails it when
// integration tests are required.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (%s=1: integration tests must run)", msg, Env)
	}
	t.Skipf("%s; set %s=1 to make this a failure", msg, Env)
}

// RequireRoot skips (or fails) a test that is not running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root: run as root after make build (sudo go test ...)")
	}
}
