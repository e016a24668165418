package hostnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/device"
)

// fakeLinks records what was configured.
type fakeLinks struct {
	mu      sync.Mutex
	calls   []string
	first   string
	carrier map[string]bool
	fail    map[string]int // call prefix -> failures left
}

func (f *fakeLinks) rec(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	for prefix, n := range f.fail {
		if n > 0 && strings.HasPrefix(call, prefix) {
			f.fail[prefix] = n - 1
			return errors.New("operation not permitted")
		}
	}
	return nil
}

func (f *fakeLinks) LoopbackUp() error { return f.rec("up lo") }
func (f *fakeLinks) FirstEthernet() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first == "" {
		return "", errors.New("no ethernet interface")
	}
	return f.first, nil
}
func (f *fakeLinks) SetUp(name string) error { return f.rec("up " + name) }
func (f *fakeLinks) Carrier(name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	up, ok := f.carrier[name]
	if !ok {
		return false, fmt.Errorf("link %s not found", name)
	}
	return up, nil
}
func (f *fakeLinks) setCarrier(name string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.carrier[name] = up
}
func (f *fakeLinks) ReplaceAddr(name string, p netip.Prefix) error {
	return f.rec("addr " + p.String() + " dev " + name)
}
func (f *fakeLinks) ReplaceDefaultRoute(name string, gw netip.Addr) error {
	return f.rec("route default via " + gw.String() + " dev " + name)
}
func (f *fakeLinks) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

var fastTiming = Timing{Retry: time.Second, MaxRetry: 8 * time.Second, LinkPoll: time.Second, MinRenew: 30 * time.Second, DefaultDur: time.Hour}

func TestFromDevice(t *testing.T) {
	c, err := FromDevice(device.Network{Interface: "end0", Addresses: []string{"192.168.1.20/24", "fd00::20/64"},
		Gateway: "192.168.1.1", Nameservers: []string{"1.1.1.1"}}, "/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Interface: "end0", Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.20/24"), netip.MustParsePrefix("fd00::20/64")},
		Gateway: netip.MustParseAddr("192.168.1.1"), Nameservers: []netip.Addr{netip.MustParseAddr("1.1.1.1")}, ResolvConf: "/etc/resolv.conf"}
	if diff := cmp.Diff(want, c, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if !c.Static() {
		t.Error("addresses given: not static")
	}
	if _, err := FromDevice(device.Network{Gateway: "router"}, ""); err == nil || !strings.Contains(err.Error(), "network.gateway") {
		t.Errorf("bad gateway: %v", err)
	}
}

// The static path: retries a failing step, then configures the interface
// and writes resolv.conf; the DHCP client is never asked.
func TestStaticConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		resolv := filepath.Join(t.TempDir(), "resolv.conf")
		links := &fakeLinks{first: "eth0", carrier: map[string]bool{"eth0": false}, fail: map[string]int{"route": 1}}
		var configured []string
		r := &Runner{
			Config: Config{Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.1.20/24")}, Gateway: netip.MustParseAddr("192.168.1.1"),
				Nameservers: []netip.Addr{netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("9.9.9.9")}, ResolvConf: resolv},
			Links: links,
			DHCP: func(context.Context, string) (Lease, error) {
				t.Error("DHCP asked for a static config")
				return Lease{}, nil
			},
			Timing:     fastTiming,
			Log:        slog.New(slog.DiscardHandler),
			Configured: func(name string, a []netip.Prefix) { configured = append(configured, name+" "+a[0].String()) },
		}
		r.Run(context.Background())
		want := []string{
			"up lo",
			"up eth0", "addr 192.168.1.20/24 dev eth0", "route default via 192.168.1.1 dev eth0",
			"up eth0", "addr 192.168.1.20/24 dev eth0", "route default via 192.168.1.1 dev eth0",
		}
		if diff := cmp.Diff(want, links.log()); diff != "" {
			t.Errorf("link calls (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"eth0 192.168.1.20/24"}, configured); diff != "" {
			t.Errorf("configured (-want +got):\n%s", diff)
		}
		b, _ := os.ReadFile(resolv)
		if diff := cmp.Diff("# written by podboot's PID 1\nnameserver 192.168.1.1\nnameserver 9.9.9.9\n", string(b)); diff != "" {
			t.Errorf("resolv.conf (-want +got):\n%s", diff)
		}
	})
}

// DHCP waits for the cable, retries a failing exchange, renews at half
// the lease and asks again at once when the link comes back up.
func TestDHCPCarrierAndRenew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		resolv := filepath.Join(t.TempDir(), "resolv.conf")
		links := &fakeLinks{carrier: map[string]bool{}}
		var mu sync.Mutex
		var asked []time.Duration
		t0 := time.Now()
		dhcp := func(ctx context.Context, name string) (Lease, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, time.Since(t0).Round(time.Second))
			if len(asked) == 1 {
				return Lease{}, errors.New("no DHCPOFFER")
			}
			return Lease{Address: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
				Nameservers: []netip.Addr{netip.MustParseAddr("10.0.2.3")}, Duration: 2 * time.Minute}, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &Runner{Config: Config{ResolvConf: resolv}, Links: links, DHCP: dhcp, Timing: fastTiming, Log: slog.New(slog.DiscardHandler)}
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()

		time.Sleep(2500 * time.Millisecond) // no interface yet (driver loading)
		links.mu.Lock()
		links.first = "eth0"
		links.carrier["eth0"] = false
		links.mu.Unlock()
		time.Sleep(5 * time.Second) // no cable
		links.setCarrier("eth0", true)
		time.Sleep(2*time.Minute + 10*time.Second) // fail, retry 1 s later, renew after 60 s
		links.setCarrier("eth0", false)
		time.Sleep(5 * time.Second)
		links.setCarrier("eth0", true)
		time.Sleep(3 * time.Second)
		cancel()
		<-done

		// Interface at 3 s (after waits of 1 s and 2 s), carrier at 7.5 s
		// seen at 8 s; retry at 9 s; renewals at 69 s and 129 s; link down
		// at ~137.5 s, back at ~142.5 s, asked at 143 s.
		want := []time.Duration{8 * time.Second, 9 * time.Second, 69 * time.Second, 129 * time.Second, 143 * time.Second}
		if diff := cmp.Diff(want, asked); diff != "" {
			t.Errorf("DHCP requests at (-want +got):\n%s", diff)
		}
		b, _ := os.ReadFile(resolv)
		if !strings.Contains(string(b), "nameserver 10.0.2.3\n") {
			t.Errorf("resolv.conf = %q", b)
		}
		calls := strings.Join(links.log(), "\n")
		if !strings.Contains(calls, "addr 10.0.2.15/24 dev eth0\nroute default via 10.0.2.2 dev eth0") {
			t.Errorf("lease not applied:\n%s", calls)
		}
	})
}

// device.yaml's nameservers replace the ones DHCP offers.
func TestDHCPNameserverOverride(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		resolv := filepath.Join(t.TempDir(), "resolv.conf")
		links := &fakeLinks{first: "eth0", carrier: map[string]bool{"eth0": true}}
		ctx, cancel := context.WithCancel(context.Background())
		r := &Runner{Config: Config{ResolvConf: resolv, Nameservers: []netip.Addr{netip.MustParseAddr("1.1.1.1")}}, Links: links,
			DHCP: func(context.Context, string) (Lease, error) {
				return Lease{Address: netip.MustParsePrefix("10.0.2.15/24"), Nameservers: []netip.Addr{netip.MustParseAddr("10.0.2.3")}, Search: []string{"lan"}}, nil
			},
			Timing: fastTiming, Log: slog.New(slog.DiscardHandler)}
		go r.Run(ctx)
		time.Sleep(time.Second)
		cancel()
		synctest.Wait()
		b, _ := os.ReadFile(resolv)
		if diff := cmp.Diff("# written by podboot's PID 1\nnameserver 1.1.1.1\nsearch lan\n", string(b)); diff != "" {
			t.Errorf("resolv.conf (-want +got):\n%s", diff)
		}
	})
}
