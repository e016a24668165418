package modules

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/ulikunitz/xz"
)

// fakeModule is a minimal ELF64 relocatable file whose only content is a
// .modinfo section: what debug/elf and ModInfo read of a real module.
func fakeModule(t *testing.T, name, depends string) []byte {
	t.Helper()
	modinfo := []byte("license=GPL\x00depends=" + depends + "\x00name=" + name + "\x00alias=first\x00alias=second\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	infoOff := uint64(ehsize)
	strOff := infoOff + uint64(len(modinfo))
	shOff := strOff + uint64(len(shstr))
	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_AARCH64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(binary.Write(&b, binary.LittleEndian, hdr))
	b.Write(modinfo)
	b.Write(shstr)
	sections := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: infoOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	}
	for _, s := range sections {
		must(binary.Write(&b, binary.LittleEndian, s))
	}
	return b.Bytes()
}

func xzBytes(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	w, err := xz.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fakeTree is a module set shaped like Debian's: ext4 needs jbd2 and
// mbcache (and crc32c_generic, which it does not list), nf_nat needs
// nf_conntrack, one module is xz-compressed, one file name uses dashes.
func fakeTree(t *testing.T) fstest.MapFS {
	t.Helper()
	mod := func(name, deps string) *fstest.MapFile { return &fstest.MapFile{Data: fakeModule(t, name, deps)} }
	return fstest.MapFS{
		"kernel/crypto/crc32c_generic.ko":                mod("crc32c_generic", ""),
		"kernel/lib/crc16.ko":                            mod("crc16", ""),
		"kernel/fs/ext4/ext4.ko":                         mod("ext4", "mbcache,jbd2,crc16"),
		"kernel/fs/jbd2/jbd2.ko":                         mod("jbd2", ""),
		"kernel/fs/mbcache.ko":                           mod("mbcache", ""),
		"kernel/lib/libcrc32c.ko":                        mod("libcrc32c", ""),
		"kernel/net/netfilter/nf_conntrack.ko":           mod("nf_conntrack", "nf_defrag_ipv4,libcrc32c,nf_defrag_ipv6"),
		"kernel/net/netfilter/nf_nat.ko":                 mod("nf_nat", "nf_conntrack,libcrc32c"),
		"kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko":    mod("nf_defrag_ipv4", ""),
		"kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko.xz": {Data: xzBytes(t, fakeModule(t, "nf_defrag_ipv6", ""))},
		"kernel/fs/nls/nls_iso8859-1.ko":                 mod("nls_iso8859_1", ""),
		"kernel/net/loop/a.ko":                           mod("a", "b"),
		"kernel/net/loop/b.ko":                           mod("b", "a"),
		"kernel/net/broken.ko":                           mod("broken", "missing_one"),
		"kernel/net/notelf.ko":                           {Data: []byte("not an ELF file")},
		"modules.builtin":                                {Data: []byte("kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/block/virtio_blk.ko\n")},
	}
}

func TestResolve(t *testing.T) {
	tree, err := Open(fakeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		want        []string
		wantOrder   []string
		wantBuiltin []string
	}{
		{
			name:      "ext4 after crc32c_generic and its dependencies",
			want:      []string{"ext4"},
			wantOrder: []string{"crc32c_generic", "crc16", "jbd2", "mbcache", "ext4"},
		},
		{
			name:      "nf_nat pulls conntrack, libcrc32c, the xz module",
			want:      []string{"nf_nat"},
			wantOrder: []string{"crc32c_generic", "libcrc32c", "nf_defrag_ipv4", "nf_defrag_ipv6", "nf_conntrack", "nf_nat"},
		},
		{
			name:        "builtins are skipped, each module once, dashes normalized",
			want:        []string{"virtio_pci", "nls_iso8859-1", "ext4", "jbd2", "virtio-blk"},
			wantOrder:   []string{"nls_iso8859_1", "crc32c_generic", "crc16", "jbd2", "mbcache", "ext4"},
			wantBuiltin: []string{"virtio_pci", "virtio_blk"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mods, builtin, err := tree.Resolve(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range mods {
				got = append(got, m.Name)
			}
			if diff := cmp.Diff(tt.wantOrder, got); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBuiltin, builtin); diff != "" {
				t.Errorf("builtin (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tree, err := Open(fakeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ want, err string }{
		{"nosuch", "module nosuch: not in the kernel package"},
		{"broken", "module missing_one (needed by broken): not in the kernel package"},
		{"a", "dependency cycle"},
		{"notelf", "read ELF"},
	}
	for _, tt := range tests {
		_, _, err := tree.Resolve([]string{tt.want})
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Resolve(%s) = %v, want an error containing %q", tt.want, err, tt.err)
		}
	}
}

func TestLoadOrderAndDecompress(t *testing.T) {
	tree, err := Open(fakeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	mods, _, err := tree.Resolve([]string{"nf_defrag_ipv6", "jbd2"})
	if err != nil {
		t.Fatal(err)
	}
	want := "/lib/modules/6.1.0-test/kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko\n/lib/modules/6.1.0-test/kernel/fs/jbd2/jbd2.ko\n"
	if diff := cmp.Diff(want, string(LoadOrder("6.1.0-test", mods))); diff != "" {
		t.Errorf("load.order (-want +got):\n%s", diff)
	}
	data, err := tree.ReadFile(mods[0])
	if err != nil {
		t.Fatal(err)
	}
	info, err := ModInfo(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if info["name"] != "nf_defrag_ipv6" || info["alias"] != "first" {
		t.Errorf("modinfo of the decompressed module = %v", info)
	}
}

// The fake module is a well-formed ELF file that debug/elf opens as an
// arm64 relocatable object with a .modinfo section.
func TestFakeModuleIsELF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.ko")
	if err := os.WriteFile(path, fakeModule(t, "m", "x,y"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Section(".modinfo") == nil {
		t.Errorf("machine %v, sections %v", f.Machine, f.Sections)
	}
}
