package device

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadDevice(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" = no file
		want    map[string][]string
		wantErr string
	}{
		{name: "missing file is the defaults"},
		{name: "mirrors", content: "registries:\n  mirrors:\n    docker.io:\n      endpoint: [\"http://127.0.0.1:5000\", \"https://mirror.example\"]\n",
			want: map[string][]string{"docker.io": {"http://127.0.0.1:5000", "https://mirror.example"}}},
		{name: "unknown field", content: "registries:\n  mirror: {}\n", wantErr: `unknown field "mirror"`},
		{name: "no endpoint", content: "registries:\n  mirrors:\n    docker.io: {endpoint: []}\n", wantErr: `registries.mirrors["docker.io"].endpoint: Required value`},
		{name: "not yaml", content: "registries: [\n", wantErr: "device.yaml"},
		{name: "bad address", content: "network:\n  addresses: [192.168.1.20]\n", wantErr: `network.addresses[0]: Invalid value: "192.168.1.20"`},
		{name: "bad gateway", content: "network:\n  gateway: router\n", wantErr: `network.gateway: Invalid value: "router"`},
		{name: "bad vsock port", content: "api:\n  vsockPort: -2\n", wantErr: `api.vsockPort: Invalid value: -2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "device.yaml")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d, err := Load(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, d.Mirrors()); diff != "" {
				t.Errorf("mirrors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	d, err := Load(filepath.Join(t.TempDir(), "device.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if d.API.Listen != ":6443" || d.API.VsockPort != 10250 || d.Network.Static() || len(d.Clock.NTPServers) == 0 {
		t.Errorf("defaults = %+v", d)
	}
	path := filepath.Join(t.TempDir(), "device.yaml")
	if err := os.WriteFile(path, []byte("hostname: pi\nnetwork:\n  addresses: [192.168.1.20/24]\n  gateway: 192.168.1.1\napi:\n  listen: \"off\"\n  vsockPort: -1\nclock:\n  ntpServers: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Hostname != "pi" || !d.Network.Static() || d.API.Listen != "off" || d.API.VsockPort != -1 || len(d.Clock.NTPServers) != 0 {
		t.Errorf("loaded = %+v", d)
	}
}

func TestLoadNodeLogsImages(t *testing.T) {
	tests := []struct {
		name, content, wantErr string
	}{
		{name: "labels", content: "node:\n  labels: {disktype: ssd, site: greenhouse}\n"},
		{name: "bad label key", content: "node:\n  labels: {\"-bad\": x}\n", wantErr: `node.labels: Invalid value: "-bad"`},
		{name: "bad label value", content: "node:\n  labels: {disktype: \"a b\"}\n", wantErr: `node.labels[disktype]: Invalid value: "a b"`},
		{name: "well-known label", content: "node:\n  labels: {kubernetes.io/arch: amd64}\n", wantErr: `node.labels[kubernetes.io/arch]: Forbidden`},
		{name: "log sizes", content: "logs:\n  containerLogMaxSize: 2Mi\n  containerLogMaxFiles: 3\n  containerLogMaxTotal: 32Mi\n"},
		{name: "bad log size", content: "logs:\n  containerLogMaxSize: lots\n", wantErr: `logs.containerLogMaxSize: Invalid value: "lots"`},
		{name: "one log file", content: "logs:\n  containerLogMaxFiles: 1\n", wantErr: `logs.containerLogMaxFiles: Invalid value: 1`},
		{name: "offline fallback off", content: "images:\n  offlineFallback: false\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "device.yaml")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLogsAndImagesDefaults(t *testing.T) {
	d, err := Load(filepath.Join(t.TempDir(), "device.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Logs.MaxSize(); got != 1<<20 {
		t.Errorf("containerLogMaxSize = %d, want 1Mi", got)
	}
	if got := d.Logs.ContainerLogMaxFiles; got != 2 {
		t.Errorf("containerLogMaxFiles = %d, want 2", got)
	}
	if got := d.Logs.MaxTotal(); got != 64<<20 {
		t.Errorf("containerLogMaxTotal = %d, want 64Mi", got)
	}
	if !d.Images.UseStoredWhenOffline() {
		t.Error("offline fallback is off by default, want on")
	}
	off := false
	if (Images{OfflineFallback: &off}).UseStoredWhenOffline() {
		t.Error("offlineFallback: false still falls back")
	}
}

func TestOTA(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "device.yaml")
	good := "ota:\n  keys: [\"ed25519:AAAA\", \"ed25519:BBBB\"]\n  threshold: 2\n  source: oci://127.0.0.1:5000/fleet/edge:stable\n  insecure: true\n  pollInterval: 30s\n  healthDeadline: 2m\n  stableFor: 10s\n"
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	o := d.OTA
	if !o.Enabled() || o.MinSigners() != 2 || o.SourceRef() != "127.0.0.1:5000/fleet/edge:stable" || !o.Insecure ||
		o.Poll() != 30*time.Second || o.Deadline() != 2*time.Minute || o.Stable() != 10*time.Second {
		t.Errorf("ota = %+v", o)
	}
	if def := (OTA{}); def.Enabled() || def.Poll() != 5*time.Minute || def.Deadline() != 5*time.Minute || def.Stable() != time.Minute || def.MinSigners() != 1 {
		t.Errorf("defaults = %+v", def)
	}
	for _, bad := range []string{
		"ota:\n  keys: [a]\n  threshold: 2\n",
		"ota:\n  source: registry:5000/x:y\n",
		"ota:\n  stableFor: -1s\n",
		"ota:\n  sauce: x\n",
	} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("Load(%q) = nil error, want one", bad)
		}
	}
}
