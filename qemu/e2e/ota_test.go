package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// otaGenLabel is the label each pod of a test generation carries: its
// generation number, so a pod of the wrong one shows.
const otaGenLabel = "ota.podboot.test/generation"

// otaStatus is `podctl ota status -o json` (issue 13's contract).
type otaStatus struct {
	Generation uint64   `json:"generation"`
	State      string   `json:"state"`
	Trying     uint64   `json:"trying,omitempty"`
	Failed     []uint64 `json:"failed"`
	Reason     string   `json:"reason,omitempty"`
}

// otaGen is one release of the test fleet: its pods, one of which may
// crash-loop (exit 1 at once, for ever).
type otaGen struct {
	number uint64
	pods   []string
	crash  string
}

// bundle writes the generation's manifests and signs them with key into
// dir/gen<N>.tar with the host's podctl.
func (g otaGen) bundle(t *testing.T, podctl, key, dir string) string {
	t.Helper()
	pods := filepath.Join(dir, fmt.Sprintf("gen%d", g.number))
	if err := os.MkdirAll(pods, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range g.pods {
		command := `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`
		if p == g.crash {
			command = `["sh", "-c", "echo bad release; exit 1"]`
		}
		manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {%s: "%d"}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:1.36
    command: %s
    readinessProbe:
      exec: {command: ["true"]}
      periodSeconds: 2
`, p, otaGenLabel, g.number, command)
		if err := os.WriteFile(filepath.Join(pods, p+".yaml"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, fmt.Sprintf("gen%d.tar", g.number))
	if b, err := exec.Command(podctl, "ota", "build", "--key", key, "--generation", strconv.FormatUint(g.number, 10), "--pods", pods, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("podctl ota build generation %d: %v\n%s", g.number, err, b)
	}
	return out
}

// otaStatusOf reads the board's OTA status through podctl.
func otaStatusOf(b *Board, podctl string) (otaStatus, error) {
	var st otaStatus
	out, err := b.Podctl(podctl, "ota", "status", "-o", "json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("decode podctl ota status -o json: %w\n%s", err, out)
	}
	return st, nil
}

func waitOTA(t *testing.T, b *Board, podctl string, timeout time.Duration, what string, cond func(otaStatus) bool) otaStatus {
	t.Helper()
	var last otaStatus
	var lastErr error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline) && !b.Exited(); time.Sleep(time.Second) {
		st, err := otaStatusOf(b, podctl)
		last, lastErr = st, err
		if err == nil && cond(st) {
			return st
		}
	}
	t.Fatalf("OTA status: %s not reached within %s (exited: %t); last %+v, %v", what, timeout, b.Exited(), last, lastErr)
	return last
}

// waitGeneration waits until the board runs exactly the hand-placed pods
// and g's, each Running and Ready, every generation pod labelled g.
func waitGeneration(t *testing.T, b *Board, hand []string, g otaGen, timeout time.Duration) []corev1.Pod {
	t.Helper()
	names := append(slices.Clone(hand), g.pods...)
	pods, err := b.WaitPods(names, timeout)
	if err != nil {
		t.Fatalf("generation %d: %v", g.number, err)
	}
	for _, p := range pods {
		want := strconv.FormatUint(g.number, 10)
		if slices.Contains(hand, p.Name) {
			want = ""
		}
		if got := p.Labels[otaGenLabel]; got != want {
			t.Errorf("pod %s is of generation %q, want %q", p.Name, got, want)
		}
	}
	return pods
}

// TestOTAOnTheBoard boots the board with device.yaml's ota section (a key
// made here, a registry on the host's 127.0.0.1 polled as 10.0.2.2): a
// good generation from the registry is committed; a crash-looping one,
// pushed through the API, is rolled back on its own; then QEMU is killed
// (SIGKILL, a power cut) at a random moment of the next one's apply, and
// after the reboot exactly one whole generation runs, beside the flash's
// own pods.
func TestOTAOnTheBoard(t *testing.T) {
	// Its own copy of the image: it boots beside the USB stick's test.
	t.Parallel()
	s := setup(t)
	dir := copyImage(t, s.qemuImage)
	fl, err := FindFlash(filepath.Join(dir, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	key := filepath.Join(work, "fleet.key")
	if out, err := exec.Command(s.podctl, "ota", "keygen", key).CombinedOutput(); err != nil {
		t.Fatalf("podctl ota keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	reg := testenv.Registry(t)
	_, port, _ := strings.Cut(reg, ":")
	// TCG is slow: a pod takes seconds to start, so the gate's window is
	// a minute; the jitter of a 5 s poll is half a second.
	const deadline, stable = 60 * time.Second, 10 * time.Second
	device, err := fl.ReadFile("/device.yaml")
	if err != nil {
		device = nil // the image has none: the defaults
	}
	device = append(device, fmt.Sprintf("\nota:\n  keys: [%q]\n  source: oci://10.0.2.2:%s/fleet/edge:stable\n  insecure: true\n  pollInterval: 5s\n  healthDeadline: %s\n  stableFor: %s\n",
		strings.TrimSpace(string(pub)), port, deadline, stable)...)
	if err := fl.WriteFile("/device.yaml", device); err != nil {
		t.Fatal(err)
	}
	hand := []string{"e2e-pair", "e2e-sleeper"}

	b := Boot(t, dir, Options{})
	mustWaitAPI(t, b)
	first, err := b.WaitPods(hand, PodsTimeout)
	if err != nil {
		t.Fatal(err)
	}
	commitWithin := PodsTimeout + deadline

	g1 := otaGen{number: 1, pods: []string{"ota-web"}}
	if out, err := exec.Command(s.podctl, "ota", "publish", "--plain-http", g1.bundle(t, s.podctl, key, work), reg+"/fleet/edge:stable").CombinedOutput(); err != nil {
		t.Fatalf("podctl ota publish generation 1: %v\n%s", err, out)
	}
	waitOTA(t, b, s.podctl, commitWithin, "generation 1 committed", func(st otaStatus) bool { return st.Generation == 1 && st.State == "committed" })
	pods := waitGeneration(t, b, hand, g1, PodsTimeout)
	// The flash's own pods were not touched by the update.
	for k, n := range restarts(pods) {
		if was, ok := restarts(first)[k]; ok && n != was {
			t.Errorf("%s restarted during the update: %d → %d", k, was, n)
		}
	}

	g2 := otaGen{number: 2, pods: []string{"ota-web", "ota-crasher"}, crash: "ota-crasher"}
	if out, err := b.Podctl(s.podctl, "ota", "push", g2.bundle(t, s.podctl, key, work)); err != nil {
		t.Fatalf("podctl ota push of the crash-looping generation 2: %v\n%s", err, out)
	}
	st := waitOTA(t, b, s.podctl, deadline+PodsTimeout, "generation 2 rolled back", func(st otaStatus) bool { return st.State != "trying" })
	if diff := cmp.Diff(otaStatus{Generation: 1, State: "rolled-back", Failed: []uint64{2}}, st, cmpopts.IgnoreFields(otaStatus{}, "Reason")); diff != "" {
		t.Errorf("OTA status after the crash-looping generation (-want +got):\n%s", diff)
	}
	if !strings.Contains(st.Reason, "ota-crasher") {
		t.Errorf("the rollback's reason %q does not name the pod that failed (ota-crasher)", st.Reason)
	}
	waitGeneration(t, b, hand, g1, PodsTimeout)

	// The power cut: QEMU killed at a random moment from the push's start
	// (the upload, verification, unpacking, the switch, the pods' start).
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("PODBOOT_OTA_SEED"), 10, 64); err == nil {
		seed = v
	}
	delay := time.Duration(rand.New(rand.NewPCG(seed, seed)).Int64N(int64(8 * time.Second)))
	t.Logf("seed %d (PODBOOT_OTA_SEED=%d replays it): QEMU is killed %v after the push starts", seed, seed, delay)
	g3 := otaGen{number: 3, pods: []string{"ota-web", "ota-api"}}
	tar3 := g3.bundle(t, s.podctl, key, work)
	pushed := make(chan error, 1)
	go func() { _, err := b.Podctl(s.podctl, "ota", "push", tar3); pushed <- err }()
	time.Sleep(delay)
	_ = b.cmd.Process.Kill() // qemuboot; QEMU dies with it (Pdeathsig SIGKILL)
	if err := b.Wait(time.Minute); err == nil {
		t.Fatal("qemu/boot returned 0 after SIGKILL")
	}
	pushErr := <-pushed
	t.Logf("the push, cut: %v", pushErr)

	b = Boot(t, dir, Options{})
	mustWaitAPI(t, b)
	st = waitOTA(t, b, s.podctl, commitWithin, "no trial", func(st otaStatus) bool { return st.State != "trying" })
	t.Logf("after the power cut: %+v", st)
	switch st.Generation {
	case 1:
		waitGeneration(t, b, hand, g1, PodsTimeout)
	case 3:
		waitGeneration(t, b, hand, g3, PodsTimeout)
	default:
		t.Fatalf("after the power cut the board runs generation %d, want 1 or 3: %+v", st.Generation, st)
	}
	if slices.Contains(st.Failed, st.Generation) || !slices.Contains(st.Failed, 2) {
		t.Errorf("after the power cut: %+v; generation 2 must stay failed and the running one must not be", st)
	}
	if pushErr == nil && st.Generation != 3 && !slices.Contains(st.Failed, 3) {
		t.Errorf("the push had returned (the trial began) but generation 3 is neither committed nor failed: %+v", st)
	}
	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
}
