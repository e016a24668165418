package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/podboot/podboot/internal/nsutil"
	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/qemu/debugshell"
)

// Timeouts are generous: everything runs under TCG on two cores.
const (
	BootTimeout     = 4 * time.Minute
	PodsTimeout     = 5 * time.Minute
	PowerOffTimeout = 3 * time.Minute
	ShellTimeout    = time.Minute
)

// DefaultFirmwarePath is the UEFI firmware qemu/boot uses for images
// without a kernel.
const DefaultFirmwarePath = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"

// Board is one running QEMU guest started by qemu/boot.
type Board struct {
	t          testing.TB
	Dir        string // the image directory
	APIPort    int
	Server     string // https://127.0.0.1:APIPort
	Kubeconfig string
	Console    string // file with everything the console printed
	Serial     string // unix socket to type into the console
	work       string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // qemu/boot's exit; read after exited is closed
	out    *lockedBuffer

	shell *debugshell.Shell
}

// Options for a boot.
type Options struct {
	// DebugShell boots with podboot.debug=shell: the shell on the console
	// that Shell types into.
	DebugShell bool
	// MemoryMiB is the guest's memory; 0 is qemuboot's default (1 GiB).
	MemoryMiB int
	// Forward maps host ports on 127.0.0.1 to guest ports ("HOST:GUEST").
	Forward []string
	// USBDisks are raw disk images plugged in as USB sticks.
	USBDisks []string
}

// FreePort asks the OS for an unused TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RequireTools skips (or fails) the test when a host tool is missing.
func RequireTools(t testing.TB) {
	t.Helper()
	for tool, pkg := range map[string]string{
		"qemu-system-aarch64": "qemu-system-arm",
		"kubectl":             "kubectl (v1.32, from pkgs.k8s.io)",
		"debugfs":             "e2fsprogs",
		"e2fsck":              "e2fsprogs",
	} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "needs %s: install %s", tool, pkg)
		}
	}
}

// Boot starts qemu/boot on the image directory in the background. The
// board is powered off (power button, then killed) at cleanup if the test
// left it running.
func Boot(t testing.TB, dir string, opt Options) *Board {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir(): unix socket paths are limited to 108 bytes.
	work, err := os.MkdirTemp("", "pbe2e")
	if err != nil {
		t.Fatal(err)
	}
	b := &Board{
		t:          t,
		Dir:        dir,
		APIPort:    FreePort(t),
		Kubeconfig: filepath.Join(dir, "kubeconfig"),
		Console:    filepath.Join(work, "console.log"),
		Serial:     filepath.Join(work, "serial.sock"),
		work:       work,
		exited:     make(chan struct{}),
		out:        &lockedBuffer{},
	}
	b.Server = fmt.Sprintf("https://127.0.0.1:%d", b.APIPort)
	b.shell = &debugshell.Shell{Socket: b.Serial, Console: b.ConsoleText, Exited: func() error {
		if !b.Exited() {
			return nil
		}
		if b.err == nil {
			return errors.New("exit status 0")
		}
		return b.err
	}}
	args := []string{dir, "--api-port", strconv.Itoa(b.APIPort), "--console", b.Console, "--serial-socket", b.Serial}
	if opt.DebugShell {
		args = append(args, "--debug-shell")
	}
	for _, f := range opt.Forward {
		args = append(args, "--forward", f)
	}
	for _, d := range opt.USBDisks {
		args = append(args, "--usb-disk", d)
	}
	if opt.MemoryMiB > 0 {
		args = append(args, "--memory", strconv.Itoa(opt.MemoryMiB))
	}
	b.cmd = exec.Command(filepath.Join(root, "qemu", "boot"), args...)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	// If the test binary dies, qemu/boot gets SIGTERM and powers the
	// guest off; Pdeathsig is per thread, hence the kept thread.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	release, err := nsutil.StartOnKeptThread(b.cmd)
	if err != nil {
		t.Fatalf("start qemu/boot: %v", err)
	}
	go func() {
		b.err = b.cmd.Wait()
		release()
		close(b.exited)
	}()
	t.Logf("booting %s: API %s, console %s", dir, b.Server, b.Console)
	t.Cleanup(func() {
		_ = b.shell.Close()
		select {
		case <-b.exited:
		default:
			t.Logf("cleanup: the board is still running; pressing the power button")
			_ = b.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-b.exited:
			case <-time.After(PowerOffTimeout):
				_ = b.cmd.Process.Kill()
				<-b.exited
			}
		}
		if t.Failed() {
			t.Logf("qemu/boot output:\n%s\nconsole (last 150 lines):\n%s", b.out.String(), b.ConsoleTail(150))
		}
		os.RemoveAll(work)
	})
	return b
}

// ConsoleText is everything the console printed so far.
func (b *Board) ConsoleText() string {
	data, _ := os.ReadFile(b.Console)
	return string(data)
}

// ConsoleTail is the last n lines of the console.
func (b *Board) ConsoleTail(n int) string {
	lines := strings.Split(b.ConsoleText(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Output is what qemu/boot printed (its QEMU command line, its log).
func (b *Board) Output() string { return b.out.String() }

// Exited reports whether qemu/boot has returned.
func (b *Board) Exited() bool {
	select {
	case <-b.exited:
		return true
	default:
		return false
	}
}

// WaitConsole waits until the console shows a line matching re, and
// returns the match.
func (b *Board) WaitConsole(re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindString(b.ConsoleText()); m != "" {
			return m, nil
		}
		if b.Exited() {
			return "", fmt.Errorf("QEMU exited (%v) before the console matched %s", b.err, re)
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the console did not match %s within %s", re, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Wait waits for qemu/boot to return and returns its error (nil: the
// guest powered itself off).
func (b *Board) Wait(timeout time.Duration) error {
	select {
	case <-b.exited:
		return b.err
	case <-time.After(timeout):
		return fmt.Errorf("qemu/boot did not return within %s", timeout)
	}
}

// PowerButton presses the power button (qemu/boot turns SIGTERM into
// QMP system_powerdown).
func (b *Board) PowerButton() error {
	return b.cmd.Process.Signal(syscall.SIGTERM)
}

// credentials are what the harness needs from the kubeconfig.
type credentials struct {
	CA    []byte
	Token string
}

func readKubeconfig(path string) (credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return credentials{}, fmt.Errorf("read kubeconfig: %w", err)
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				CAData []byte `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Token string `json:"token"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return credentials{}, fmt.Errorf("parse kubeconfig %s: %w", path, err)
	}
	if len(kc.Clusters) == 0 || len(kc.Users) == 0 || len(kc.Clusters[0].Cluster.CAData) == 0 || kc.Users[0].User.Token == "" {
		return credentials{}, fmt.Errorf("kubeconfig %s: want a cluster with certificate-authority-data and a user with a token", path)
	}
	return credentials{CA: kc.Clusters[0].Cluster.CAData, Token: kc.Users[0].User.Token}, nil
}

// WaitAPI waits until /healthz answers through the forwarded port with
// the certificate the kubeconfig trusts, and an authenticated request
// succeeds while an anonymous one is refused. It returns how long it took.
func (b *Board) WaitAPI(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	creds, err := readKubeconfig(b.Kubeconfig)
	if err != nil {
		return 0, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(creds.CA) {
		return 0, fmt.Errorf("kubeconfig %s: no PEM certificate in certificate-authority-data", b.Kubeconfig)
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer client.CloseIdleConnections()
	get := func(path, token string) (int, string, error) {
		req, _ := http.NewRequest("GET", b.Server+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		return resp.StatusCode, body.String(), nil
	}
	var last string
	for {
		code, body, err := get("/healthz", "")
		if err == nil && code == http.StatusOK {
			break
		}
		last = fmt.Sprintf("%d %q %v", code, body, err)
		if b.Exited() {
			return 0, fmt.Errorf("QEMU exited (%v) before the API answered (last: %s)", b.err, last)
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("GET %s/healthz: no 200 within %s (last: %s)", b.Server, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(start)
	if code, body, err := get("/api/v1/namespaces/default/pods", creds.Token); err != nil || code != http.StatusOK {
		return took, fmt.Errorf("GET /api/v1/namespaces/default/pods with the kubeconfig's token: %d %s %v", code, body, err)
	}
	if code, _, err := get("/api/v1/namespaces/default/pods", ""); err != nil || code != http.StatusUnauthorized {
		return took, fmt.Errorf("GET /api/v1/namespaces/default/pods without a token: got %d %v, want 401", code, err)
	}
	return took, nil
}

// Kubectl runs the real kubectl with the image's kubeconfig, pointed at
// the forwarded port.
func (b *Board) Kubectl(args ...string) (string, error) {
	full := append([]string{
		"--kubeconfig", b.Kubeconfig, "--server", b.Server,
		"--cache-dir", filepath.Join(b.work, "kubecache"), "--request-timeout", "30s",
	}, args...)
	cmd := exec.Command("kubectl", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Pods lists the pods of the default namespace.
func (b *Board) Pods() ([]corev1.Pod, error) {
	out, err := b.Kubectl("get", "pods", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decode kubectl get pods -o json: %w", err)
	}
	return list.Items, nil
}

// Running reports whether a pod is Running with every container running
// and ready.
func Running(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready {
			return false
		}
	}
	return true
}

// WaitPods waits until exactly the named pods exist in the default
// namespace and all are Running, and returns them.
func (b *Board) WaitPods(names []string, timeout time.Duration) ([]corev1.Pod, error) {
	deadline := time.Now().Add(timeout)
	want := strings.Join(sortedCopy(names), " ")
	var last string
	for {
		pods, err := b.Pods()
		if err == nil {
			var got []string
			ok := true
			var states []string
			for _, p := range pods {
				got = append(got, p.Name)
				states = append(states, fmt.Sprintf("%s=%s", p.Name, describe(p)))
				ok = ok && Running(p)
			}
			if ok && strings.Join(sortedCopy(got), " ") == want {
				return pods, nil
			}
			last = strings.Join(states, ", ")
		} else {
			last = err.Error()
		}
		if b.Exited() {
			return nil, fmt.Errorf("QEMU exited (%v) while waiting for pods %s (last: %s)", b.err, want, last)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pods %s not all Running within %s (last: %s)", want, timeout, last)
		}
		time.Sleep(time.Second)
	}
}

// describe is a pod's phase and its containers' states, for messages.
func describe(p corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			s += fmt.Sprintf("/%s:running(ready=%t,restarts=%d)", cs.Name, cs.Ready, cs.RestartCount)
		case cs.State.Waiting != nil:
			s += fmt.Sprintf("/%s:waiting(%s)", cs.Name, cs.State.Waiting.Reason)
		case cs.State.Terminated != nil:
			s += fmt.Sprintf("/%s:terminated(%s)", cs.Name, cs.State.Terminated.Reason)
		}
	}
	return s
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// Podctl runs the host's podctl (built by BuildPodctl) against the board.
func (b *Board) Podctl(podctl string, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", b.Kubeconfig, "--server", b.Server}, args...)
	out, err := exec.Command(podctl, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Shell runs a command in the guest's debug shell (booted with
// DebugShell) by typing it on the serial console, and returns what it
// printed and its exit status (qemu/debugshell).
func (b *Board) Shell(command string, timeout time.Duration) (string, int, error) {
	return b.shell.Run(command, timeout)
}

// MustShell runs command in the debug shell and fails t (the calling
// test or subtest) unless it exits 0.
func (b *Board) MustShell(t testing.TB, command string) string {
	t.Helper()
	out, status, err := b.Shell(command, ShellTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if status != 0 {
		t.Fatalf("debug shell: %q exited %d:\n%s", command, status, out)
	}
	return out
}

// MustShellMatch runs command until its output matches re, at most three
// times: the console is shared with the services' logs, and a log line may
// cut into the middle of the command's output.
func (b *Board) MustShellMatch(t testing.TB, command string, re *regexp.Regexp) []string {
	t.Helper()
	var out string
	for range 3 {
		out = b.MustShell(t, command)
		if m := re.FindStringSubmatch(out); m != nil {
			return m
		}
	}
	t.Fatalf("debug shell: %q: no match for %s in three tries; last output:\n%s", command, re, out)
	return nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
