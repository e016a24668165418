package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Config is what New needs: where the plugins are, the network (a conflist
// from Conflist, or any conflist with the same plugins) and where libcni
// keeps its cache of what each pod got.
type Config struct {
	// PluginDirs are searched in order for bridge and host-local.
	PluginDirs []string
	// Conflist is the network configuration list, e.g. Conflist's output.
	Conflist []byte
	// CacheDir is libcni's result cache (default /var/lib/cni). Keep it
	// beside host-local's data directory, under the agent's runtime state:
	// Teardown and GC read it to undo what Setup did.
	CacheDir string
}

// Network attaches pods to the pod network through libcni. Its methods may
// be called from several goroutines; libcni and the plugins serialise
// what must be.
type Network struct {
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList
}

// Result is what a pod got: its addresses, the gateway (the bridge) and
// the interface name inside the pod's namespace.
type Result struct {
	IPs       []net.IP
	Gateway   net.IP
	Interface string
}

// New checks the configuration; it runs no plugin.
func New(cfg Config) (*Network, error) {
	if len(cfg.PluginDirs) == 0 {
		return nil, errors.New("pod network: no CNI plugin directories")
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("pod network: no CNI cache directory")
	}
	list, err := libcni.ConfListFromBytes(cfg.Conflist)
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	if len(list.Plugins) == 0 {
		return nil, fmt.Errorf("pod network %q: no plugins in the conflist", list.Name)
	}
	return &Network{
		cni:  libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, cfg.CacheDir, nil),
		list: list,
	}, nil
}

// Name is the CNI network's name.
func (n *Network) Name() string { return n.list.Name }

func runtimeConf(podUID, netnsPath string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: podUID, NetNS: netnsPath, IfName: IfName}
}

// Setup attaches the pod whose network namespace is pinned at netnsPath:
// lo up, then a veth on the bridge with an address from the subnet. The
// plugins run in the caller's network namespace (the node's), so call it
// from the host namespace. Setting up a pod that is set up already fails
// (its eth0 exists) and leaves the first attachment as it was.
func (n *Network) Setup(ctx context.Context, podUID, netnsPath string) (Result, error) {
	if err := checkArgs(podUID, netnsPath, true); err != nil {
		return Result{}, err
	}
	if err := loopbackUp(netnsPath); err != nil {
		return Result{}, fmt.Errorf("set up network of pod %s: %w", podUID, err)
	}
	res, err := n.cni.AddNetworkList(ctx, n.list, runtimeConf(podUID, netnsPath))
	if err != nil {
		return Result{}, fmt.Errorf("set up network of pod %s in %s: %w", podUID, netnsPath, err)
	}
	r, err := toResult(res)
	if err != nil {
		return Result{}, fmt.Errorf("set up network of pod %s: %w", podUID, err)
	}
	return r, nil
}

// toResult picks the pod's side out of a CNI result: the addresses of the
// interface inside the sandbox.
func toResult(res types.Result) (Result, error) {
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		return Result{}, fmt.Errorf("CNI result: %w", err)
	}
	out := Result{Interface: IfName}
	for _, ip := range cur.IPs {
		if ip.Interface != nil && *ip.Interface >= 0 && *ip.Interface < len(cur.Interfaces) {
			if cur.Interfaces[*ip.Interface].Sandbox == "" {
				continue // the bridge's own address
			}
		}
		out.IPs = append(out.IPs, ip.Address.IP)
		if out.Gateway == nil && ip.Gateway != nil {
			out.Gateway = ip.Gateway
		}
	}
	if len(out.IPs) == 0 {
		return Result{}, errors.New("CNI result has no address for the pod")
	}
	return out, nil
}

// Teardown detaches the pod: the veth and its address go. It is idempotent:
// a pod never set up, already torn down or whose namespace is gone is not
// an error. It uses the configuration the pod was set up with (libcni's
// cache), so a changed device.yaml still releases the old address.
func (n *Network) Teardown(ctx context.Context, podUID, netnsPath string) error {
	if err := checkArgs(podUID, netnsPath, false); err != nil {
		return err
	}
	if netnsPath != "" && !isNetNS(netnsPath) {
		// The namespace is gone and with it the veth; an empty CNI_NETNS
		// asks the plugins for their host side only (the address).
		netnsPath = ""
	}
	rt := runtimeConf(podUID, netnsPath)
	list := n.list
	if cached, _, err := n.cni.GetNetworkListCachedConfig(n.list, rt); err == nil && cached != nil {
		if l, err := libcni.ConfListFromBytes(cached); err == nil {
			list = l
		}
	}
	if err := n.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("tear down network of pod %s: %w", podUID, err)
	}
	return nil
}

// Check asks the plugins whether the pod's network is still as Setup left
// it (the veth, the address, the route).
func (n *Network) Check(ctx context.Context, podUID, netnsPath string) error {
	if err := checkArgs(podUID, netnsPath, true); err != nil {
		return err
	}
	if err := n.cni.CheckNetworkList(ctx, n.list, runtimeConf(podUID, netnsPath)); err != nil {
		return fmt.Errorf("check network of pod %s: %w", podUID, err)
	}
	return nil
}

// GC tears down every pod attached to this network (as libcni's cache
// records them) whose UID is not in keep, e.g. after the agent restarted
// while pods were being removed, then runs libcni's GC. Each stale pod goes
// through Teardown rather than libcni's own sweep, so a namespace that no
// longer exists (its pin file left after a reboot) does not keep its
// address allocated. With the cache on tmpfs beside host-local's
// allocations, a reboot leaves nothing to collect.
func (n *Network) GC(ctx context.Context, keep []string) error {
	attachments, err := n.cni.GetCachedAttachments("")
	if err != nil {
		return fmt.Errorf("collect stale pod networks of %q: read cache: %w", n.list.Name, err)
	}
	var errs []error
	args := &libcni.GCArgs{}
	for _, uid := range keep {
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: uid, IfName: IfName})
	}
	for _, a := range attachments {
		if a.Network != n.list.Name || (slices.Contains(keep, a.ContainerID) && a.IfName == IfName) {
			continue
		}
		if err := n.Teardown(ctx, a.ContainerID, a.NetNS); err != nil {
			errs = append(errs, err)
		}
	}
	// Plugins that implement CNI 1.1's GC get the kept attachments too.
	if err := n.cni.GCNetworkList(ctx, n.list, args); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("collect stale pod networks of %q: %w", n.list.Name, err)
	}
	return nil
}

func checkArgs(podUID, netnsPath string, needNetNS bool) error {
	if podUID == "" {
		return errors.New("pod network: empty pod UID")
	}
	if needNetNS && netnsPath == "" {
		return fmt.Errorf("pod network of pod %s: no network namespace path", podUID)
	}
	if needNetNS {
		if _, err := os.Stat(netnsPath); err != nil {
			return fmt.Errorf("pod network of pod %s: network namespace: %w", podUID, err)
		}
	}
	return nil
}
