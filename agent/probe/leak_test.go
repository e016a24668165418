package probe_test

import (
	"bytes"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podboot/podboot/agent/probe"
)

// TestProbesLeaveNoGoroutine: probes of every network kind, passing and
// failing, leave no goroutine behind once their servers have seen the
// connections close (the churn of probed pods must not grow the agent).
func TestProbesLeaveNoGoroutine(t *testing.T) {
	plain := newProbeServer(t, false)
	secure := newProbeServer(t, true)
	grpcPort, _ := serveGRPC(t, true)
	refused := closedPort(t)
	handlers := []*corev1.ProbeHandler{
		{HTTPGet: &corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(plain.port())}},
		{HTTPGet: &corev1.HTTPGetAction{Path: "/fail", Port: intstr.FromInt(plain.port())}},
		{HTTPGet: &corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt(plain.port())}},
		{HTTPGet: &corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/ok", Port: intstr.FromInt(secure.port())}},
		{HTTPGet: &corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(refused)}},
		{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(plain.port())}},
		{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(refused)}},
		{GRPC: &corev1.GRPCAction{Port: int32(grpcPort)}},
		{GRPC: &corev1.GRPCAction{Port: int32(grpcPort), Service: new("slow")}},
		{GRPC: &corev1.GRPCAction{Port: int32(refused)}},
	}
	p := &probe.Prober{UserAgent: userAgent}
	target := probe.Target{Container: &corev1.Container{Name: "app"}, PodIP: "127.0.0.1"}
	// One round first, so that what is started once per process (the
	// HTTP/2 and gRPC machinery) is in the baseline.
	for _, h := range handlers {
		p.Probe(t.Context(), h, target, 100*time.Millisecond)
	}
	base := stableGoroutines()
	for range 5 {
		for _, h := range handlers {
			p.Probe(t.Context(), h, target, 100*time.Millisecond)
		}
	}
	if n := settledGoroutines(base); n > base {
		var buf bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Errorf("%d goroutines after the probes, %d before:\n%s", n, base, buf.String())
	}
}

// stableGoroutines waits for the goroutine count to hold still for
// 200 ms (what the first round started has ended) and returns it.
func stableGoroutines() int {
	n, same := runtime.NumGoroutine(), 0
	for same < 10 {
		time.Sleep(20 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

// settledGoroutines waits up to 5 s for the goroutine count to fall to
// want, and returns the count.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}
