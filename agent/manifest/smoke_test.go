package manifest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSmoke(t *testing.T) {
	root := "../../../shared/conformance/k8s-website"
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if info.IsDir() || filepath.Ext(p) != ".yaml" {
			return nil
		}
		data, _ := os.ReadFile(p)
		s := Decode(filepath.Base(p), data, Options{NodeName: "n1"})
		t.Logf("%s: pods=%d cm=%d sec=%d", p, len(s.Pods), len(s.ConfigMaps), len(s.Secrets))
		for _, e := range s.Errors {
			t.Logf("   ERR %v (field %q)", e, e.Field)
		}
		return nil
	})
}
