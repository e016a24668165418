package containerd

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/agent/logs"
)

// TestAttachTaps: every chunk the copier writes reaches the log, and each
// attached client's stream; a client that stopped reading loses chunks
// beyond its buffer and never holds up the log.
func TestAttachTaps(t *testing.T) {
	var a attachTaps
	var logOut, logErr bytes.Buffer
	stdout, stderr := a.writer(logs.Stdout, &logOut), a.writer(logs.Stderr, &logErr)

	var got bytes.Buffer
	live := &tap{out: map[string]io.Writer{logs.Stdout: &got}, chunks: make(chan chunk, attachBuffer)}
	stuck := &tap{out: map[string]io.Writer{logs.Stdout: &bytes.Buffer{}}, chunks: make(chan chunk, attachBuffer)}
	a.add(live)
	a.add(stuck)
	for i := range attachBuffer + 10 {
		stdout.Write([]byte{byte('a' + i%26)})
		live.flush() // the live client keeps up
	}
	stderr.Write([]byte("e"))
	a.remove(live)
	stdout.Write([]byte("after"))
	live.flush()

	if logOut.Len() != attachBuffer+10+len("after") || logErr.String() != "e" {
		t.Errorf("log: %d bytes of stdout, stderr %q; want every chunk", logOut.Len(), logErr.String())
	}
	if diff := cmp.Diff(logOut.String()[:attachBuffer+10], got.String()); diff != "" {
		t.Errorf("the live client's stdout (-want +got):\n%s", diff)
	}
	if n := len(stuck.chunks); n != attachBuffer {
		t.Errorf("the stuck client holds %d chunks, want its buffer's %d", n, attachBuffer)
	}
}
