package nsutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/podboot/podboot/internal/nsutil"
	"github.com/podboot/podboot/internal/testenv"
)

func TestIntegrationPinDoUnpin(t *testing.T) {
	testenv.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "ns")
	if err := nsutil.PinNewNetNS(path); err != nil {
		t.Fatal(err)
	}
	own, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var inside string
	if err := nsutil.Do(path, func() error {
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside == own {
		t.Errorf("Do ran in the caller's namespace %s", own)
	}
	if again, _ := os.Readlink("/proc/thread-self/ns/net"); again != own {
		t.Errorf("the caller's namespace changed from %s to %s", own, again)
	}
	if err := nsutil.Unpin(path); err != nil {
		t.Fatal(err)
	}
	if err := nsutil.Do(path, func() error { return nil }); err == nil {
		t.Error("Do into an unpinned namespace succeeded")
	}
}
