package hosttools

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRequire(t *testing.T) {
	have := map[string]bool{"apt-get": true, "mkfs.ext4": true}
	lookup := func(n string) error {
		if have[n] {
			return nil
		}
		return fs.ErrNotExist
	}
	if err := Require(lookup, "apt-get", "mkfs.ext4"); err != nil {
		t.Errorf("Require(present tools) = %v", err)
	}
	err := Require(lookup, "apt-get", "mcopy", "mdir", "/usr/lib/aarch64-linux-gnu/libseccomp.a", "frobnicate")
	var me *MissingError
	if !errors.As(err, &me) {
		t.Fatalf("Require = %v, want *MissingError", err)
	}
	if diff := cmp.Diff([]string{"mtools", "libseccomp-dev:arm64", "frobnicate"}, me.Packages); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	want := "missing host tools: mcopy, mdir, /usr/lib/aarch64-linux-gnu/libseccomp.a, frobnicate; install them with: " +
		"dpkg --add-architecture arm64 && apt-get update && apt-get install -y mtools libseccomp-dev:arm64 frobnicate (or: make deps)"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
}
