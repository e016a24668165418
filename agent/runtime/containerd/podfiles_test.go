package containerd

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// TestWritePodFiles: the files are kubelet's (pkg/kubelet/kubelet_pods.go
// nodeHostsFileContent and managedHostsFileContent) and containerd CRI's
// (hostname, resolv.conf), and every container of the pod mounts them.
func TestWritePodFiles(t *testing.T) {
	const nodeHosts = "127.0.0.1\tlocalhost\n192.168.7.2\tboard\n"
	aliases := []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}}
	resolv := []byte("nameserver 10.0.2.3\n")
	tests := []struct {
		name string
		sb   runtime.Sandbox
		cfg  runtime.SandboxConfig
		want map[string]string
	}{
		{
			name: "host network: the node's hosts file with kubelet's header and the hostAliases, the node's hostname",
			sb:   runtime.Sandbox{Pod: runtime.PodRef{UID: "u1"}, Hostname: "board"},
			cfg:  runtime.SandboxConfig{HostNetwork: true, HostAliases: aliases, ResolvConf: resolv},
			want: map[string]string{
				"hosts":       "# Kubernetes-managed hosts file (host network).\n" + nodeHosts + "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n",
				"hostname":    "board\n",
				"resolv.conf": "nameserver 10.0.2.3\n",
			},
		},
		{
			name: "host network without hostAliases or a resolver file",
			sb:   runtime.Sandbox{Pod: runtime.PodRef{UID: "u2"}, Hostname: "board"},
			cfg:  runtime.SandboxConfig{HostNetwork: true},
			want: map[string]string{
				"hosts":    "# Kubernetes-managed hosts file (host network).\n" + nodeHosts,
				"hostname": "board\n",
			},
		},
		{
			name: "own network: the managed file for the pod's IP",
			sb:   runtime.Sandbox{Pod: runtime.PodRef{UID: "u3"}, Hostname: "web", NetNS: "/run/netns/u3", IP: "10.88.0.5"},
			cfg:  runtime.SandboxConfig{Domain: "sub.default.svc.cluster.local", ResolvConf: resolv},
			want: map[string]string{
				"hosts": "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
					"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" +
					"10.88.0.5\tweb.sub.default.svc.cluster.local\tweb\n",
				"hostname":    "web\n",
				"resolv.conf": "nameserver 10.0.2.3\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostsFile := filepath.Join(t.TempDir(), "hosts")
			if err := os.WriteFile(hostsFile, []byte(nodeHosts), 0o644); err != nil {
				t.Fatal(err)
			}
			r := &Runtime{cfg: Config{StateDir: t.TempDir(), HostsFile: hostsFile}}
			if err := r.writePodFiles(tt.sb, tt.cfg); err != nil {
				t.Fatalf("writePodFiles: %v", err)
			}
			dir := r.podFilesDir(string(tt.sb.Pod.UID))
			got := map[string]string{}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				got[e.Name()] = string(b)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pod files (-want +got):\n%s", diff)
			}

			opts, err := r.podFileMounts(tt.sb, nil)
			if err != nil {
				t.Fatalf("podFileMounts: %v", err)
			}
			var spec specs.Spec
			if err := opts(context.Background(), nil, nil, &spec); err != nil {
				t.Fatal(err)
			}
			var wantMounts []string
			for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
				if _, ok := tt.want[name]; ok {
					wantMounts = append(wantMounts, filepath.Join(dir, name)+" on /etc/"+name)
				}
			}
			var gotMounts []string
			for _, m := range spec.Mounts {
				gotMounts = append(gotMounts, m.Source+" on "+m.Destination)
			}
			if diff := cmp.Diff(wantMounts, gotMounts); diff != "" {
				t.Errorf("container mounts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWritePodFilesNoNodeHosts: as kubelet's ensureHostsFile, a missing
// node hosts file is an error naming it, not an empty /etc/hosts.
func TestWritePodFilesNoNodeHosts(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "hosts")
	r := &Runtime{cfg: Config{StateDir: t.TempDir(), HostsFile: missing}}
	err := r.writePodFiles(runtime.Sandbox{Pod: runtime.PodRef{UID: "u1"}, Hostname: "board"}, runtime.SandboxConfig{HostNetwork: true})
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("writePodFiles = %v, want an error naming %s", err, missing)
	}
}

// TestPodFileMountsOwnVolume: a container that mounts a volume at
// /etc/hosts or /etc/resolv.conf keeps it; the pod's other files still go
// in.
func TestPodFileMountsOwnVolume(t *testing.T) {
	r := &Runtime{cfg: Config{StateDir: t.TempDir(), HostsFile: "/dev/null"}}
	sb := runtime.Sandbox{Pod: runtime.PodRef{UID: "u1"}, Hostname: "web", NetNS: "/run/netns/x"}
	if err := r.writePodFiles(sb, runtime.SandboxConfig{ResolvConf: []byte("nameserver 192.0.2.53\n")}); err != nil {
		t.Fatal(err)
	}
	own := []runtime.Mount{{HostPath: "/v/hosts", ContainerPath: "/etc/hosts"}, {HostPath: "/v/r", ContainerPath: "/etc/resolv.conf/"}}
	opts, err := r.podFileMounts(sb, own)
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := opts(context.Background(), nil, nil, &spec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range spec.Mounts {
		got = append(got, m.Destination)
	}
	if diff := cmp.Diff([]string{"/etc/hostname"}, got); diff != "" {
		t.Errorf("pod file mounts beside the container's own (-want +got):\n%s", diff)
	}
}
