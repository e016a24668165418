package podagent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
)

// guestEnv marks a run inside a podboot QEMU guest, where AF_VSOCK and
// vsock_loopback are the test's to use. On a host /dev/vsock belongs to
// the machine: these tests never touch it there.
const guestEnv = "PODBOOT_GUEST"

// "off" and -1 turn the device listeners off: nothing is served and no
// credentials are written.
func TestDeviceListenersOff(t *testing.T) {
	flash := t.TempDir()
	cfg := Config{FlashDir: flash, NodeName: "board-1", DeviceListeners: true}
	ls, keeper, err := cfg.listeners(device.API{Listen: "off", VsockPort: -1}, http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if err != nil || len(ls) != 0 || keeper != nil {
		t.Fatalf("listeners = %d, keeper %v, err %v; want none", len(ls), keeper, err)
	}
	if entries, _ := os.ReadDir(flash); len(entries) != 0 {
		t.Errorf("flash written with HTTPS off: %v", entries)
	}
	// Without --device-listeners device.yaml's listeners are not served.
	cfg.DeviceListeners = false
	ls, _, err = cfg.listeners(device.API{Listen: "127.0.0.1:1", VsockPort: 10250}, http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if err != nil || len(ls) != 0 {
		t.Fatalf("without --device-listeners: %d listeners, err %v; want none", len(ls), err)
	}
	// A --listen that is not loopback is refused.
	cfg.Listen = "0.0.0.0:0"
	if _, _, err := cfg.listeners(device.API{}, http.NotFoundHandler(), slog.New(slog.DiscardHandler)); err == nil {
		t.Error("--listen 0.0.0.0:0 accepted")
	}
}

// TestIntegrationVsockLoopback serves the API on the vsock listener and
// reads it through vsock_loopback (CID 1), without a token.
func TestIntegrationVsockLoopback(t *testing.T) {
	if os.Getenv(guestEnv) != "1" {
		t.Skipf("runs only inside a podboot QEMU guest (%s=1, vsock_loopback loaded); a host's /dev/vsock is not the tests'", guestEnv)
	}
	const port = 10259
	st := store.New(time.Now)
	handler := api.New(st, nil, api.Options{NodeName: "board-1", GitVersion: KubernetesVersion})
	cfg := Config{FlashDir: t.TempDir(), NodeName: "board-1", DeviceListeners: true}
	ls, _, err := cfg.listeners(device.API{Listen: "off", VsockPort: port}, handler, slog.New(slog.DiscardHandler))
	if err != nil || len(ls) != 1 {
		t.Fatalf("listeners = %d, err %v; want vsock", len(ls), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		ls[0].serve(ctx, slog.New(slog.NewTextHandler(os.Stderr, nil)))
		close(done)
	}()
	defer func() {
		cancel()
		ls[0].srv.Shutdown(context.Background())
		<-done
	}()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return vsock.DialContext(ctx, 1, port, nil)
	}}}
	var body []byte
	for range 100 {
		resp, err := c.Get("http://vsock/api/v1/pods")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET /api/v1/pods over vsock: %d %s", resp.StatusCode, body)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(string(body), `"kind":"PodList"`) {
		t.Errorf("GET /api/v1/pods over vsock: %s", body)
	}
}
