package uki

import (
	"context"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/podboot/podboot/boards"
	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/rootfs/deb"
)

// stub fetches the pinned systemd-boot-efi into the repository's shared
// cache and returns its arm64 stub.
func stub(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"aarch64-linux-gnu-objcopy", "apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "needs %s: apt-get install binutils-aarch64-linux-gnu", tool)
		}
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	arch, err := boards.LoadArch("arm64")
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(root, ".cache")
	f := &deb.Fetcher{CacheDir: filepath.Join(cache, "debs"), AptDir: filepath.Join(cache, "apt"), Arch: "arm64", Printf: t.Logf}
	pkg, err := f.Fetch(context.Background(), arch.EFIStub)
	if err != nil {
		testenv.Unavailable(t, "fetch the EFI stub: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "stub")
	if _, err := deb.Extract(context.Background(), pkg, dir); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "usr/lib/systemd/boot/efi/linuxaa64.efi.stub")
}

// TestIntegrationBuild adds the sections to the real stub and reads them
// back with debug/pe.
func TestIntegrationBuild(t *testing.T) {
	stub := stub(t)
	dir := t.TempDir()
	files := map[string]string{}
	for _, n := range []string{"kernel", "initrd", "cmdline", "osrel"} {
		files[n] = filepath.Join(dir, n)
		os.WriteFile(files[n], []byte(n+" content"), 0o644)
	}
	out := filepath.Join(dir, "uki.efi")
	if err := Build(context.Background(), "aarch64-linux-gnu-objcopy", stub, out, Sections(files["kernel"], files["initrd"], files["cmdline"], files["osrel"])); err != nil {
		t.Fatal(err)
	}
	f, err := pe.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last uint32
	for _, name := range []string{".osrel", ".cmdline", ".initrd", ".linux"} {
		s := f.Section(name)
		if s == nil {
			t.Fatalf("section %s missing", name)
		}
		data, _ := s.Data()
		want := map[string]string{".osrel": "osrel", ".cmdline": "cmdline", ".initrd": "initrd", ".linux": "kernel"}[name] + " content"
		if string(data[:len(want)]) != want {
			t.Errorf("section %s holds %q, want %q", name, data, want)
		}
		if s.VirtualAddress <= last || s.VirtualAddress%0x1000 != 0 {
			t.Errorf("section %s at 0x%x: not after 0x%x or not aligned", name, s.VirtualAddress, last)
		}
		last = s.VirtualAddress
	}
}
