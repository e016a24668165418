package kmod

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestParseLoadOrder(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
		wantErr  string
	}{
		{name: "empty", in: ""},
		{name: "order kept, blanks and comments skipped",
			in:   "# built by rootfs\n/lib/modules/6.1/kernel/crypto/crc32c_generic.ko\n\n  /lib/modules/6.1/kernel/fs/ext4/ext4.ko  \n",
			want: []string{"/lib/modules/6.1/kernel/crypto/crc32c_generic.ko", "/lib/modules/6.1/kernel/fs/ext4/ext4.ko"}},
		{name: "relative", in: "/a.ko\next4.ko\n", wantErr: `line 2: "ext4.ko" is not an absolute path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLoadOrder(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
}

type fakeProber struct {
	loaded []string
	errs   map[string]error
}

func (f *fakeProber) Load(path string) error {
	f.loaded = append(f.loaded, path)
	return f.errs[path]
}

func TestLoadAllGoesOn(t *testing.T) {
	f := &fakeProber{errs: map[string]error{
		"/m/crc32c_generic.ko": unix.EEXIST,
		"/m/virtio_net.ko":     fmt.Errorf("finit_module: %w", unix.ENOENT),
	}}
	paths := []string{"/m/crc32c_generic.ko", "/m/virtio_net.ko", "/m/ext4.ko.xz"}
	var got []string
	n, err := LoadAll(f, paths, func(r Result) {
		got = append(got, fmt.Sprintf("%s loaded=%v err=%v", r.Name(), r.Loaded, r.Err))
	})
	want := []string{
		"crc32c_generic loaded=false err=<nil>",
		"virtio_net loaded=false err=load module /m/virtio_net.ko: finit_module: no such file or directory",
		"ext4 loaded=true err=<nil>",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(paths, f.loaded); diff != "" {
		t.Errorf("load order (-want +got):\n%s", diff)
	}
	if n != 1 || err == nil || !strings.Contains(err.Error(), "virtio_net.ko") {
		t.Errorf("LoadAll = %d, %v; want 1 and the virtio_net error", n, err)
	}
}
