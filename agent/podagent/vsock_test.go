package podagent

import (
	"log/slog"
	"net/http"
	"os"
	"testing"

	"github.com/podboot/podboot/internal/device"
)

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
