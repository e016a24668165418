package manifest

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode proves that Decode never panics and that every error it
// reports carries a cause, whatever the bytes.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/decode/*")
	seeds = append(seeds, "testdata/defaults-pod.yaml")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: List}]\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"resources":{"limits":{"cpu":"1xyz"}}}]}}`))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, file := range []string{"f.yaml", "f.json"} {
			s := Decode(file, data, testOpts)
			for _, e := range s.Errors {
				if e == nil || e.Err == nil || e.Error() == "" {
					t.Fatalf("Decode(%s) reported an empty error: %#v", file, e)
				}
			}
			_ = s.Hash()
		}
	})
}
