package podbench

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log that the devnode goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestDevnode(t *testing.T) {
	tests := []struct {
		mode         string
		wantStartErr string
		wantStopErr  string
		wantLog      string
	}{
		{mode: "ready", wantLog: "starting --flash F --state S --listen L\nready\n"},
		{mode: "stubborn", wantStopErr: "still running 200ms after SIGTERM"},
		{mode: "fail", wantStartErr: "exited before ready", wantLog: "containerd: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Setenv("FAKE_DEVNODE_MODE", tt.mode)
			var log lockedBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d, err := StartDevnode(ctx, DevnodeConfig{Bin: "testdata/fake-devnode.sh", Flash: "F", State: "S", Listen: "L", Log: &log})
			if tt.wantStartErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantStartErr) {
					t.Fatalf("StartDevnode error = %v, want one containing %q", err, tt.wantStartErr)
				}
			} else {
				if err != nil {
					t.Fatalf("StartDevnode: %v", err)
				}
				err = d.Stop(200 * time.Millisecond)
				if tt.wantStopErr == "" && err != nil {
					t.Errorf("Stop: %v", err)
				}
				if tt.wantStopErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantStopErr)) {
					t.Errorf("Stop error = %v, want one containing %q", err, tt.wantStopErr)
				}
				if again := d.Stop(time.Second); tt.wantStopErr == "" && again != nil {
					t.Errorf("second Stop: %v", again)
				}
			}
			if !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log = %q, want it to contain %q", log.String(), tt.wantLog)
			}
		})
	}
}

func TestDevnodeNotReadyInTime(t *testing.T) {
	t.Setenv("FAKE_DEVNODE_MODE", "none") // prints nothing, exits at once
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := StartDevnode(ctx, DevnodeConfig{Bin: "testdata/fake-devnode.sh", Log: &lockedBuffer{}}); err == nil {
		t.Error("StartDevnode of a devnode that exits silently: want an error")
	}
	t.Setenv("FAKE_DEVNODE_MODE", "silent") // never ready
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := StartDevnode(short, DevnodeConfig{Bin: "testdata/fake-devnode.sh", Log: &lockedBuffer{}}); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("StartDevnode of a devnode never ready = %v, want a \"not ready\" error", err)
	}
	if _, err := StartDevnode(ctx, DevnodeConfig{Bin: "testdata/missing", Log: &lockedBuffer{}}); err == nil {
		t.Error("StartDevnode of a missing binary: want an error")
	}
}

func TestDevnodeCommand(t *testing.T) {
	base := DevnodeConfig{Bin: "/b/devnode", Flash: "/f", State: "/s", Listen: "127.0.0.1:9"}
	common := []string{"--flash", "/f", "--state", "/s", "--listen", "127.0.0.1:9"}
	tests := []struct {
		name       string
		netns, cni string
		want       []string
	}{
		{name: "loopback pods", want: append([]string{"/b/devnode"}, common...)},
		{name: "pod network in a namespace", netns: "/w/netns", cni: "/b/cni",
			want: append(append([]string{"nsenter", "--net=/w/netns", "/b/devnode"}, common...), "--cni-bin-dir", "/b/cni")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.NetNS, c.CNIBinDir = tt.netns, tt.cni
			if got := devnodeCommand(c).Args; !slices.Equal(got, tt.want) {
				t.Errorf("devnode command %q, want %q", got, tt.want)
			}
		})
	}
}
