// Package hostnet brings up the board's host network: loopback, then one
// ethernet interface, either with the static addresses, gateway and
// nameservers of device.yaml or by DHCP (u-root's dhclient, which speaks
// through insomniacslk/dhcp), and /etc/resolv.conf. Run runs in the
// background and retries forever, so a missing cable never blocks the
// boot, and asks DHCP again when the link comes back after going down.
package hostnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/podboot/podboot/internal/atomicfile"
	"github.com/podboot/podboot/internal/device"
)

// Config is the host network to set up.
type Config struct {
	// Interface is the link; "" is the first ethernet interface.
	Interface string
	// Addresses, when set, make the configuration static.
	Addresses   []netip.Prefix
	Gateway     netip.Addr
	Nameservers []netip.Addr
	// ResolvConf is where the nameservers are written (/etc/resolv.conf).
	ResolvConf string
}

// FromDevice converts device.yaml's network section (already validated by
// package device).
func FromDevice(n device.Network, resolvConf string) (Config, error) {
	c := Config{Interface: n.Interface, ResolvConf: resolvConf}
	for i, a := range n.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return Config{}, fmt.Errorf("network.addresses[%d]: %w", i, err)
		}
		c.Addresses = append(c.Addresses, p)
	}
	if n.Gateway != "" {
		g, err := netip.ParseAddr(n.Gateway)
		if err != nil {
			return Config{}, fmt.Errorf("network.gateway: %w", err)
		}
		c.Gateway = g
	}
	for i, s := range n.Nameservers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Config{}, fmt.Errorf("network.nameservers[%d]: %w", i, err)
		}
		c.Nameservers = append(c.Nameservers, a)
	}
	return c, nil
}

// Static reports whether the addresses are given.
func (c Config) Static() bool { return len(c.Addresses) > 0 }

// Links is the link layer; a seam so the configuration is tested without
// a network namespace.
type Links interface {
	// LoopbackUp sets lo up.
	LoopbackUp() error
	// FirstEthernet names the first physical ethernet interface.
	FirstEthernet() (string, error)
	SetUp(name string) error
	// Carrier reports whether the link is operationally up (a cable).
	Carrier(name string) (bool, error)
	ReplaceAddr(name string, p netip.Prefix) error
	ReplaceDefaultRoute(name string, gw netip.Addr) error
}

// Lease is the configuration one DHCP exchange gave.
type Lease struct {
	Address     netip.Prefix
	Gateway     netip.Addr
	Nameservers []netip.Addr
	Search      []string
	Duration    time.Duration
}

// DHCP asks for a lease on an interface that is up.
type DHCP func(ctx context.Context, name string) (Lease, error)

// Apply configures name with addresses and a default route through gw
// (when valid).
func Apply(l Links, name string, addrs []netip.Prefix, gw netip.Addr) error {
	if err := l.SetUp(name); err != nil {
		return fmt.Errorf("set link %s up: %w", name, err)
	}
	for _, a := range addrs {
		if err := l.ReplaceAddr(name, a); err != nil {
			return fmt.Errorf("add address %s to %s: %w", a, name, err)
		}
	}
	if gw.IsValid() {
		if err := l.ReplaceDefaultRoute(name, gw); err != nil {
			return fmt.Errorf("add default route via %s dev %s: %w", gw, name, err)
		}
	}
	return nil
}

// ResolvConf is resolv.conf's text.
func ResolvConf(ns []netip.Addr, search []string) string {
	var b strings.Builder
	b.WriteString("# written by podboot's PID 1\n")
	for _, a := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	return b.String()
}

// writeResolvConf replaces path atomically: a reader never sees it empty.
func writeResolvConf(path string, ns []netip.Addr, search []string) error {
	if path == "" || len(ns) == 0 {
		return nil
	}
	return atomicfile.Write(path, []byte(ResolvConf(ns, search)), 0o644)
}

// Timing is how Run waits; tests shorten it.
type Timing struct {
	Retry      time.Duration // after a failure, doubling up to MaxRetry
	MaxRetry   time.Duration
	LinkPoll   time.Duration // how often the carrier is checked
	MinRenew   time.Duration // floor for the renewal interval
	DefaultDur time.Duration // lease time when the server gives none
}

// DefaultTiming is the board's.
var DefaultTiming = Timing{Retry: time.Second, MaxRetry: 30 * time.Second, LinkPoll: time.Second, MinRenew: 30 * time.Second, DefaultDur: time.Hour}

// Runner sets the network up and keeps it up.
type Runner struct {
	Config Config
	Links  Links
	DHCP   DHCP
	Timing Timing
	Log    *slog.Logger
	// Configured, if set, is called each time an address is in place.
	Configured func(name string, addrs []netip.Prefix)
}

// Run sets up loopback and the interface and keeps it configured until
// ctx ends. It does not return early: run it in a goroutine.
func (r *Runner) Run(ctx context.Context) {
	log := r.Log
	if err := r.Links.LoopbackUp(); err != nil {
		log.Warn("network: loopback up", "err", err)
	}
	name := r.waitInterface(ctx)
	if name == "" {
		return
	}
	if r.Config.Static() {
		r.runStatic(ctx, name)
		return
	}
	r.runDHCP(ctx, name)
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitInterface waits for the interface to exist (its driver may load
// late, a USB adapter may be plugged in later).
func (r *Runner) waitInterface(ctx context.Context) string {
	wait := r.Timing.Retry
	logged := false
	for {
		name := r.Config.Interface
		var err error
		if name == "" {
			name, err = r.Links.FirstEthernet()
		} else {
			_, err = r.Links.Carrier(name)
		}
		if err == nil {
			return name
		}
		if !logged {
			r.Log.Warn("network: no interface yet; waiting", "interface", r.Config.Interface, "err", err)
			logged = true
		}
		if !sleep(ctx, wait) {
			return ""
		}
		wait = min(2*wait, r.Timing.MaxRetry)
	}
}

func (r *Runner) runStatic(ctx context.Context, name string) {
	wait := r.Timing.Retry
	for {
		err := Apply(r.Links, name, r.Config.Addresses, r.Config.Gateway)
		if err == nil {
			err = writeResolvConf(r.Config.ResolvConf, r.Config.Nameservers, nil)
		}
		if err == nil {
			r.Log.Info("network: static configuration", "interface", name, "addresses", r.Config.Addresses,
				"gateway", r.Config.Gateway, "nameservers", r.Config.Nameservers)
			if r.Configured != nil {
				r.Configured(name, r.Config.Addresses)
			}
			return
		}
		r.Log.Warn("network: static configuration failed; retrying", "interface", name, "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, r.Timing.MaxRetry)
	}
}

// errLinkDown ends a lease's wait when the cable goes.
var errLinkDown = errors.New("link down")

func (r *Runner) runDHCP(ctx context.Context, name string) {
	wait := r.Timing.Retry
	noCarrierLogged := false
	for ctx.Err() == nil {
		if err := r.Links.SetUp(name); err != nil {
			r.Log.Warn("network: set link up", "interface", name, "err", err)
		}
		up, err := r.Links.Carrier(name)
		if err != nil || !up {
			if !noCarrierLogged {
				r.Log.Warn("network: no carrier (cable?); waiting", "interface", name, "err", err)
				noCarrierLogged = true
			}
			if !sleep(ctx, r.Timing.LinkPoll) {
				return
			}
			continue
		}
		noCarrierLogged = false
		lease, err := r.DHCP(ctx, name)
		if err == nil {
			err = Apply(r.Links, name, []netip.Prefix{lease.Address}, lease.Gateway)
		}
		if err != nil {
			r.Log.Warn("network: DHCP failed; retrying", "interface", name, "err", err, "in", wait)
			if !sleep(ctx, wait) {
				return
			}
			wait = min(2*wait, r.Timing.MaxRetry)
			continue
		}
		wait = r.Timing.Retry
		ns := lease.Nameservers
		if len(r.Config.Nameservers) > 0 {
			ns = r.Config.Nameservers
		}
		if err := writeResolvConf(r.Config.ResolvConf, ns, lease.Search); err != nil {
			r.Log.Warn("network: resolv.conf", "err", err)
		}
		r.Log.Info("network: DHCP lease", "interface", name, "address", lease.Address, "gateway", lease.Gateway,
			"nameservers", ns, "lease", lease.Duration)
		if r.Configured != nil {
			r.Configured(name, []netip.Prefix{lease.Address})
		}
		dur := lease.Duration
		if dur <= 0 {
			dur = r.Timing.DefaultDur
		}
		// Renew at half the lease (RFC 2131's T1), or at once when the
		// link went down and came back: the board may be on another
		// network now.
		if err := r.holdLease(ctx, name, max(dur/2, r.Timing.MinRenew)); errors.Is(err, errLinkDown) {
			r.Log.Warn("network: link down", "interface", name)
		}
	}
}

// holdLease waits renew, polling the carrier; it returns errLinkDown when
// the carrier went away (then Run waits for it and asks again).
func (r *Runner) holdLease(ctx context.Context, name string, renew time.Duration) error {
	deadline := time.Now().Add(renew)
	for time.Now().Before(deadline) {
		if !sleep(ctx, min(r.Timing.LinkPoll, time.Until(deadline))) {
			return ctx.Err()
		}
		if up, err := r.Links.Carrier(name); err == nil && !up {
			return errLinkDown
		}
	}
	return nil
}
