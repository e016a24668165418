package hostport

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// Names of podboot's table and chains (see doc.go).
const (
	TableName = "podboot"

	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	// Regular chains holding the per-pod rules, named as portmap's.
	chainHostPorts   = "hostports"
	chainHostIPPorts = "hostip_hostports"
	chainMasquerade  = "masquerading"
)

// podChains hold every per-pod rule; the base chains hold none.
var podChains = []string{chainHostIPPorts, chainHostPorts, chainMasquerade}

func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }

func ruleComment(r *nftables.Rule) (string, bool) {
	return userdata.GetString(r.UserData, userdata.TypeComment)
}

// matchNFProto is the dependency nft adds implicitly in an inet table
// before matching an ip or ip6 header field.
func matchNFProto(is4 bool) []expr.Any {
	p := byte(unix.NFPROTO_IPV6)
	if is4 {
		p = unix.NFPROTO_IPV4
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

type addrField int

const (
	saddr addrField = iota
	daddr
)

// matchPrefix is `ip|ip6 saddr|daddr [!=] prefix` (without the nfproto
// dependency).
func matchPrefix(f addrField, pfx netip.Prefix, neq bool) []expr.Any {
	a := pfx.Masked().Addr()
	n := uint32(a.BitLen() / 8)
	off := uint32(12) // IPv4 saddr; daddr at 16
	if a.Is6() {
		off = 8 // IPv6 saddr; daddr at 24
	}
	if f == daddr {
		off += n
	}
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}}
	if pfx.Bits() < a.BitLen() {
		mask := netip.PrefixFrom(a, pfx.Bits())
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: prefixMask(mask), Xor: make([]byte, n)})
	}
	op := expr.CmpOpEq
	if neq {
		op = expr.CmpOpNeq
	}
	return append(out, &expr.Cmp{Op: op, Register: 1, Data: a.AsSlice()})
}

func prefixMask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

func matchAddr(f addrField, a netip.Addr, neq bool) []expr.Any {
	return matchPrefix(f, netip.PrefixFrom(a, a.BitLen()), neq)
}

// matchDPort is `tcp|udp dport N`.
func matchDPort(proto corev1.Protocol, port int32) []expr.Any {
	l4 := byte(unix.IPPROTO_TCP)
	if proto == corev1.ProtocolUDP {
		l4 = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(port))},
	}
}

// fibDaddrLocal is `fib daddr type local`.
func fibDaddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func dnatTo(a netip.Addr, port int32) []expr.Any {
	fam := uint32(unix.NFPROTO_IPV4)
	if a.Is6() {
		fam = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(uint16(port))},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

func jump(chain string) expr.Any { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// baseRules are the rules of the three base chains, rewritten as a whole
// by EnsureBase.
func baseRules(subnets []netip.Prefix) map[string][][]expr.Any {
	r := map[string][][]expr.Any{}
	for _, c := range []string{chainPrerouting, chainOutput} {
		r[c] = [][]expr.Any{
			{jump(chainHostIPPorts)},
			concat(fibDaddrLocal(), []expr.Any{jump(chainHostPorts)}),
		}
	}
	post := [][]expr.Any{
		{jump(chainMasquerade)},
		// Multicast stays as it is (the bridge plugin's ipMasq, pkg/ip/ipmasq_nftables_linux.go).
		concat(matchNFProto(true), matchPrefix(daddr, netip.MustParsePrefix("224.0.0.0/4"), false), []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}),
		concat(matchNFProto(false), matchPrefix(daddr, netip.MustParsePrefix("ff00::/8"), false), []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}),
	}
	for _, s := range subnets {
		post = append(post, concat(matchNFProto(s.Addr().Is4()), matchPrefix(saddr, s, false), matchPrefix(daddr, s, true), []expr.Any{&expr.Masq{}}))
	}
	r[chainPostrouting] = post
	return r
}

type podRule struct {
	chain   string
	exprs   []expr.Any
	comment string
}

// podRules are one pod's rules, as portmap's forwardPorts writes them
// (plugins/meta/portmap/portmap_nftables.go), with 127.0.0.0/8 in place of
// 127.0.0.1 for the localhost masquerade.
func podRules(uid string, podIP netip.Addr, ports []Port) []podRule {
	is4 := podIP.Is4()
	var out []podRule
	for _, p := range ports {
		if p.anyHost() {
			out = append(out, podRule{chainHostPorts,
				concat(matchNFProto(is4), matchDPort(p.Protocol, p.HostPort), dnatTo(podIP, p.ContainerPort)),
				portComment(uid, p)})
			continue
		}
		out = append(out, podRule{chainHostIPPorts,
			concat(matchNFProto(is4), matchAddr(daddr, p.HostIP, false), matchDPort(p.Protocol, p.HostPort), dnatTo(podIP, p.ContainerPort)),
			portComment(uid, p)})
	}
	if len(ports) == 0 {
		return nil
	}
	out = append(out, podRule{chainMasquerade,
		concat(matchNFProto(is4), matchAddr(saddr, podIP, false), matchAddr(daddr, podIP, false), []expr.Any{&expr.Masq{}}),
		masqComment(uid, "hairpin")})
	if is4 {
		out = append(out, podRule{chainMasquerade,
			concat(matchNFProto(true), matchPrefix(saddr, netip.MustParsePrefix("127.0.0.0/8"), false), matchAddr(daddr, podIP, false), []expr.Any{&expr.Masq{}}),
			masqComment(uid, "localhost")})
	}
	return out
}
