package flash

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/testenv"
)

// fakeSuperblock is a device image with just a superblock.
func fakeSuperblock(label string, state uint16, incompat uint32, wtime uint32) []byte {
	b := make([]byte, 4096)
	sb := b[superblockOffset:]
	le := binary.LittleEndian
	le.PutUint16(sb[offMagic:], ext4Magic)
	le.PutUint16(sb[offState:], state)
	le.PutUint32(sb[offIncompat:], incompat)
	le.PutUint32(sb[offWtime:], wtime)
	copy(sb[offVolumeName:offVolumeName+16], label)
	return b
}

func TestReadSuperblock(t *testing.T) {
	for _, tc := range []struct {
		name        string
		img         []byte
		wantLabel   string
		wantUnclean string
		wantErr     error
	}{
		{"clean", fakeSuperblock("PODBOOT", stateValid, 0, 1700000000), "PODBOOT", "", nil},
		{"16-byte label", fakeSuperblock("ABCDEFGHIJKLMNOP", stateValid, 0, 0), "ABCDEFGHIJKLMNOP", "", nil},
		{"journal to replay", fakeSuperblock("PODBOOT", stateValid, incompatRecover, 0), "PODBOOT", "journal needs recovery (not cleanly unmounted)", nil},
		{"errors", fakeSuperblock("PODBOOT", stateValid|stateError, 0, 0), "PODBOOT", "errors recorded in the superblock", nil},
		{"not valid", fakeSuperblock("PODBOOT", 0, 0, 0), "PODBOOT", "not cleanly unmounted", nil},
		{"not ext4", make([]byte, 4096), "", "", ErrNotExt4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb, err := ReadSuperblock(bytes.NewReader(tc.img))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if sb.Label != tc.wantLabel || sb.Unclean() != tc.wantUnclean {
				t.Errorf("label %q unclean %q, want %q %q", sb.Label, sb.Unclean(), tc.wantLabel, tc.wantUnclean)
			}
		})
	}
	sb, _ := ReadSuperblock(bytes.NewReader(fakeSuperblock("X", 1, 0, 1700000000)))
	if want := time.Unix(1700000000, 0).UTC(); !sb.Written.Equal(want) {
		t.Errorf("written %v, want %v", sb.Written, want)
	}
	if _, err := ReadSuperblock(bytes.NewReader(make([]byte, 100))); err == nil {
		t.Error("short device: no error")
	}
}

// mkfs makes a real ext4 image with e2fsprogs, as the image builder does.
func mkfs(t *testing.T, label string) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		testenv.Unavailable(t, "mkfs.ext4 (e2fsprogs) not installed")
	}
	img := filepath.Join(t.TempDir(), label+".img")
	out, err := exec.Command(mkfs, "-q", "-F", "-L", label, img, "8M").CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	return img
}

func TestFindLabelOnRealExt4(t *testing.T) {
	other := mkfs(t, "OTHER")
	flash := mkfs(t, "PODBOOT")
	notfs := filepath.Join(t.TempDir(), "zero")
	os.WriteFile(notfs, make([]byte, 8192), 0o644)
	paths := []string{"/nonexistent", notfs, other, flash}
	d, err := FindLabel(paths, "PODBOOT")
	if err != nil {
		t.Fatal(err)
	}
	if d.Path != flash || d.Unclean() != "" {
		t.Errorf("found %s (unclean %q), want clean %s", d.Path, d.Unclean(), flash)
	}
	if _, err := FindLabel(paths[:3], "PODBOOT"); err == nil || !strings.Contains(err.Error(), `labelled "PODBOOT"`) {
		t.Errorf("no flash: err = %v", err)
	}
}

func TestWaitForLateDevice(t *testing.T) {
	flash := mkfs(t, "PODBOOT")
	calls := 0
	list := func() ([]string, error) {
		calls++
		if calls < 3 {
			return nil, nil // the driver has not probed the disk yet
		}
		return []string{flash}, nil
	}
	d, err := Wait(list, "PODBOOT", time.Minute, time.Millisecond)
	if err != nil || d.Path != flash {
		t.Fatalf("Wait = %v, %v", d.Path, err)
	}
	_, err = Wait(func() ([]string, error) { return nil, nil }, "PODBOOT", 5*time.Millisecond, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "find flash") {
		t.Errorf("Wait without a device: %v", err)
	}
}

// e2fsck -p on a real image: clean is 0; a damaged superblock state is
// fixed (1) and the result says so.
func TestFsckRealImage(t *testing.T) {
	e2fsck, err := exec.LookPath("e2fsck")
	if err != nil {
		testenv.Unavailable(t, "e2fsck (e2fsprogs) not installed")
	}
	img := mkfs(t, "PODBOOT")
	if r := Fsck(e2fsck, img); r.Code != 0 || !r.Fixed() {
		t.Errorf("clean image: %+v", r)
	}
	// Mark it "errors detected", as the kernel does on an ext4 error
	// (tune2fs keeps the superblock checksum right).
	if out, err := exec.Command("tune2fs", "-E", "force_fsck", img).CombinedOutput(); err != nil {
		t.Fatalf("tune2fs -E force_fsck: %v\n%s", err, out)
	}
	sb := readFile(t, img)
	if sb.Unclean() == "" {
		t.Fatal("marked image reads clean")
	}
	r := Fsck(e2fsck, img)
	if !r.Fixed() {
		t.Errorf("e2fsck -p on an image marked with errors: %+v (%s)", r, r.Meaning())
	}
	if got := readFile(t, img).Unclean(); got != "" {
		t.Errorf("after e2fsck -p: unclean %q", got)
	}
	if r := Fsck("/nonexistent/e2fsck", img); r.Fixed() || r.Meaning() != "did not run" {
		t.Errorf("missing e2fsck: %+v %s", r, r.Meaning())
	}
}

func readFile(t *testing.T, path string) Superblock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, err := ReadSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func TestFsckMeaning(t *testing.T) {
	var got []string
	for _, c := range []int{0, 1, 2, 4, 8, 12, 32} {
		r := FsckResult{Code: c}
		got = append(got, r.Meaning())
		if r.Fixed() != (c <= 2) {
			t.Errorf("code %d: Fixed() = %v", c, r.Fixed())
		}
	}
	want := []string{"no errors", "errors corrected", "errors corrected, reboot suggested", "errors left uncorrected", "operational error", "errors left uncorrected", "exit code 32"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("meanings (-want +got):\n%s", diff)
	}
}
