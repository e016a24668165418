package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// guestEnv marks a run inside a podboot QEMU guest, where /dev/vsock and
// vsock_loopback belong to the test. On a host /dev/vsock is the
// machine's and must not be touched, so the test is skipped there.
const guestEnv = "PODBOOT_GUEST"

// TestIntegrationVsockLoopback serves a fake agent on AF_VSOCK and talks to
// it with --vsock 1:PORT over vsock_loopback.
func TestIntegrationVsockLoopback(t *testing.T) {
	if os.Getenv(guestEnv) != "1" {
		t.Skipf("runs only inside a podboot QEMU guest (%s=1, with vsock_loopback loaded); a host's /dev/vsock is not the tests'", guestEnv)
	}
	ln, err := vsock.ListenContextID(unix.VMADDR_CID_ANY, 0, nil)
	if err != nil {
		t.Fatalf("listen on vsock (modprobe vsock_loopback?): %v", err)
	}
	srv := &http.Server{Handler: &fakeAgent{t: t}}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*vsock.Addr).Port
	out, _, err := runPodctl(t, []string{"--vsock", "1:" + strconv.FormatUint(uint64(port), 10), "get", "pods"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "NAME") {
		t.Errorf("get pods over vsock:\n%s", out)
	}
}
