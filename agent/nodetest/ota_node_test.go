package nodetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/nsutil"
	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/tools/imagebuild"
)

// The helpers of the OTA tests: podctl against a devnode, the generations
// a fleet publishes (each pod labelled with its generation, so a pod of
// the wrong one is seen), and a power cut of the whole node.

// genLabel is the label every pod of a test generation carries: its
// generation number.
const genLabel = "ota.podboot.test/generation"

// handPod is the manifest a person placed in the flash's pods directory:
// the board's own, which no generation may touch or collide with.
const handPod = `apiVersion: v1
kind: Pod
metadata: {name: hand, labels: {placed: by-hand}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: "busybox:1.36", command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}
`

// cmdRun is what one run of a command printed and its exit status.
type cmdRun struct {
	stdout, stderr string
	code           int
}

func (r cmdRun) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// otaBin is the directory of the binaries the OTA tests run: bin/ of
// `make build`, or $PODBOOT_OTA_BIN (a build of the working tree kept
// apart from the shared bin/).
func otaBin(t testing.TB) string {
	if d := os.Getenv("PODBOOT_OTA_BIN"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(t), "bin")
}

// podctlPath is the podctl of otaBin, skipping (or failing under
// PODBOOT_INTEGRATION=1) without it.
func podctlPath(t testing.TB) string {
	t.Helper()
	p := filepath.Join(otaBin(t), "podctl")
	if _, err := os.Stat(p); err != nil {
		testenv.Unavailable(t, "needs bin/podctl: run `make build`")
	}
	return p
}

// runCmd runs a command to its end (at most two minutes) and fails t
// only when it could not run at all: a non-zero exit is a result.
func runCmd(t testing.TB, cmd *exec.Cmd) cmdRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cmdRun{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.Exited():
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v (stdout %q, stderr %q)", strings.Join(cmd.Args, " "), err, r.stdout, r.stderr)
	}
	return r
}

// podctlRun runs the real podctl with args (no server: keygen, build,
// publish).
func podctlRun(t testing.TB, args ...string) cmdRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return runCmd(t, exec.CommandContext(ctx, podctlPath(t), args...))
}

// mustPodctl is podctlRun that fails t unless podctl exits 0.
func mustPodctl(t testing.TB, args ...string) string {
	t.Helper()
	r := podctlRun(t, args...)
	if r.code != 0 {
		t.Fatalf("podctl %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// podctl runs the real podctl against the node's API.
func (n *node) podctl(t testing.TB, args ...string) cmdRun {
	t.Helper()
	return podctlRun(t, append([]string{"--server", n.url}, args...)...)
}

// otaStatus is `podctl ota status -o json` (the contract).
type otaStatus struct {
	Generation uint64   `json:"generation"`
	State      string   `json:"state"`
	Trying     uint64   `json:"trying,omitempty"`
	Failed     []uint64 `json:"failed"`
	Reason     string   `json:"reason,omitempty"`
	Attempts   int      `json:"attempts,omitempty"`
	Source     string   `json:"source,omitempty"`
}

// otaStatusCLI reads the status through podctl, checking that failed is
// a list, never null, as the contract says.
func (n *node) otaStatusCLI(t testing.TB) otaStatus {
	t.Helper()
	r := n.podctl(t, "ota", "status", "-o", "json")
	if r.code != 0 {
		t.Fatalf("podctl ota status -o json: %s\nagent log:\n%s", r, tail(n.stderr.String(), 30))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("podctl ota status -o json printed no JSON object: %v\n%s", err, r.stdout)
	}
	if f, ok := raw["failed"]; !ok || string(f) == "null" {
		t.Errorf("podctl ota status -o json: failed is %s, want a list (never null)\n%s", f, r.stdout)
	}
	var st otaStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("decode podctl ota status -o json: %v\n%s", err, r.stdout)
	}
	return st
}

// otaStatusHTTP reads GET /podboot/v1/ota; ok is false while the API
// does not answer (the node is down or booting).
func (n *node) otaStatusHTTP() (otaStatus, bool) {
	var st otaStatus
	c := *n.http
	c.Timeout = 5 * time.Second
	resp, err := c.Get(n.url + "/podboot/v1/ota")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return st, false
	}
	return st, true
}

// waitOTA polls the OTA status until cond holds, failing t after timeout.
func (n *node) waitOTA(t testing.TB, timeout time.Duration, what string, cond func(otaStatus) bool) otaStatus {
	t.Helper()
	var last otaStatus
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if st, ok := n.otaStatusHTTP(); ok {
			last = st
			if cond(st) {
				return st
			}
		}
	}
	t.Fatalf("OTA status: %s not reached within %v; last %+v\nagent log:\n%s", what, timeout, last, tail(n.stderr.String(), 60))
	return last
}

// listPods lists every pod of the node through the API (any namespace).
func (n *node) listPods() ([]corev1.Pod, error) {
	c := *n.http
	c.Timeout = 5 * time.Second
	resp, err := c.Get(n.url + "/api/v1/pods")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("list pods: %s", resp.Status)
	}
	var l corev1.PodList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return nil, fmt.Errorf("decode the pod list: %w", err)
	}
	return l.Items, nil
}

// fleetPods are the pods of the list that came with a generation (they
// carry genLabel): name → the generation it came with.
func fleetPods(pods []corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, p := range pods {
		if g, ok := p.Labels[genLabel]; ok {
			out[p.Namespace+"/"+p.Name] = g
		}
	}
	return out
}

// generation is one release of the test fleet: its pods (all in the
// default namespace, each labelled with the generation), one of which
// crash-loops when bad.
type generation struct {
	number uint64
	pods   []string
	// crash names a pod whose container exits 1 at once, for ever: a
	// crash loop the health gate must roll back.
	crash string
	// image, when set, is the tag of an image that exists only in the
	// bundle (its archive is in the bundle's images): the pods run it.
	image string
}

// want is what a node running g lists: namespace/name → generation.
func (g generation) want() map[string]string {
	out := map[string]string{}
	for _, p := range g.pods {
		out["default/"+p] = strconv.FormatUint(g.number, 10)
	}
	return out
}

// manifest is the pod's manifest in g: a shell that stops on SIGTERM, a
// readiness probe (the health gate counts Ready), or the crash loop.
func (g generation) manifest(pod string) string {
	image, command := "busybox:1.36", `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`
	if g.image != "" {
		image = g.image
	}
	if pod == g.crash {
		command = `["sh", "-c", "echo bad release; exit 1"]`
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {%s: "%d"}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %q
    command: %s
    readinessProbe:
      exec: {command: ["true"]}
      periodSeconds: 1
`, pod, genLabel, g.number, image, command)
}

// write puts g's pods (and its image's archive) under dir and returns the
// pods and images directories for podctl ota build ("" when no image).
func (g generation) write(t testing.TB, dir string) (pods, images string) {
	t.Helper()
	pods = filepath.Join(dir, fmt.Sprintf("gen%d-pods", g.number))
	if err := os.MkdirAll(pods, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range g.pods {
		writeFile(t, pods, p+".yaml", g.manifest(p))
	}
	if g.image == "" {
		return pods, ""
	}
	images = filepath.Join(dir, fmt.Sprintf("gen%d-images", g.number))
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := imagebuild.Spec{Tags: []string{g.image}, Arch: runtimeArch(), Busybox: testenv.Busybox,
		Files: []imagebuild.File{{Path: "/release", Mode: 0o644, Data: []byte(g.image + "\n")}}}
	img, err := imagebuild.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.WriteDockerArchive(filepath.Join(images, testenv.ArchiveName(g.image)), map[string]v1.Image{g.image: img}); err != nil {
		t.Fatal(err)
	}
	return pods, images
}

// build signs g with key into dir/gen<N>.tar with the real podctl.
func (g generation) build(t testing.TB, key, dir string) string {
	t.Helper()
	pods, images := g.write(t, dir)
	out := filepath.Join(dir, fmt.Sprintf("gen%d.tar", g.number))
	args := []string{"ota", "build", "--key", key, "--generation", strconv.FormatUint(g.number, 10), "--pods", pods}
	if images != "" {
		args = append(args, "--images", images)
	}
	mustPodctl(t, append(args, "-o", out)...)
	return out
}

// keygen makes a signing key in dir with podctl and returns the key's
// path and its public line, as device.yaml takes it.
func keygen(t testing.TB, dir, name string) (key, pub string) {
	t.Helper()
	key = filepath.Join(dir, name)
	mustPodctl(t, "ota", "keygen", key)
	info, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("podctl ota keygen %s: the key's mode is %v, want 0600", name, info.Mode().Perm())
	}
	data, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "ed25519:") {
		t.Fatalf("%s.pub is %q, want one line ed25519:<base64>", name, data)
	}
	return key, strings.TrimSpace(string(data))
}

// otaDevice is a device.yaml whose ota section trusts pub and polls
// source (a registry on 127.0.0.1, plain HTTP).
func otaDevice(pub, source string, poll, deadline, stable time.Duration) string {
	return fmt.Sprintf("ota:\n  keys: [%q]\n  source: oci://%s\n  insecure: true\n  pollInterval: %s\n  healthDeadline: %s\n  stableFor: %s\n",
		pub, source, poll, deadline, stable)
}

// events lists every Event of the node (any namespace) through kubectl.
func (n *node) events(t testing.TB) []corev1.Event {
	t.Helper()
	var l corev1.EventList
	if err := json.Unmarshal([]byte(n.mustKc(t, "get", "events", "-A", "-o", "json")), &l); err != nil {
		t.Fatalf("decode kubectl get events -o json: %v", err)
	}
	return l.Items
}

// eventTime is when an event last happened, whichever way it says so.
func eventTime(e corev1.Event) time.Time {
	for _, ts := range []time.Time{e.LastTimestamp.Time, e.EventTime.Time, e.FirstTimestamp.Time, e.CreationTimestamp.Time} {
		if !ts.IsZero() {
			return ts
		}
	}
	return time.Time{}
}

// waitEvent waits for an Event at or after since that match accepts.
func (n *node) waitEvent(t testing.TB, since time.Time, what string, match func(corev1.Event) bool) corev1.Event {
	t.Helper()
	// Event times have a second's resolution.
	since = since.Truncate(time.Second)
	var seen []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		seen = seen[:0]
		for _, e := range n.events(t) {
			if eventTime(e).Before(since) {
				continue
			}
			if match(e) {
				return e
			}
			seen = append(seen, fmt.Sprintf("%s %s %s/%s: %s", e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message))
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Fatalf("no Event %s since %s; the events since:\n%s", what, since.Format(time.RFC3339), strings.Join(seen, "\n"))
	return corev1.Event{}
}

// nodeObject reads the node object through kubectl.
func (n *node) nodeObject(t testing.TB) corev1.Node {
	t.Helper()
	var l corev1.NodeList
	if err := json.Unmarshal([]byte(n.mustKc(t, "get", "nodes", "-o", "json")), &l); err != nil {
		t.Fatalf("decode kubectl get nodes -o json: %v", err)
	}
	if len(l.Items) != 1 {
		t.Fatalf("kubectl get nodes: %d nodes, want 1", len(l.Items))
	}
	return l.Items[0]
}

// cgroupRoot is devnode's default cgroup root for the node (tools/devnode:
// named after the state directory).
func (n *node) cgroupRoot() string {
	sum := sha256.Sum256([]byte(n.state))
	return "podboot-devnode-" + hex.EncodeToString(sum[:4])
}

// podProcs lists the processes in the node's pod cgroups: the
// containers.
func (n *node) podProcs() []int {
	root := "/" + n.cgroupRoot() + "/"
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err == nil && strings.Contains(string(b), root) {
			out = append(out, pid)
		}
	}
	return out
}

// powerCut kills the whole node at once with SIGKILL, as pulling the
// plug would: devnode (held first, so that its supervisor starts nothing
// again), the process groups of its containerd and its agent, and, with
// pods, every shim and container too (otherwise they outlive the cut, as
// containerd's shims are meant to, and the next boot adopts them). It
// returns once devnode is reaped.
func (n *node) powerCut(t testing.TB, pods bool) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("hold devnode: %v", err)
	}
	groups := append(procsOf("podagent", "--state "+n.state+" "), procsOf("bin/containerd ", n.state+"/")...)
	for _, pid := range groups {
		// Each service is its own process group (init/supervise).
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if pods {
		for _, pid := range append(procsOf("containerd-shim-runc-v2", n.state+"/"), n.podProcs()...) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = syscall.Kill(n.cmd.Process.Pid, syscall.SIGKILL)
	_ = n.cmd.Wait()
	n.release()
	n.release = func() {}
}

// boot starts devnode again on the node's flash and state directory, as
// the board's power coming back would, and waits for its "ready".
func (n *node) boot(t testing.TB) {
	t.Helper()
	u, err := url.Parse(n.url)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(filepath.Join(otaBin(t), "devnode"), "--flash", n.flash, "--state", n.state, "--listen", u.Host)
	// One log across the boots: a failure shows what led to it.
	fmt.Fprintf(n.stderr, "---- the test boots devnode on %s ----\n", n.flash)
	n.cmd.Stderr = n.stderr
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	release, err := nsutil.StartOnKeptThread(n.cmd)
	if err != nil {
		t.Fatalf("start devnode: %v", err)
	}
	n.release = release
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- nil
				return
			}
		}
		ready <- errors.New("devnode exited before printing ready")
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%v\n%s", err, n.stderr)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("devnode not ready after 90s\n%s", tail(n.stderr.String(), 60))
	}
}

// startOTANode is startNode for the OTA tests: the stand-in images and
// setup on a new flash, then devnode from otaBin.
func startOTANode(t *testing.T, setup ...func(flash string)) *node {
	requireNode(t)
	base, err := os.MkdirTemp("", "pbn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	n := &node{t: t, flash: filepath.Join(base, "flash"), state: filepath.Join(base, "s"), kube: filepath.Join(base, "kube"),
		http: http.DefaultClient, stderr: &lockedBuffer{}, release: func() {}}
	for _, d := range []string{filepath.Join(n.flash, "pods"), filepath.Join(n.flash, "images")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk := exec.Command(filepath.Join(otaBin(t), "mkimage"), "-arch", runtimeArch(), "-busybox", testenv.Busybox, "-o", filepath.Join(n.flash, "images"))
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	for _, f := range setup {
		f(n.flash)
	}
	n.url = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	t.Cleanup(func() {
		if n.cmd == nil {
			return
		}
		// An agent that hangs in its power-off dumps its goroutines
		// (SIGQUIT) into the log n.stop reports, after 90 s of its 2
		// minutes.
		stopped := make(chan struct{})
		go func() {
			select {
			case <-stopped:
			case <-time.After(90 * time.Second):
				for _, pid := range procsOf("podagent", "--state "+n.state+" ") {
					_ = syscall.Kill(pid, syscall.SIGQUIT)
				}
			}
		}()
		n.stop()
		close(stopped)
	})
	n.boot(t)
	return n
}

// sortedKeys is m's keys in order, for messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
