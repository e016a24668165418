package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteCheckedRefusalLeavesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pods.yaml")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("changed since read")
	if err := WriteChecked(path, []byte("new"), 0o644, func() error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("err = %v, want the check's error", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("content after a refused write = %q, want old", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries after a refused write, want 1 (no temporary left)", len(entries))
	}
	if err := WriteChecked(path, []byte("new"), 0o600, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new" {
		t.Errorf("content = %q, want new", got)
	}
}
