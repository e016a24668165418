package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// summary is what a Set holds, reduced to names and messages for cmp.Diff.
type summary struct {
	Pods, ConfigMaps, Secrets, Namespaces []string
	Errors                                []string // DocumentError.Error()
	Fields                                []string // DocumentError.Field
}

func summarize(s *Set) summary {
	var sum summary
	for _, p := range s.Pods {
		sum.Pods = append(sum.Pods, p.Namespace+"/"+p.Name)
	}
	for _, c := range s.ConfigMaps {
		sum.ConfigMaps = append(sum.ConfigMaps, c.Namespace+"/"+c.Name)
	}
	for _, c := range s.Secrets {
		sum.Secrets = append(sum.Secrets, c.Namespace+"/"+c.Name)
	}
	for _, n := range s.Namespaces {
		sum.Namespaces = append(sum.Namespaces, n.Name)
	}
	for _, e := range s.Errors {
		sum.Errors = append(sum.Errors, e.Error())
		sum.Fields = append(sum.Fields, e.Field)
	}
	return sum
}

var testOpts = Options{NodeName: "board-1"}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// podYAML is a minimal valid pod named name running image.
func podYAML(name, image string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n  - name: main\n    image: %s\n", name, image)
}
