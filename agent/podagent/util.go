package podagent

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// nodeUID is stable for a node name, so a watcher sees the same node across
// agent restarts.
func nodeUID(name string) types.UID {
	h := sha256.Sum256([]byte("node/" + name))
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16]))
}
