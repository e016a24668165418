package containerd

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/testenv"
)

func TestIntegrationContainerIO(t *testing.T) {
	h := newHarness(t)
	img := h.importImage(t, "busybox:1.36")
	nginx := h.importImage(t, "nginx:1.29") // ENTRYPOINT ["/docker-entrypoint.sh"], CMD ["nginx", ...]
	pod := testPod("io")
	sb := h.sandbox(t, pod)
	tests := []struct {
		name     string
		img      *runtime.Image
		spec     corev1.Container
		psc      *corev1.PodSecurityContext
		wantLog  string
		wantExit int32
		exact    bool // the whole log, not a part
	}{
		{
			name:    "command and args with expansion",
			spec:    corev1.Container{Command: []string{"echo", "$(GREETING)"}, Args: []string{"$(WHO)", "$$(WHO)", "$(NOPE)"}, Env: []corev1.EnvVar{{Name: "GREETING", Value: "hello"}, {Name: "WHO", Value: "$(GREETING) world"}}},
			wantLog: "hello hello world $(WHO) $(NOPE)\n",
		},
		{
			// busybox's CMD is ["sh"] and it has no ENTRYPOINT.
			name:    "args replace CMD",
			spec:    corev1.Container{Args: []string{"echo", "args-only"}},
			wantLog: "args-only\n",
		},
		{
			name:    "args after the image's ENTRYPOINT",
			img:     &nginx,
			spec:    corev1.Container{Args: []string{"echo", "after-entrypoint"}},
			wantLog: "/docker-entrypoint.sh: podboot busybox stand-in for nginx\nafter-entrypoint\n",
		},
		{
			name:    "command replaces ENTRYPOINT and drops CMD",
			img:     &nginx,
			spec:    corev1.Container{Command: []string{"echo", "only-command"}},
			wantLog: "only-command\n",
			exact:   true,
		},
		{
			name:    "env over image env, HOSTNAME",
			spec:    corev1.Container{Command: []string{"sh", "-c", `echo "$PATH|$HOSTNAME|$A"`}, Env: []corev1.EnvVar{{Name: "A", Value: "b"}}},
			wantLog: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|io|b\n",
		},
		{
			name:    "workingDir",
			spec:    corev1.Container{Command: []string{"pwd"}, WorkingDir: "/tmp"},
			wantLog: "/tmp\n",
		},
		{
			name:    "runAsUser from the pod, group from the image's passwd",
			spec:    corev1.Container{Command: []string{"id"}},
			psc:     &corev1.PodSecurityContext{RunAsUser: int64p(65534)},
			wantLog: "uid=65534(nobody) gid=65534(nobody)",
		},
		{
			name:    "container runAsUser/runAsGroup over the pod's",
			spec:    corev1.Container{Command: []string{"id", "-u"}, SecurityContext: &corev1.SecurityContext{RunAsUser: int64p(1000), RunAsGroup: int64p(3000)}},
			psc:     &corev1.PodSecurityContext{RunAsUser: int64p(65534)},
			wantLog: "1000\n",
		},
		{
			name:     "readOnlyRootFilesystem",
			spec:     corev1.Container{Command: []string{"sh", "-c", "touch /x || echo read-only; touch /tmp/y"}, SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: boolp(true)}},
			wantLog:  "read-only\n",
			wantExit: 1,
		},
		{
			name:    "unprivileged: no host devices",
			spec:    corev1.Container{Command: []string{"sh", "-c", "[ -e /dev/kmsg ] || echo no-host-devices"}},
			wantLog: "no-host-devices\n",
		},
		{
			name:    "privileged: host devices and all capabilities",
			spec:    corev1.Container{Command: []string{"sh", "-c", "[ -e /dev/kmsg ] && echo host-devices; grep CapEff /proc/self/status"}, SecurityContext: &corev1.SecurityContext{Privileged: boolp(true)}},
			wantLog: "host-devices\nCapEff:\t000001ff",
		},
		{
			name:     "exit code",
			spec:     corev1.Container{Command: []string{"sh", "-c", "echo err >&2; exit 3"}},
			wantLog:  "err\n",
			wantExit: 3,
		},
		{
			name:    "hostname and IPC namespace",
			spec:    corev1.Container{Command: []string{"sh", "-c", "hostname; readlink /proc/self/ns/uts"}},
			wantLog: "io\n",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = "c" + string(rune('a'+i))
			image := img
			if tt.img != nil {
				image = *tt.img
			}
			cfg := h.containerConfig(pod, sb, image, tt.spec)
			cfg.PodSecurityContext = tt.psc
			st := h.start(t, cfg)
			got := h.waitExited(t, st.ID)
			if got.ExitCode != tt.wantExit {
				t.Errorf("exit code %d, want %d (log: %q)", got.ExitCode, tt.wantExit, readLog(t, cfg))
			}
			if log := readLog(t, cfg); !strings.Contains(log, tt.wantLog) || tt.exact && log != tt.wantLog {
				t.Errorf("log = %q, want it to contain %q", log, tt.wantLog)
			}
			if got.StartedAt.IsZero() || got.FinishedAt.Before(got.StartedAt) {
				t.Errorf("times: started %v finished %v", got.StartedAt, got.FinishedAt)
			}
			if err := h.r.RemoveContainer(h.ctx, st.ID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIntegrationStartError(t *testing.T) {
	h := newHarness(t)
	img := h.importImage(t, "busybox:1.36")
	pod := testPod("starterr")
	sb := h.sandbox(t, pod)
	cfg := h.containerConfig(pod, sb, img, corev1.Container{Name: "bad", Command: []string{"/no/such/binary"}})
	st, err := h.r.StartContainer(h.ctx, cfg)
	if err == nil {
		t.Fatal("StartContainer succeeded, want a start error")
	}
	if st.ID == "" || st.State != runtime.ContainerExited || st.ExitCode != 128 || st.Reason != "StartError" {
		t.Fatalf("status = %+v, want exited 128 StartError", st)
	}
	if !strings.Contains(st.Message, "failed to create containerd task") || !strings.Contains(st.Message, "/no/such/binary") {
		t.Errorf("message %q does not read like containerd's CRI", st.Message)
	}
	listed, ok := h.find(t, h.r, st.ID)
	if !ok || listed.Reason != "StartError" || listed.ExitCode != 128 || listed.FinishedAt.IsZero() {
		t.Errorf("listed = %+v, want the StartError instance", listed)
	}
	if err := h.r.RemoveContainer(h.ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.find(t, h.r, st.ID); ok {
		t.Error("removed container is still listed")
	}
}

// A two-container pod shares network, IPC and UTS namespaces and runs in
// one shim.
func TestIntegrationPodSharing(t *testing.T) {
	h := newHarness(t)
	img := h.importImage(t, "busybox:1.36")
	pod := testPod("shared")
	sb := h.sandbox(t, pod)
	server := h.containerConfig(pod, sb, img, corev1.Container{Name: "server", Command: []string{"sh", "-c",
		"hostname; readlink /proc/self/ns/ipc; echo hello-from-server | nc -l -p 7777"}})
	client := h.containerConfig(pod, sb, img, corev1.Container{Name: "client", Command: []string{"sh", "-c",
		"hostname; readlink /proc/self/ns/ipc; for i in $(seq 50); do nc 127.0.0.1 7777 && exit 0; sleep 0.1; done; exit 1"}})
	s := h.start(t, server)
	c := h.start(t, client)
	if got := h.waitExited(t, c.ID); got.ExitCode != 0 {
		t.Errorf("client exit %d; log:\n%s", got.ExitCode, readLog(t, client))
	}
	h.waitExited(t, s.ID)
	serverLog, clientLog := strings.Split(readLog(t, server), "\n"), strings.Split(readLog(t, client), "\n")
	if serverLog[0] != "shared" || clientLog[0] != "shared" {
		t.Errorf("hostnames %q and %q, want the pod name", serverLog[0], clientLog[0])
	}
	if serverLog[1] != clientLog[1] {
		t.Errorf("IPC namespaces differ: %q and %q", serverLog[1], clientLog[1])
	}
	if !strings.Contains(readLog(t, client), "hello-from-server") {
		t.Errorf("client did not reach the server over 127.0.0.1:\n%s", readLog(t, client))
	}
}

func TestIntegrationOneShimPerPod(t *testing.T) {
	h := newHarness(t)
	img := h.importImage(t, "busybox:1.36")
	pod := testPod("shim")
	sb := h.sandbox(t, pod)
	var ids []string
	for _, name := range []string{"a", "b"} {
		st := h.start(t, h.containerConfig(pod, sb, img, corev1.Container{Name: name, Command: []string{"sleep", "3600"}}))
		ids = append(ids, st.ID)
	}
	if n := countShims(t, h.env.Layout.Dir); n != 1 {
		t.Errorf("%d shims for a two-container pod, want 1", n)
	}
	for _, id := range ids {
		if err := h.r.StopContainer(h.ctx, id, 0); err != nil {
			t.Fatal(err)
		}
		if err := h.r.RemoveContainer(h.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// countShims counts the shim processes of the daemon at dir.
func countShims(t testing.TB, dir string) int { return len(shimPIDs(t, dir)) }

func TestIntegrationStop(t *testing.T) {
	h := newHarness(t)
	busybox := h.importImage(t, "busybox:1.36")
	nginx := h.importImage(t, "nginx:1.29")
	if nginx.StopSignal != "SIGQUIT" {
		t.Fatalf("nginx stop signal %q, want SIGQUIT", nginx.StopSignal)
	}
	pod := testPod("stop")
	sb := h.sandbox(t, pod)
	tests := []struct {
		name        string
		img         runtime.Image
		spec        corev1.Container
		grace       time.Duration
		wantExit    int32
		minDuration time.Duration
		maxDuration time.Duration
	}{
		{
			// sh as PID 1 ignores SIGTERM: the grace period runs out.
			name: "escalates to SIGKILL after grace", img: busybox,
			spec:  corev1.Container{Command: []string{"sh", "-c", "echo ready; while :; do sleep 1; done"}},
			grace: 1500 * time.Millisecond, wantExit: 137, minDuration: 1500 * time.Millisecond, maxDuration: 10 * time.Second,
		},
		{
			name: "STOPSIGNAL honored", img: busybox,
			spec:  corev1.Container{Command: []string{"sh", "-c", "trap 'echo got-quit; exit 7' QUIT; echo ready; while :; do sleep 0.1; done"}},
			grace: 20 * time.Second, wantExit: 7, maxDuration: 5 * time.Second,
		},
		{
			name: "nginx stand-in stops on SIGQUIT", img: nginx,
			spec:  corev1.Container{},
			grace: 20 * time.Second, wantExit: 0, maxDuration: 5 * time.Second,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = "s" + string(rune('a'+i))
			img := tt.img
			if tt.name == "STOPSIGNAL honored" {
				img.StopSignal = "SIGQUIT"
			}
			cfg := h.containerConfig(pod, sb, img, tt.spec)
			st := h.start(t, cfg)
			if tt.img.Ref == busybox.Ref {
				waitLog(t, cfg, "ready")
			} else {
				time.Sleep(300 * time.Millisecond) // let the entrypoint install its traps
			}
			begin := time.Now()
			if err := h.r.StopContainer(h.ctx, st.ID, tt.grace); err != nil {
				t.Fatal(err)
			}
			took := time.Since(begin)
			got, _ := h.find(t, h.r, st.ID)
			if got.State != runtime.ContainerExited || got.ExitCode != tt.wantExit {
				t.Errorf("after stop: %s exit %d, want exited %d; log:\n%s", got.State, got.ExitCode, tt.wantExit, readLog(t, cfg))
			}
			if took < tt.minDuration || took > tt.maxDuration {
				t.Errorf("stop took %v, want between %v and %v", took, tt.minDuration, tt.maxDuration)
			}
			if err := h.r.StopContainer(h.ctx, st.ID, tt.grace); err != nil {
				t.Errorf("stopping an exited container: %v", err)
			}
			if err := h.r.RemoveContainer(h.ctx, st.ID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIntegrationAdoption(t *testing.T) {
	h := newHarness(t)
	img := h.importImage(t, "busybox:1.36")
	pod := testPod("adopt")
	sb := h.sandbox(t, pod)
	cfg := h.containerConfig(pod, sb, img, corev1.Container{Name: "ticker", Command: []string{"sh", "-c",
		"i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.1; done"}})
	cfg.Attempt = 2
	st := h.start(t, cfg)
	waitLog(t, cfg, "tick-3")

	// The old agent goes away without stopping anything.
	if err := h.r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := h.open(t)
	list, err := r2.ListContainers(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("adopted %d containers, want 1: %+v", len(list), list)
	}
	got := list[0]
	want := runtime.ContainerStatus{ID: st.ID, Pod: pod, Name: "ticker", Attempt: 2, State: runtime.ContainerRunning, Image: img}
	if diff := cmp.Diff(want, got, cmpIgnoreTimes); diff != "" {
		t.Errorf("adopted container (-want +got):\n%s", diff)
	}
	sbs, err := r2.ListSandboxes(h.ctx)
	if err != nil || len(sbs) != 1 || sbs[0].NetNS != sb.NetNS {
		t.Errorf("adopted sandboxes = %+v, %v; want the pod's", sbs, err)
	}
	// Logging goes on: ticks written after the restart reach the same log.
	before := strings.Count(readLog(t, cfg), "tick-")
	waitLog(t, cfg, "tick-"+itoa(before+5))
	if err := r2.StopContainer(h.ctx, st.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := r2.RemoveContainer(h.ctx, st.ID); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationRemoveSandboxLeavesNoMounts(t *testing.T) {
	h := newHarness(t)
	pod := testPod("mounts")
	sb := h.sandbox(t, pod)
	again := h.sandbox(t, pod)
	if diff := cmp.Diff(sb, again); diff != "" {
		t.Errorf("RunSandbox is not idempotent (-first +second):\n%s", diff)
	}
	for _, p := range []string{sb.NetNS, sb.IPCNS, sb.UTSNS} {
		if m, _ := testenv.Mounts(p); len(m) != 1 {
			t.Errorf("%s is not pinned: mounts %v", p, m)
		}
	}
	host, err := h.r.RunSandbox(h.ctx, runtime.SandboxConfig{Pod: testPod("host"), Hostname: "host", HostNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	if host.NetNS != "" || host.UTSNS != "" || host.IPCNS == "" {
		t.Errorf("hostNetwork sandbox = %+v, want host net and UTS, own IPC", host)
	}
	for _, p := range []runtime.PodRef{pod, testPod("host")} {
		if err := h.r.RemoveSandbox(h.ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := h.r.RemoveSandbox(h.ctx, p); err != nil {
			t.Errorf("removing a removed sandbox: %v", err)
		}
	}
	if m, err := testenv.Mounts(h.env.StateDir + "/netns/uid-mounts"); err != nil || len(m) != 0 {
		t.Errorf("mounts left: %v (%v)", m, err)
	}
	if _, err := os.Stat(h.env.StateDir + "/netns/uid-mounts"); !os.IsNotExist(err) {
		t.Errorf("namespace directory left behind: %v", err)
	}
	if sbs, err := h.r.ListSandboxes(h.ctx); err != nil || len(sbs) != 0 {
		t.Errorf("ListSandboxes after removal = %+v, %v", sbs, err)
	}
}

func TestIntegrationEvents(t *testing.T) {
	h := newHarness(t)
	img := h.importImage(t, "busybox:1.36")
	pod := testPod("events")
	sb := h.sandbox(t, pod)
	evs, err := h.r.Events(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := h.start(t, h.containerConfig(pod, sb, img, corev1.Container{Name: "quick", Command: []string{"true"}}))
	select {
	case ev := <-evs:
		want := runtime.Event{Type: runtime.EventContainerExited, ContainerID: st.ID, PodUID: pod.UID}
		if diff := cmp.Diff(want, ev); diff != "" {
			t.Errorf("event (-want +got):\n%s", diff)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit event")
	}
}

func TestIntegrationImages(t *testing.T) {
	h := newHarness(t)
	t.Run("docker archive", func(t *testing.T) {
		names, err := h.r.ImportArchive(h.ctx, testenv.Image(t, "registry.k8s.io/busybox:1.27.2"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"registry.k8s.io/busybox:1.24", "registry.k8s.io/busybox:1.27.2", "registry.k8s.io/busybox:latest"}
		if diff := cmp.Diff(want, sorted(names)); diff != "" {
			t.Errorf("imported (-want +got):\n%s", diff)
		}
	})
	t.Run("OCI archive", func(t *testing.T) {
		p := ociArchive(t, "busybox:1.36", "debian:bookworm")
		names, err := h.r.ImportArchive(h.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"docker.io/library/busybox:1.36", "docker.io/library/debian:bookworm"}
		if diff := cmp.Diff(want, sorted(names)); diff != "" {
			t.Errorf("imported (-want +got):\n%s", diff)
		}
		img, err := h.r.EnsureImage(h.ctx, "busybox:1.36", corev1.PullNever)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(img.ID, "docker.io/library/busybox@sha256:") || img.Ref != "docker.io/library/busybox:1.36" {
			t.Errorf("image = %+v", img)
		}
	})
	t.Run("bad archive", func(t *testing.T) {
		p := t.TempDir() + "/junk.tar"
		os.WriteFile(p, []byte("not a tar"), 0o644)
		if _, err := h.r.ImportArchive(h.ctx, p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("ImportArchive(junk) error = %v, want one naming the file", err)
		}
	})

	host := testenv.Registry(t)
	pushed := pushStandIn(t, host, "busybox:1.36", "library/busybox:1.36")
	tests := []struct {
		name    string
		image   string
		policy  corev1.PullPolicy
		wantErr func(error) bool
		errText string
	}{
		{name: "Never, absent", image: host + "/library/busybox:1.36", policy: corev1.PullNever,
			wantErr: func(err error) bool { return errors.Is(err, runtime.ErrImageNeverPull) }},
		{name: "IfNotPresent pulls", image: host + "/library/busybox:1.36", policy: corev1.PullIfNotPresent},
		{name: "Never, present", image: host + "/library/busybox:1.36", policy: corev1.PullNever},
		{name: "Always pulls", image: host + "/library/busybox:1.36", policy: corev1.PullAlways},
		{name: "missing tag", image: host + "/library/busybox:nope", policy: corev1.PullIfNotPresent,
			wantErr: isPullError, errText: "not found"},
		{name: "connection refused", image: "127.0.0.1:1/busybox:1", policy: corev1.PullAlways,
			wantErr: isPullError, errText: "connection refused"},
		{name: "invalid name", image: "Busybox:UPPER", policy: corev1.PullAlways,
			wantErr: func(err error) bool { return err != nil && strings.Contains(err.Error(), "invalid image name") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := h.r.EnsureImage(h.ctx, tt.image, tt.policy)
			if tt.wantErr != nil {
				if !tt.wantErr(err) || !strings.Contains(errString(err), tt.errText) {
					t.Fatalf("EnsureImage() error = %v, want a matching error with %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := runtime.Image{Ref: tt.image, ID: host + "/library/busybox@" + pushed}
			if diff := cmp.Diff(want, img); diff != "" {
				t.Errorf("image (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("pulled image runs", func(t *testing.T) {
		img, err := h.r.EnsureImage(h.ctx, host+"/library/busybox:1.36", corev1.PullNever)
		if err != nil {
			t.Fatal(err)
		}
		pod := testPod("pulled")
		cfg := h.containerConfig(pod, h.sandbox(t, pod), img, corev1.Container{Name: "c", Command: []string{"echo", "pulled"}})
		st := h.start(t, cfg)
		h.waitExited(t, st.ID)
		if log := readLog(t, cfg); log != "pulled\n" {
			t.Errorf("log = %q", log)
		}
	})
}

func isPullError(err error) bool {
	var pe *runtime.PullError
	return errors.As(err, &pe)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
