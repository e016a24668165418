// Package testenv is the integration test harness: a private containerd with
// runc (Containerd), the stand-in images as docker archives (Images), and a
// registry on 127.0.0.1 (Registry).
//
// What a test needs but the machine lacks (root, the binaries that
// `make build` puts in <repo>/bin) makes it skip with a hint, or fail when
// PODBOOT_INTEGRATION=1 (as in CI), so a green CI run cannot hide a skipped
// integration test.
package testenv
