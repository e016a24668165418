package flashwear

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiff(t *testing.T) {
	before := Files{
		"/":                 {Inode: 2, Dir: true, Mtime: 10, Ctime: 10},
		"/pods":             {Inode: 12, Dir: true, Mtime: 10, Ctime: 10},
		"/pods/web.yaml":    {Inode: 13, Size: 300, Mtime: 10, Ctime: 10, Atime: 10, Hash: "aa"},
		"/pods/old.yaml":    {Inode: 14, Size: 200, Mtime: 10, Ctime: 10, Hash: "bb"},
		"/.podboot/clock":   {Inode: 15, Size: 20, Mtime: 10, Ctime: 10, Hash: "cc"},
		"/device.yaml":      {Inode: 16, Size: 50, Mtime: 10, Ctime: 10, Atime: 10, Hash: "dd"},
		"/images/bb.tar":    {Inode: 17, Size: 5 << 20, Mtime: 10, Ctime: 10, Atime: 10},
		"/.podboot/tls.crt": {Inode: 18, Size: 600, Mtime: 10, Ctime: 10, Hash: "ee"},
		"/.podboot/same":    {Inode: 19, Size: 600, Mtime: 10, Ctime: 10, Hash: "ff"},
	}
	after := Files{
		"/":                 {Inode: 2, Dir: true, Mtime: 10, Ctime: 10},
		"/pods":             {Inode: 12, Dir: true, Mtime: 20, Ctime: 20},
		"/pods/web.yaml":    {Inode: 13, Size: 300, Mtime: 10, Ctime: 10, Atime: 10, Hash: "aa"},
		"/pods/new.yaml":    {Inode: 20, Size: 250, Mtime: 20, Ctime: 20, Hash: "11"},
		"/.podboot/clock":   {Inode: 21, Size: 20, Mtime: 20, Ctime: 20, Hash: "22"},
		"/device.yaml":      {Inode: 16, Size: 50, Mtime: 10, Ctime: 10, Atime: 20, Hash: "dd"},
		"/images/bb.tar":    {Inode: 17, Size: 5 << 20, Mtime: 10, Ctime: 20, Atime: 10},
		"/.podboot/tls.crt": {Inode: 18, Size: 610, Mtime: 20, Ctime: 20, Hash: "33"},
		"/.podboot/same":    {Inode: 22, Size: 600, Mtime: 20, Ctime: 20, Hash: "ff"},
	}
	want := []Change{
		{"/.podboot/clock", "replaced: a new inode renamed into place (20 bytes, was 20)"},
		{"/.podboot/same", "replaced: a new inode renamed into place (600 bytes, was 600), same content"},
		{"/.podboot/tls.crt", "rewritten in place (610 bytes, was 600)"},
		{"/device.yaml", "read: access time updated (atime)"},
		{"/images/bb.tar", "inode changed (ctime)"},
		{"/pods", "directory entries changed"},
		{"/pods/new.yaml", "created (file, 250 bytes)"},
		{"/pods/old.yaml", "removed (file)"},
	}
	if diff := cmp.Diff(want, Diff(before, after)); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
	if got := Diff(before, before); len(got) != 0 {
		t.Errorf("Diff of a snapshot with itself = %v, want nothing", got)
	}
}

func TestParseStats(t *testing.T) {
	out := `debugfs 1.47.0 (5-Feb-2023)
debugfs:  stat <12>
Inode: 12   Type: regular    Mode:  0644   Flags: 0x80000
Generation: 0    Version: 0x00000000:00000000
 ctime: 0x6572a0c5:8e2b3c00 -- Fri Dec  8 10:00:05 2023
 atime: 0x6572a0c4:00000000 -- Fri Dec  8 10:00:04 2023
 mtime: 0x6572a0c3:00000000 -- Fri Dec  8 10:00:03 2023
crtime: 0x6572a0c2:00000000 -- Fri Dec  8 10:00:02 2023
debugfs:  stat <2>
Inode: 2   Type: directory    Mode:  0755   Flags: 0x80000
ctime: 0x00000010 -- Thu Jan  1 00:00:16 1970
atime: 0x00000011 -- Thu Jan  1 00:00:17 1970
mtime: 0x00000012 -- Thu Jan  1 00:00:18 1970
`
	want := map[int]inodeTimes{
		12: {ctime: 0x6572a0c5, atime: 0x6572a0c4, mtime: 0x6572a0c3},
		2:  {ctime: 0x10, atime: 0x11, mtime: 0x12},
	}
	if diff := cmp.Diff(want, parseStats(out), cmp.AllowUnexported(inodeTimes{})); diff != "" {
		t.Errorf("parseStats (-want +got):\n%s", diff)
	}
}

func TestParseBlockstats(t *testing.T) {
	raw := []byte(`[{"device": "", "qdev": "/machine/peripheral-anon/device[0]", "stats": {"wr_bytes": 1}},
		{"device": "flash", "node-name": "#block123", "stats": {"wr_bytes": 4096, "wr_operations": 3, "flush_operations": 2, "rd_bytes": 99}}]`)
	got, err := parseBlockstats(raw, "flash")
	if err != nil {
		t.Fatal(err)
	}
	if want := (stats{wrBytes: 4096, wrOps: 3, flushOps: 2}); got != want {
		t.Errorf("parseBlockstats = %+v, want %+v", got, want)
	}
	if _, err := parseBlockstats(raw, "other"); err == nil {
		t.Error("parseBlockstats of a missing drive: no error")
	}
}
