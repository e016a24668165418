package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/mountinfo"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/init/containerd"
	"github.com/podboot/podboot/internal/integration"
	"github.com/podboot/podboot/tools/imagebuild"
)

const busyboxPod = `apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "echo hello from busybox; exec sleep 3600"]
`

// TestIntegrationDevnode boots the real node (bin/containerd, bin/runc,
// bin/podagent) on a temporary flash with one busybox pod, checks the pod
// runs and logs, powers the node off with SIGTERM and checks that nothing
// is left behind.
func TestIntegrationDevnode(t *testing.T) {
	repoBin, err := filepath.Abs("../../bin")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "podagent"} {
		if _, err := os.Stat(filepath.Join(repoBin, b)); err != nil {
			missing = append(missing, "bin/"+b)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = append(missing, "/bin/busybox")
	}
	if len(missing) > 0 {
		integration.Unavailable(t, "needs %s: run as root after `go build -o bin/podagent ./agent/cmd/podagent` (and the containerd binaries in bin/)", strings.Join(missing, ", "))
	}

	work := t.TempDir()
	flash, state := filepath.Join(work, "flash"), filepath.Join(work, "state")
	for _, d := range []string{filepath.Join(flash, "pods"), filepath.Join(flash, "images")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img, err := imagebuild.Build(imagebuild.Spec{Tags: []string{"busybox:latest"}, Arch: runtime.GOARCH, Busybox: "/bin/busybox", Cmd: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.WriteDockerArchive(filepath.Join(flash, "images", "busybox.tar"), map[string]v1.Image{"busybox:latest": img}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(flash, "pods", "hello.yaml"), []byte(busyboxPod), 0o644); err != nil {
		t.Fatal(err)
	}
	devnode := filepath.Join(work, "devnode")
	if out, err := exec.Command("go", "build", "-o", devnode, ".").CombinedOutput(); err != nil {
		t.Fatalf("build devnode: %v\n%s", err, out)
	}

	listen := freeLoopbackAddr(t)
	cmd := exec.Command(devnode, "--flash", flash, "--state", state, "--listen", listen, "--bin", repoBin,
		"--agent-stop-timeout", "60s")
	stderrPath := filepath.Join(work, "devnode.stderr")
	stderr, err := os.Create(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
		if t.Failed() {
			b, _ := os.ReadFile(stderrPath)
			t.Logf("devnode stderr:\n%s", b)
		}
	}()
	readyc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		readyc <- line
	}()
	select {
	case line := <-readyc:
		if line != "ready\n" {
			t.Fatalf("devnode printed %q, want ready", line)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("devnode not ready after 3 minutes")
	}

	// The static pod runs and logs.
	api := "http://" + listen + "/api/v1/namespaces/default/pods"
	var pod corev1.Pod
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list corev1.PodList
		if err := getJSON(api, &list); err == nil {
			for _, p := range list.Items {
				if strings.HasPrefix(p.Name, "hello") {
					pod = p
				}
			}
		}
		if pod.Status.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod hello not Running after 2 minutes: %+v", pod.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		logs, err := getBody(api + "/" + pod.Name + "/log?container=main")
		if err == nil && logs == "hello from busybox\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s: %q, %v; want the hello line", pod.Name, logs, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Power-off.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		exited = true
		if err != nil {
			t.Fatalf("devnode exit: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("devnode did not power off within 2 minutes")
	}

	layout := containerd.Layout{Dir: filepath.Join(state, "containerd")}
	procs, err := listProcs("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers(procs, layout.Address()) {
		t.Errorf("left running: pid %d %q", p.pid, p.cmdline)
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(state))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.Mountpoint != state {
			t.Errorf("left mounted: %s (%s)", m.Mountpoint, m.FSType)
		}
	}
	// Report what devnode found of the containers' cgroups.
	b, _ := os.ReadFile(stderrPath)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "cgroup") || strings.Contains(l, "leftover") || strings.Contains(l, "unmounted") {
			t.Logf("power-off: %s", l)
		}
	}
}

func getBody(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

func getJSON(url string, v any) error {
	body, err := getBody(url)
	if err != nil {
		return err
	}
	return json.NewDecoder(bytes.NewReader([]byte(body))).Decode(v)
}
