package volumes

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// A subPath that cannot be made or resolved fails with kubelet's message,
// which keeps the node's paths out of the pod's status and events, but
// keeps its cause: in the error chain (errors.Is, errors.As) and in the
// agent's log line.
func TestSubPathErrorsKeepTheCause(t *testing.T) {
	host := t.TempDir()
	outside := t.TempDir()
	for _, l := range []struct{ name, target string }{
		{"escape", outside},
		{"dangling", filepath.Join(host, "missing")},
	} {
		if err := os.Symlink(l.target, filepath.Join(host, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(host, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		subPath string
		want    string // the error's message: kubelet's
		wantIs  error  // a cause the chain must hold, if any
		cause   string // text the cause must contain
	}{
		{
			name:    "directory cannot be made under a dangling symlink",
			subPath: "dangling/x",
			want:    `failed to create subPath directory for volumeMount "host" of container "app"`,
			wantIs:  fs.ErrNotExist,
			cause:   `mkdir ` + filepath.Join(host, "dangling/x"),
		},
		{
			name:    "symlink out of the volume",
			subPath: "escape",
			want:    `failed to prepare subPath for volumeMount "host" of container "app"`,
			cause:   `subPath "escape" resolves to "` + outside + `", outside the volume's path "` + host + `"`,
		},
		{
			name:    "path through a file",
			subPath: "file/x",
			want:    `failed to prepare subPath for volumeMount "host" of container "app"`,
			wantIs:  syscall.ENOTDIR,
			cause:   `resolve subPath "file/x" of volume "host"`,
		},
		{
			name:    "backsteps",
			subPath: "a/../../etc",
			want:    "unable to provision SubPath `a/../../etc`: must not contain '..'",
			cause:   "must not contain '..'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := podWith(corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host}}})
			pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/c", SubPath: tt.subPath}}
			_, err := ContainerMounts(pod, &pod.Spec.Containers[0], filepath.Join(t.TempDir(), "pod"))
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			cause := errors.Unwrap(err)
			if cause == nil {
				t.Fatalf("%q has no cause", err)
			}
			if !strings.Contains(cause.Error(), tt.cause) {
				t.Errorf("cause %q, want it to contain %q", cause, tt.cause)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false; cause %q", err, tt.wantIs, cause)
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Warn("container mounts", "err", err)
			var line struct{ Err string }
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("log line %s: %v", buf.String(), err)
			}
			if !strings.HasPrefix(line.Err, tt.want) || !strings.Contains(line.Err, tt.cause) {
				t.Errorf("logged err %q, want the message %q with the cause %q", line.Err, tt.want, tt.cause)
			}
		})
	}
}
