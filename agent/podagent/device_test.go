package podagent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "device.yaml")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d, err := loadDevice(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, d.mirrors()); diff != "" {
				t.Errorf("mirrors (-want +got):\n%s", diff)
			}
		})
	}
}
