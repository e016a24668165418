package hostport

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Options configure a Manager.
type Options struct {
	// NetNS is an open network namespace fd to program; 0 is the calling
	// process's namespace (the board's).
	NetNS int
	// PodSubnets are masqueraded when leaving them (the bridge's ipMasq).
	PodSubnets []netip.Prefix
	// Bridge is the pods' bridge (cni0); route_localnet is enabled on it
	// for 127.0.0.1:hostPort. Empty means net.ipv4.conf.all.
	Bridge string
}

// Manager owns table inet podboot in one network namespace. Its methods
// are safe for concurrent use; it holds no state besides its options, so
// the ruleset is the truth after an agent restart.
type Manager struct {
	opts Options
	mu   sync.Mutex
}

var table = &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}

// New checks opts; it touches nothing.
func New(opts Options) (*Manager, error) {
	if opts.NetNS < 0 {
		return nil, fmt.Errorf("hostport: invalid netns fd %d", opts.NetNS)
	}
	opts.PodSubnets = slices.Clone(opts.PodSubnets) // masked below: not the caller's
	for i, s := range opts.PodSubnets {
		if !s.IsValid() {
			return nil, fmt.Errorf("hostport: pod subnet %d is invalid", i)
		}
		opts.PodSubnets[i] = s.Masked()
	}
	if opts.Bridge != "" && (strings.ContainsAny(opts.Bridge, "/ ") || opts.Bridge == "." || opts.Bridge == ".." || len(opts.Bridge) >= unix.IFNAMSIZ) {
		return nil, fmt.Errorf("hostport: invalid bridge name %q", opts.Bridge)
	}
	return &Manager{opts: opts}, nil
}

func (m *Manager) conn() (*nftables.Conn, error) {
	var o []nftables.ConnOption
	if m.opts.NetNS != 0 {
		o = append(o, nftables.WithNetNSFd(m.opts.NetNS))
	}
	c, err := nftables.New(o...)
	if err != nil {
		return nil, fmt.Errorf("nftables netlink connection: %w", err)
	}
	return c, nil
}

// transient errors are retried: a signal during a netlink call, or a
// dump the kernel interrupted because the ruleset changed meanwhile.
func transient(err error) bool {
	return errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) ||
		strings.Contains(err.Error(), "dump interrupted")
}

func retry(op func() error) error {
	var err error
	for range 5 {
		if err = op(); err == nil || !transient(err) {
			return err
		}
	}
	return err
}

// EnsureBase creates the table and chains and (re)writes the base chains'
// rules: the jumps to the hostPort chains and the pod subnets' masquerade.
// It enables IPv4 forwarding, and route_localnet on all interfaces when
// there is no bridge (Add enables it on the bridge, which CNI creates with
// the first pod). Safe to call again.
func (m *Manager) EnsureBase() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sys := []string{"net/ipv4/ip_forward"}
	if m.opts.Bridge == "" {
		sys = append(sys, "net/ipv4/conf/all/route_localnet")
	}
	for _, s := range m.opts.PodSubnets {
		if s.Addr().Is6() {
			sys = append(sys, "net/ipv6/conf/all/forwarding")
			break
		}
	}
	for _, s := range sys {
		if err := writeSysctl(m.opts.NetNS, s, "1"); err != nil {
			return err
		}
	}
	err := retry(func() error {
		c, err := m.conn()
		if err != nil {
			return err
		}
		chains := addChains(c)
		for name, rules := range baseRules(m.opts.PodSubnets) {
			c.FlushChain(chains[name])
			for _, e := range rules {
				c.AddRule(&nftables.Rule{Table: table, Chain: chains[name], Exprs: e})
			}
		}
		return c.Flush()
	})
	if err != nil {
		return fmt.Errorf("ensure nftables table inet %s: %w", TableName, err)
	}
	return nil
}

// addChains queues the table and every chain; adding existing ones is a
// no-op, so this never disturbs rules.
func addChains(c *nftables.Conn) map[string]*nftables.Chain {
	c.AddTable(table)
	chains := map[string]*nftables.Chain{}
	for _, name := range podChains {
		chains[name] = c.AddChain(&nftables.Chain{Name: name, Table: table})
	}
	base := []struct {
		name string
		hook *nftables.ChainHook
		prio *nftables.ChainPriority
	}{
		{chainPrerouting, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest},
		{chainOutput, nftables.ChainHookOutput, nftables.ChainPriorityNATDest},
		{chainPostrouting, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource},
	}
	for _, b := range base {
		chains[b.name] = c.AddChain(&nftables.Chain{Name: b.name, Table: table, Type: nftables.ChainTypeNAT, Hooknum: b.hook, Priority: b.prio})
	}
	return chains
}

type ownedRule struct {
	uid    string
	port   Port
	isPort bool
	rule   *nftables.Rule
}

// podRulesNow lists every per-pod rule. A missing table is no rules.
func (m *Manager) podRulesNow(c *nftables.Conn) ([]ownedRule, error) {
	var out []ownedRule
	for _, name := range podChains {
		rules, err := c.GetRules(table, &nftables.Chain{Name: name, Table: table})
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list chain %s: %w", name, err)
		}
		for _, r := range rules {
			s, ok := ruleComment(r)
			if !ok {
				continue // someone else's rule in our table: not ours to touch
			}
			uid, p, isPort, err := parseComment(s)
			if err != nil {
				continue
			}
			out = append(out, ownedRule{uid: uid, port: p, isPort: isPort, rule: r})
		}
	}
	return out, nil
}

func portsByPod(rules []ownedRule) map[string][]Port {
	out := map[string][]Port{}
	for _, r := range rules {
		if r.isPort {
			out[r.uid] = append(out[r.uid], r.port)
		}
	}
	return out
}

// Add publishes the pod's ports, replacing any it published before, in
// one netlink batch. A port another pod publishes is a *ConflictError;
// then nothing changes. EnsureBase must have run.
func (m *Manager) Add(podUID string, podIP netip.Addr, ports []Port) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(ports) > 0 && m.opts.Bridge != "" {
		// 127.0.0.1:hostPort routes out of the bridge, as portmap sets
		// it at ADD; the bridge exists once a pod is attached.
		if err := writeSysctl(m.opts.NetNS, "net/ipv4/conf/"+m.opts.Bridge+"/route_localnet", "1"); err != nil {
			return fmt.Errorf("publish ports of pod %s: %w", podUID, err)
		}
	}
	podIP = podIP.Unmap()
	ports = slices.Clone(ports)
	for i := range ports {
		ports[i].HostIP = ports[i].HostIP.Unmap()
	}
	err := retry(func() error {
		c, err := m.conn()
		if err != nil {
			return err
		}
		if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
			return fmt.Errorf("table inet %s (EnsureBase first): %w", TableName, err)
		}
		now, err := m.podRulesNow(c)
		if err != nil {
			return err
		}
		if err := checkAdd(podUID, podIP, ports, portsByPod(now)); err != nil {
			return &permanent{err}
		}
		for _, r := range now {
			if r.uid == podUID {
				if err := c.DelRule(r.rule); err != nil {
					return err
				}
			}
		}
		for _, r := range podRules(podUID, podIP, ports) {
			c.AddRule(&nftables.Rule{Table: table, Chain: &nftables.Chain{Name: r.chain, Table: table}, Exprs: r.exprs, UserData: comment(r.comment)})
		}
		return c.Flush()
	})
	var p *permanent
	if errors.As(err, &p) {
		return p.err
	}
	if err != nil {
		return fmt.Errorf("publish hostPorts of pod %s at %s: %w", podUID, podIP, err)
	}
	return nil
}

// permanent carries a validation error through retry untouched.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }

// Remove deletes the pod's rules; a pod without rules is no error.
func (m *Manager) Remove(podUID string) error {
	if err := validUID(podUID); err != nil {
		return fmt.Errorf("remove hostPorts: %w", err)
	}
	return m.deleteWhere(func(uid string) bool { return uid == podUID }, "remove hostPorts of pod "+podUID)
}

// GC deletes the rules of every pod not in keep, as after a restart.
func (m *Manager) GC(keep map[string]bool) error {
	return m.deleteWhere(func(uid string) bool { return !keep[uid] }, "garbage-collect hostPorts")
}

func (m *Manager) deleteWhere(drop func(uid string) bool, what string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := retry(func() error {
		c, err := m.conn()
		if err != nil {
			return err
		}
		now, err := m.podRulesNow(c)
		if err != nil {
			return err
		}
		n := 0
		for _, r := range now {
			if drop(r.uid) {
				if err := c.DelRule(r.rule); err != nil {
					return err
				}
				n++
			}
		}
		if n == 0 {
			return nil
		}
		return c.Flush()
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// List is the published ports by pod UID, read back from the ruleset.
func (m *Manager) List() (map[string][]Port, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out map[string][]Port
	err := retry(func() error {
		c, err := m.conn()
		if err != nil {
			return err
		}
		now, err := m.podRulesNow(c)
		if err != nil {
			return err
		}
		out = portsByPod(now)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list hostPorts: %w", err)
	}
	return out, nil
}

// writeSysctl writes /proc/sys/<key> in the namespace netns (0: ours).
// /proc/sys/net shows the namespace of the thread that opens it, so the
// write runs on a thread moved into netns; a thread that cannot move back
// is left locked and so discarded when its goroutine ends.
func writeSysctl(netns int, key, value string) error {
	path := filepath.Join("/proc/sys", key)
	write := func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
		}
		return nil
	}
	if netns == 0 {
		return write()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("sysctl %s: open current netns: %w", key, err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(netns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("sysctl %s: enter netns: %w", key, err)
			return
		}
		werr := write()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			done <- errors.Join(werr, fmt.Errorf("sysctl %s: leave netns: %w", key, err))
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		done <- werr
	}()
	return <-done
}
