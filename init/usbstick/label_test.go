package usbstick

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/testenv"
)

// mkfs makes a filesystem image of size with a host mkfs tool.
func mkfs(t *testing.T, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		testenv.Unavailable(t, "%s not installed (apt-get install -y e2fsprogs dosfstools)", tool)
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	// 40 MiB: big enough for FAT32 with one-sector clusters.
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 40<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, append(args, img)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return img
}

func readImage(t *testing.T, img string) (Filesystem, error) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ReadLabel(f)
}

// TestReadLabelImages reads labels from filesystems the host's mkfs tools
// make, as an operator's PC would make the stick.
func TestReadLabelImages(t *testing.T) {
	for _, tc := range []struct {
		name string
		tool string
		args []string
		want Filesystem
	}{
		{"ext4", "mkfs.ext4", []string{"-q", "-F", "-L", "PODBOOT-OTA"}, Filesystem{TypeExt4, "PODBOOT-OTA"}},
		{"ext4 without label", "mkfs.ext4", []string{"-q", "-F"}, Filesystem{TypeExt4, ""}},
		{"ext2", "mkfs.ext2", []string{"-q", "-F", "-L", "PODBOOT-OTA"}, Filesystem{TypeExt4, "PODBOOT-OTA"}},
		{"FAT32", "mkfs.vfat", []string{"-F", "32", "-n", "PODBOOT-OTA"}, Filesystem{TypeVFAT, "PODBOOT-OTA"}},
		{"FAT32, 8 sectors a cluster", "mkfs.vfat", []string{"-F", "32", "-s", "8", "-n", "PODBOOT-OTA"}, Filesystem{TypeVFAT, "PODBOOT-OTA"}},
		{"FAT16", "mkfs.vfat", []string{"-F", "16", "-n", "PODBOOT-OTA"}, Filesystem{TypeVFAT, "PODBOOT-OTA"}},
		{"FAT12", "mkfs.vfat", []string{"-F", "12", "-n", "PODBOOT-OTA"}, Filesystem{TypeVFAT, "PODBOOT-OTA"}},
		{"FAT with another label", "mkfs.vfat", []string{"-F", "32", "-n", "KINGSTON"}, Filesystem{TypeVFAT, "KINGSTON"}},
		{"FAT without label", "mkfs.vfat", []string{"-F", "32"}, Filesystem{TypeVFAT, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readImage(t, mkfs(t, tc.tool, tc.args...))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReadLabel (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadLabelRootDirectoryWins: Windows renames a FAT volume in its
// root directory only; the boot sector keeps the old label.
func TestReadLabelRootDirectoryWins(t *testing.T) {
	img := mkfs(t, "mkfs.vfat", "-F", "32", "-n", "PODBOOT-OTA")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The boot sector says NO NAME, as after a rename on Windows of a
	// stick formatted without a label.
	if _, err := f.WriteAt([]byte("NO NAME    "), bsLabel32); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := readImage(t, img)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Filesystem{TypeVFAT, "PODBOOT-OTA"}, got); diff != "" {
		t.Errorf("ReadLabel (-want +got):\n%s", diff)
	}
}

// fatBootSector is a FAT16 boot sector with a label and an empty root
// directory after it (1 reserved sector, 1 FAT of 1 sector).
func fatBootSector(label string) []byte {
	b := make([]byte, 4*512)
	le := binary.LittleEndian
	le.PutUint16(b[bpbBytesPerSector:], 512)
	b[bpbSecPerCluster] = 1
	le.PutUint16(b[bpbReservedSecs:], 1)
	b[bpbNumFATs] = 1
	le.PutUint16(b[bpbRootEntries:], 16)
	le.PutUint16(b[bpbFATSize16:], 1)
	b[bsBootSig16] = extBootSig
	copy(b[bsLabel16:bsLabel16+labelLen], label+"           ")
	b[bsSignature], b[bsSignature+1] = 0x55, 0xAA
	return b
}

func TestReadLabelSynthetic(t *testing.T) {
	mbr := make([]byte, 4096)
	mbr[bsSignature], mbr[bsSignature+1] = 0x55, 0xAA // a partition table: no BPB
	noSig := fatBootSector("PODBOOT-OTA")
	noSig[bsSignature] = 0
	noExt := fatBootSector("PODBOOT-OTA")
	noExt[bsBootSig16] = 0x28 // an old BPB: no label field
	badSector := fatBootSector("PODBOOT-OTA")
	binary.LittleEndian.PutUint16(badSector[bpbBytesPerSector:], 500)
	rootLabel := fatBootSector("OLD")
	copy(rootLabel[2*512:], "PODBOOT-OTA")
	rootLabel[2*512+11] = attrVolumeID
	deleted := fatBootSector("PODBOOT-OTA")
	copy(deleted[2*512:], "\xe5OLD       ")
	deleted[2*512+11] = attrVolumeID
	for _, tc := range []struct {
		name    string
		img     []byte
		want    Filesystem
		wantErr error
	}{
		{"FAT16 boot sector", fatBootSector("PODBOOT-OTA"), Filesystem{TypeVFAT, "PODBOOT-OTA"}, nil},
		{"root directory label", rootLabel, Filesystem{TypeVFAT, "PODBOOT-OTA"}, nil},
		{"deleted root directory label", deleted, Filesystem{TypeVFAT, "PODBOOT-OTA"}, nil},
		{"no extended boot signature", noExt, Filesystem{TypeVFAT, ""}, nil},
		{"zeros", make([]byte, 8192), Filesystem{}, ErrNoFilesystem},
		{"partition table", mbr, Filesystem{}, ErrNoFilesystem},
		{"no 0x55AA", noSig, Filesystem{}, ErrNoFilesystem},
		{"500-byte sectors", badSector, Filesystem{}, ErrNoFilesystem},
		{"shorter than a sector", make([]byte, 100), Filesystem{}, ErrNoFilesystem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadLabel(bytes.NewReader(tc.img))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReadLabel (-want +got):\n%s", diff)
			}
		})
	}
}

// errReader fails every read, as a dying stick does.
type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("input/output error") }

func TestReadLabelIOError(t *testing.T) {
	_, err := ReadLabel(errReader{})
	if err == nil || errors.Is(err, ErrNoFilesystem) {
		t.Fatalf("err = %v, want the read error (a device that may answer later), not ErrNoFilesystem", err)
	}
}

func TestFilesystemIs(t *testing.T) {
	for _, tc := range []struct {
		fs   Filesystem
		want bool
	}{
		{Filesystem{TypeVFAT, "PODBOOT-OTA"}, true},
		{Filesystem{TypeVFAT, "podboot-ota"}, true},
		{Filesystem{TypeExt4, "PODBOOT-OTA"}, true},
		{Filesystem{TypeExt4, "podboot-ota"}, false},
		{Filesystem{TypeExt4, "PODBOOT"}, false},
		{Filesystem{TypeVFAT, ""}, false},
	} {
		if got := tc.fs.Is(Label); got != tc.want {
			t.Errorf("%+v.Is(%q) = %t, want %t", tc.fs, Label, got, tc.want)
		}
	}
}
