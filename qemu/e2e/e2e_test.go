package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// built is what every test of the package shares: the qemu-arm64 image
// with testdata/pods (built once; each test boots a copy, because booting
// writes to the flash) and the host's podctl.
type built struct {
	work, images, qemuImage, podctl string
}

var (
	buildOnce sync.Once
	shared    built
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.work != "" {
		os.RemoveAll(shared.work)
	}
	os.Exit(code)
}

// setup checks the prerequisites and builds the shared image once.
func setup(t *testing.T) built {
	t.Helper()
	if testing.Short() {
		testenv.Unavailable(t, "boots QEMU for minutes; not run with -short")
	}
	RequireTools(t)
	if _, err := builder(); err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	buildOnce.Do(func() {
		shared.work, buildErr = os.MkdirTemp("", "pbe2e-build")
		if buildErr != nil {
			return
		}
		shared.images = filepath.Join(shared.work, "images")
		if buildErr = ExampleImages(shared.images); buildErr != nil {
			return
		}
		shared.qemuImage = filepath.Join(shared.work, "qemu-arm64")
		var log string
		var took time.Duration
		log, took, buildErr = BuildImage("qemu-arm64", "testdata/pods", shared.images, shared.qemuImage)
		if buildErr != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "built qemu-arm64 in %s:\n%s", took.Round(time.Second), lastLines(log, 15))
		shared.podctl, buildErr = BuildPodctl(shared.work)
	})
	if buildErr != nil {
		t.Fatalf("build the test image: %v", buildErr)
	}
	return shared
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

// copyImage gives the test its own copy of the shared image.
func copyImage(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := CopyImage(src, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func names(pods []corev1.Pod) []string {
	var n []string
	for _, p := range pods {
		n = append(n, p.Name)
	}
	slices.Sort(n)
	return n
}

// restarts maps pod/container to its restart count.
func restarts(pods []corev1.Pod) map[string]int32 {
	m := map[string]int32{}
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			m[p.Name+"/"+cs.Name] = cs.RestartCount
		}
	}
	return m
}

func mustWaitAPI(t *testing.T, b *Board) {
	t.Helper()
	took, err := b.WaitAPI(BootTimeout)
	if err != nil {
		t.Fatalf("API: %v", err)
	}
	t.Logf("API answered %s after the boot started", took.Round(100*time.Millisecond))
}

func mustPowerOff(t *testing.T, b *Board, how func() error) {
	t.Helper()
	if err := how(); err != nil {
		t.Fatalf("power off: %v", err)
	}
	if err := b.Wait(PowerOffTimeout); err != nil {
		t.Fatalf("qemu/boot after poweroff: %v (the guest did not power itself off)", err)
	}
	if !strings.Contains(b.Output(), "guest_powered_off=true") {
		t.Errorf("qemu/boot did not report a guest poweroff:\n%s", b.Output())
	}
}

func mustBeClean(t *testing.T, dir string) Flash {
	t.Helper()
	fl, err := FindFlash(filepath.Join(dir, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.Check(); err != nil {
		t.Errorf("the flash is not clean after a clean poweroff: %v", err)
	}
	return fl
}

// TestBootToRunningPods: the image boots, the API answers through the
// forwarded port with the generated kubeconfig, kubectl shows the flash's
// pods Running, and podctl poweroff powers the board off with the flash
// cleanly unmounted.
func TestBootToRunningPods(t *testing.T) {
	s := setup(t)
	dir := copyImage(t, s.qemuImage)
	b := Boot(t, dir, Options{})
	mustWaitAPI(t, b)
	if _, err := b.WaitPods([]string{"e2e-pair", "e2e-sleeper"}, PodsTimeout); err != nil {
		t.Fatal(err)
	}
	out, err := b.Kubectl("get", "pods", "-o", "wide")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl get pods -o wide:\n%s", out)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE`),
		regexp.MustCompile(`(?m)^e2e-pair\s+2/2\s+Running\s+0\s`),
		regexp.MustCompile(`(?m)^e2e-sleeper\s+1/1\s+Running\s+0\s`),
	} {
		if !want.MatchString(out) {
			t.Errorf("kubectl get pods -o wide does not match %s:\n%s", want, out)
		}
	}
	// The sidecar reaches the server on localhost: its log, read the way a
	// user reads it, holds the server's page.
	var logs string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		logs, err = b.Kubectl("logs", "e2e-pair", "-c", "sidecar")
		if err == nil && strings.Contains(logs, "pair-ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("kubectl logs e2e-pair -c sidecar has no pair-ok after a minute: %q, %v", logs, err)
			break
		}
	}
	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
}

// TestFlashAcrossReboots: a manifest added to the flash image offline runs
// at the next boot and is still there after a reboot; one removed is gone;
// every poweroff leaves the ext4 clean.
func TestFlashAcrossReboots(t *testing.T) {
	s := setup(t)
	dir := copyImage(t, s.qemuImage)

	b := Boot(t, dir, Options{})
	mustWaitAPI(t, b)
	if _, err := b.WaitPods([]string{"e2e-pair", "e2e-sleeper"}, PodsTimeout); err != nil {
		t.Fatal(err)
	}
	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	fl := mustBeClean(t, dir)

	// Edit the flash as one would on a PC with the card in a reader.
	added, err := os.ReadFile("testdata/extra/e2e-added.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.WriteFile("/pods/e2e-added.yaml", added); err != nil {
		t.Fatal(err)
	}
	if err := fl.Remove("/pods/e2e-pair.yaml"); err != nil {
		t.Fatal(err)
	}

	b = Boot(t, dir, Options{})
	mustWaitAPI(t, b)
	if _, err := b.WaitPods([]string{"e2e-added", "e2e-sleeper"}, PodsTimeout); err != nil {
		t.Fatal(err)
	}
	if out, err := b.Kubectl("get", "pod", "e2e-pair"); err == nil || !strings.Contains(err.Error(), `pods "e2e-pair" not found`) {
		t.Errorf("kubectl get pod e2e-pair after its manifest was removed: %q, %v; want NotFound", out, err)
	}

	// Reboot: the machine resets and boots again from the same flash.
	if _, err := b.Podctl(s.podctl, "reboot"); err != nil {
		t.Fatal(err)
	}
	bootLine := regexp.MustCompile(`Booting Linux on physical CPU`)
	deadline := time.Now().Add(BootTimeout)
	for len(bootLine.FindAllString(b.ConsoleText(), -1)) < 2 {
		if b.Exited() || time.Now().After(deadline) {
			t.Fatalf("no second boot on the console after podctl reboot (exited: %t)", b.Exited())
		}
		time.Sleep(200 * time.Millisecond)
	}
	mustWaitAPI(t, b)
	if _, err := b.WaitPods([]string{"e2e-added", "e2e-sleeper"}, PodsTimeout); err != nil {
		t.Fatalf("after reboot: %v", err)
	}
	mustPowerOff(t, b, b.PowerButton)
	fl = mustBeClean(t, dir)
	got, err := fl.List("/pods")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"e2e-added.yaml", "e2e-sleeper.yaml"}, got); diff != "" {
		t.Errorf("/pods on the flash after the boots (-want +got):\n%s", diff)
	}
}

// TestInsideTheBoard uses the debug shell: PID 1 restarts a killed podagent
// and a killed containerd and the pods keep running; pod status over
// vsock_loopback with podctl --vsock; cgroup2 controllers for pods.
func TestInsideTheBoard(t *testing.T) {
	s := setup(t)
	dir := copyImage(t, s.qemuImage)
	b := Boot(t, dir, Options{DebugShell: true})
	mustWaitAPI(t, b)
	want := []string{"e2e-pair", "e2e-sleeper"}
	before, err := b.WaitPods(want, PodsTimeout)
	if err != nil {
		t.Fatal(err)
	}

	sh := b.MustShell // the calling (sub)test's: FailNow stops that one
	pidOf := func(t *testing.T, name string) string {
		t.Helper()
		out := sh(t, fmt.Sprintf(`for d in /proc/[0-9]*; do if [ "$(cat $d/comm)" = %s ]; then echo pid=${d#/proc/}; fi; done`, name))
		m := regexp.MustCompile(`(?m)^pid=(\d+)`).FindAllStringSubmatch(out, -1)
		if len(m) != 1 {
			t.Fatalf("want one %s process, found %d:\n%s", name, len(m), out)
		}
		return m[0][1]
	}

	t.Run("cgroup2", func(t *testing.T) {
		out := sh(t, "cat /sys/fs/cgroup/cgroup.controllers; cat /sys/fs/cgroup/cgroup.subtree_control")
		for _, c := range []string{"cpu", "memory", "pids"} {
			if !regexp.MustCompile(`\b` + c + `\b`).MatchString(out) {
				t.Errorf("cgroup2 controller %s missing from the root's controllers or subtree_control:\n%s", c, out)
			}
		}
		if out := sh(t, "cat /proc/mounts"); strings.Contains(out, " cgroup ") {
			t.Errorf("a cgroup v1 hierarchy is mounted:\n%s", out)
		}
	})

	t.Run("vsock", func(t *testing.T) {
		out := sh(t, "podctl --vsock 1:10250 get pods")
		for _, p := range want {
			if !regexp.MustCompile(`(?m)^` + p + `\s+\d+/\d+\s+Running\s`).MatchString(out) {
				t.Errorf("podctl --vsock 1:10250 get pods lacks %s Running:\n%s", p, out)
			}
		}
	})

	for _, service := range []string{"podagent", "containerd"} {
		t.Run("kill -9 "+service, func(t *testing.T) {
			old := pidOf(t, service)
			sh(t, "kill -9 "+old)
			deadline := time.Now().Add(2 * time.Minute)
			var now string
			for {
				out, _, err := b.Shell(fmt.Sprintf(`for d in /proc/[0-9]*; do if [ "$(cat $d/comm)" = %s ]; then echo pid=${d#/proc/}; fi; done`, service), ShellTimeout)
				if err != nil {
					t.Fatal(err)
				}
				if m := regexp.MustCompile(`(?m)^pid=(\d+)`).FindStringSubmatch(out); m != nil && m[1] != old {
					now = m[1]
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("PID 1 did not restart %s within 2m (killed pid %s)", service, old)
				}
				time.Sleep(time.Second)
			}
			t.Logf("%s: pid %s killed, now pid %s", service, old, now)
			mustWaitAPI(t, b)
			after, err := b.WaitPods(want, PodsTimeout)
			if err != nil {
				t.Fatalf("after kill -9 %s: %v", service, err)
			}
			// The pods keep running, or are recovered with at most one
			// restart per container.
			rb, ra := restarts(before), restarts(after)
			for k, n := range ra {
				if n > rb[k]+1 {
					t.Errorf("%s restarted %d times after kill -9 %s (was %d)", k, n, service, rb[k])
				}
			}
			before = after
		})
	}

	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
}

// TestGenericArm64UEFI: the generic-arm64 image (no kernel on QEMU's
// command line) boots through the UEFI firmware to the API answering, and
// the power button (ACPI under UEFI) powers it off.
func TestGenericArm64UEFI(t *testing.T) {
	s := setup(t)
	if _, err := os.Stat(DefaultFirmwarePath); err != nil {
		testenv.Unavailable(t, "needs %s: apt-get install qemu-efi-aarch64", DefaultFirmwarePath)
	}
	dir := filepath.Join(t.TempDir(), "generic-arm64")
	log, took, err := BuildImage("generic-arm64", "testdata/pods", s.images, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built generic-arm64 in %s:\n%s", took.Round(time.Second), lastLines(log, 10))
	if _, err := os.Stat(filepath.Join(dir, "Image")); err == nil {
		t.Fatalf("%s has an Image: qemu/boot would boot it directly, not through UEFI", dir)
	}
	b := Boot(t, dir, Options{})
	mustWaitAPI(t, b)
	if _, err := b.WaitPods([]string{"e2e-pair", "e2e-sleeper"}, PodsTimeout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.Output(), "-bios") {
		t.Errorf("qemu/boot did not boot through UEFI firmware:\n%s", b.Output())
	}
	mustPowerOff(t, b, b.PowerButton)
	mustBeClean(t, dir)
}
