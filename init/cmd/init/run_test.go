package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/init/power"
)

// Every step runs in order, and a failed one does not stop the next.
func TestShutdownOrderGoesOn(t *testing.T) {
	var did []string
	mk := func(name string, err error) step {
		return step{name, func(context.Context) (string, error) { did = append(did, name); return "", err }}
	}
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	shutdown(context.Background(), []step{
		mk("stop services", nil), mk("save clock", errors.New("read-only file system")), mk("sync", nil),
		mk("unmount flash", nil), mk("drain console", nil),
	}, log)
	if diff := cmp.Diff([]string{"stop services", "save clock", "sync", "unmount flash", "drain console"}, did); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if !strings.Contains(out.String(), `msg="shutdown step failed" step="save clock" err="read-only file system"`) {
		t.Errorf("failed step not logged:\n%s", out.String())
	}
}

// The board's shutdown is the contract's order.
func TestShutdownStepsOrder(t *testing.T) {
	var names []string
	for _, s := range shutdownSteps(defaultConfig(), nil, flashState{}, "/flash/.podboot/clock") {
		names = append(names, s.name)
	}
	if diff := cmp.Diff([]string{"stop services", "save clock", "sync", "unmount flash", "drain console"}, names); diff != "" {
		t.Errorf("shutdown steps (-want +got):\n%s", diff)
	}
}

// Services start containerd, podagent, shell; the supervisor stops them
// in reverse, so podagent (which stops the pods) goes before containerd.
// podagent's command line is the contract's.
func TestServices(t *testing.T) {
	cfg := defaultConfig()
	svcs := services(cfg, true, func(string) io.Writer { return io.Discard }, func(error) {})
	type svc struct {
		Name        string
		Args        []string
		StopTimeout time.Duration
		MaxFailures int
		Setsid      bool
	}
	var got []svc
	for _, s := range svcs {
		cmd := s.Command()
		got = append(got, svc{s.Name, cmd.Args, s.StopTimeout, s.MaxFailures, cmd.SysProcAttr != nil && cmd.SysProcAttr.Setsid})
	}
	want := []svc{
		{"containerd", []string{"/bin/containerd", "--config", "/run/containerd/config.toml"}, 10 * time.Second, 10, false},
		{"podagent", []string{"/bin/podagent", "--flash", "/flash", "--state", "/run/podboot",
			"--containerd", "/run/containerd/containerd.sock", "--runc", "/bin/runc", "--cni-bin-dir", "/usr/libexec/cni"}, 60 * time.Second, 10, false},
		{"shell", []string{"/bin/sh"}, 250 * time.Millisecond, 0, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if n := len(services(cfg, false, func(string) io.Writer { return io.Discard }, nil)); n != 2 {
		t.Errorf("without podboot.debug=shell: %d services, want 2", n)
	}
	if !strings.Contains(containerdLayout().Config(), `root = "/var/lib/containerd"`) {
		t.Errorf("containerd root is not /var/lib/containerd:\n%s", containerdLayout().Config())
	}
}

func TestLoggerShowsUptime(t *testing.T) {
	var out bytes.Buffer
	log := newLogger(&out, time.Now().Add(-1500*time.Millisecond))
	log.Info("podboot init starting", "pid", 1)
	if !regexp.MustCompile(`^up=1\.5\d\d level=INFO msg="podboot init starting" pid=1\n$`).MatchString(out.String()) {
		t.Errorf("log line %q", out.String())
	}
}

func TestSafelyRecoversPanic(t *testing.T) {
	var out bytes.Buffer
	err := safely(slog.New(slog.NewTextHandler(&out, nil)), func() error { panic("boom") })
	if err == nil || err.Error() != "panic: boom" {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(out.String(), "PID 1 panicked") || !strings.Contains(out.String(), "run_test.go") {
		t.Errorf("no panic log with a stack:\n%s", out.String())
	}
	sd := &power.Shutdown{Action: power.PowerOff, Reason: "signal user defined signal 2"}
	if err := safely(slog.New(slog.DiscardHandler), func() error { return sd }); !errors.As(err, new(*power.Shutdown)) {
		t.Errorf("a shutdown is passed through: %v", err)
	}
}

func TestTeeIgnoresFailingWriter(t *testing.T) {
	var a, b bytes.Buffer
	tw := &tee{}
	tw.add(&a)
	tw.add(failWriter{})
	tw.add(&b)
	if n, err := tw.Write([]byte("line\n")); n != 5 || err != nil {
		t.Errorf("Write = %d, %v", n, err)
	}
	if a.String() != "line\n" || b.String() != "line\n" {
		t.Errorf("a %q b %q", a.String(), b.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }
