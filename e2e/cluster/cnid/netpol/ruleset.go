// Package netpol enforces Kubernetes NetworkPolicy (networking.k8s.io/v1) on one node by
// translating the cluster's pods, namespaces and policies into a static nftables ruleset, which
// cnid applies with `nft -f -`.
//
// Why not sigs.k8s.io/kube-network-policies, which kind's own CNI ships: it hands every new
// connection to userspace with the nftables `queue` expression and decides there, and the kernels
// stampede runs on (6.18 here) are built without CONFIG_NFT_QUEUE (only the xtables NFQUEUE target
// and nfnetlink_queue are in), so its rules do not load. Its package exports only NewController
// and Run, so its evaluator cannot be reused without the queue either. A static ruleset needs no
// userspace in the data path, and its text is readable and testable without a kernel.
//
// Where it is enforced: every pod packet, even between two pods of one node, is routed through
// the node's network namespace (ptp veths), so it passes the node's forward hook, where
// kube-proxy's DNAT (in prerouting) has already replaced a Service IP by a pod IP. Ingress is
// enforced on the node of the destination pod, egress on the node of the source pod, both in one
// base chain of table inet stampede-netpol:
//
//	table inet stampede-netpol {
//		chain forward {
//			type filter hook forward priority filter; policy accept;
//			ct state established,related accept
//			ip daddr 10.96.0.0/16 meta l4proto tcp reject with tcp reset   # no ready endpoint
//			ip daddr 10.96.0.0/16 reject with icmp type port-unreachable
//			ip saddr 10.244.1.5 jump egress-10.244.1.5    # one per egress-isolated local pod
//			ip daddr 10.244.1.5 jump ingress-10.244.1.5   # one per ingress-isolated local pod
//		}
//		chain ingress-10.244.1.5 {
//			ip saddr { 10.244.1.7, 10.244.2.3 } tcp dport 8080 return comment "ns/policy ingress[0]"
//			counter drop
//		}
//	}
//
// A pod's chain returns for allowed traffic and drops the rest; dropping, not rejecting, is what
// Kubernetes implementations do (Calico, Cilium, kube-network-policies), so a client of a denied
// pod sees a timeout. Only new connections are judged: a connection already established when a
// policy tightens carries on until it ends, as with kube-network-policies. Traffic from the node
// itself (kubelet's probes, leaving through output) and port-forwards (which enter the pod's
// network namespace directly) never pass forward, which is Kubernetes' rule that a pod's own node
// may always reach it. Traffic from another node's host network (a hostNetwork pod, the API
// server, a NodePort or hostPort client translated there) carries a node's address and matches
// only ipBlocks, as with other implementations.
//
// Semantics, as in the API reference: a pod is isolated for ingress (egress) if some policy of
// its namespace selects it with that policy type (policyTypes defaults to Ingress, plus Egress
// when egress rules are present); what it may receive (send) is the union of the rules of all
// such policies. Peers are podSelector (policy's namespace), namespaceSelector, both (ANDed), or
// ipBlock with except; empty from/to means any peer, empty ports any port. Ports are TCP (the
// default), UDP or SCTP, numeric with an optional endPort, or named: a named port is resolved
// against the destination pod's containers, for ingress the local pod, for egress each peer pod
// (so a named egress port never matches a destination that is not a pod).
//
// Only IPv4 is enforced, the cluster being single-stack: IPv6 pod addresses and IPv6 ipBlocks
// are skipped, so on a dual-stack cluster a pod's IPv6 traffic would go unenforced.
//
// Known gaps, inherent to computing the ruleset from the API: a pod that starts sending before
// cnid has seen its IP is not yet enforced, and a deleted pod's IP keeps its rules until cnid
// sees the deletion. Kubernetes allows both ("pods must be resilient against being started up
// with different network connectivity than expected").
package netpol

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Table is the name of the inet table that holds the whole ruleset: `nft delete table inet
// stampede-netpol` lifts all enforcement on a node.
const Table = "stampede-netpol"

// Cluster is what a node's ruleset is computed from: the objects as the API server has them.
type Cluster struct {
	Pods       []*corev1.Pod
	Namespaces []*corev1.Namespace
	Policies   []*networkingv1.NetworkPolicy
	// ServiceSubnets are the cluster's Service IP ranges. A new connection still addressed to
	// one at the forward hook is one kube-proxy did not translate: its Service has no ready
	// endpoint. The ruleset refuses it before any pod's chain can drop it, as kube-proxy's own
	// REJECT (and cnid's, in iptables' FORWARD chain) would: both sit on the same hook at the
	// same priority, in an order nothing fixes, and a dropped SYN left a client retransmitting
	// (a replica waiting for its database: seconds) where it should see a refusal at once.
	ServiceSubnets []netip.Prefix
}

// Ruleset is one node's nft ruleset and a summary of what it enforces.
type Ruleset struct {
	// Text is input for `nft -f -`: it deletes and recreates Table in one transaction, so that
	// applying it replaces the previous ruleset atomically.
	Text string
	// Policies counts the cluster's NetworkPolicies.
	Policies int
	// LocalPods counts this node's pods that policies can apply to (an IPv4 pod IP, not
	// hostNetwork, not terminated).
	LocalPods int
	// IngressIsolated and EgressIsolated count the local pods some policy isolates.
	IngressIsolated, EgressIsolated int
	// Allows counts the rules that let traffic through a pod's chain.
	Allows int
	// Problems are the parts of policies that could not be translated and were left out, which
	// only ever allows less: objects the API server's validation should have refused, or pods
	// sharing an IP.
	Problems []string
}

// Build computes the ruleset that enforces c's policies on node: the ingress of the pods running
// on node and their egress. It is deterministic: the same objects, in any order, give the same
// text.
func Build(node string, c Cluster) Ruleset {
	b := newBuilder(c)
	rs := Ruleset{Policies: len(c.Policies)}
	var jumps, chains []string
	for _, p := range b.localPods(node) {
		rs.LocalPods++
		isolating := map[direction][]*networkingv1.NetworkPolicy{}
		for _, pol := range b.policies {
			if pol.Namespace != p.obj.Namespace || !b.selects(pol, p) {
				continue
			}
			in, eg := policyTypes(pol)
			if in {
				isolating[ingressDir] = append(isolating[ingressDir], pol)
			}
			if eg {
				isolating[egressDir] = append(isolating[egressDir], pol)
			}
		}
		for _, d := range []direction{egressDir, ingressDir} {
			if len(isolating[d]) == 0 {
				continue
			}
			var allows []string
			for _, pol := range isolating[d] {
				for i, r := range rulesOf(pol, d) {
					allows = append(allows, b.allows(p, d, pol, i, r.peers, r.ports)...)
				}
			}
			if d == ingressDir {
				rs.IngressIsolated++
			} else {
				rs.EgressIsolated++
			}
			rs.Allows += len(allows)
			name := d.String() + "-" + p.ip.String()
			jumps = append(jumps, fmt.Sprintf("%s %s jump %s", d.podAddr(), p.ip, name))
			chains = append(chains, chain(name, d.String()+" of pod "+p.name(), allows))
		}
	}

	var s strings.Builder
	fmt.Fprintf(&s, "# NetworkPolicy enforcement on node %s, generated by cnid.\n", node)
	// Declaring the table first makes the delete succeed when it does not exist yet; nft applies
	// the whole file as one transaction, so no packet ever sees a half-built ruleset.
	fmt.Fprintf(&s, "table inet %s\ndelete table inet %s\ntable inet %s {\n", Table, Table, Table)
	s.WriteString("\tchain forward {\n")
	s.WriteString("\t\ttype filter hook forward priority filter; policy accept;\n")
	s.WriteString("\t\tct state established,related accept\n")
	for _, sn := range c.ServiceSubnets {
		if !sn.Addr().Is4() {
			continue // only IPv4 is enforced (package doc)
		}
		fmt.Fprintf(&s, "\t\tip daddr %s meta l4proto tcp reject with tcp reset comment %s\n", sn.Masked(), quote(untranslatedComment))
		fmt.Fprintf(&s, "\t\tip daddr %s reject with icmp type port-unreachable comment %s\n", sn.Masked(), quote(untranslatedComment))
	}
	for _, j := range jumps {
		fmt.Fprintf(&s, "\t\t%s\n", j)
	}
	s.WriteString("\t}\n")
	for _, c := range chains {
		s.WriteString(c)
	}
	s.WriteString("}\n")
	rs.Text = s.String()
	// A problem with a policy shows once per pod it selects; it is reported once.
	slices.Sort(b.problems)
	rs.Problems = slices.Compact(b.problems)
	return rs
}

// untranslatedComment marks the rules that refuse connections to a Service without endpoints.
const untranslatedComment = "a Service IP kube-proxy did not translate: no ready endpoint"

// chain renders a pod's chain: its allows return to the forward chain, anything else is dropped.
func chain(name, comment string, allows []string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "\tchain %s {\n\t\tcomment %s\n", name, quote(comment))
	for _, a := range allows {
		fmt.Fprintf(&s, "\t\t%s\n", a)
	}
	s.WriteString("\t\tcounter drop\n\t}\n")
	return s.String()
}

// quote makes s an nft comment: double-quoted, at most 127 bytes (nft's limit is 128 with the
// terminating NUL). Kubernetes names cannot contain quotes.
func quote(s string) string {
	if len(s) > 127 {
		s = s[:127]
	}
	return `"` + s + `"`
}

// pod is a pod that policies can apply to, as a peer or as a local pod.
type pod struct {
	obj *corev1.Pod
	ip  netip.Addr
}

func (p *pod) name() string { return p.obj.Namespace + "/" + p.obj.Name }

type builder struct {
	pods      []*pod // sorted by namespace and name
	nsLabels  map[string]labels.Set
	policies  []*networkingv1.NetworkPolicy // sorted by namespace and name
	selectors map[*metav1.LabelSelector]labels.Selector
	problems  []string
}

func newBuilder(c Cluster) *builder {
	b := &builder{nsLabels: map[string]labels.Set{}, selectors: map[*metav1.LabelSelector]labels.Selector{}}
	for _, ns := range c.Namespaces {
		b.nsLabels[ns.Name] = ns.Labels
	}
	for _, p := range c.Pods {
		if ip, ok := podIPv4(p); ok {
			b.pods = append(b.pods, &pod{obj: p, ip: ip})
		}
	}
	slices.SortFunc(b.pods, func(x, y *pod) int {
		return cmp.Or(cmp.Compare(x.obj.Namespace, y.obj.Namespace), cmp.Compare(x.obj.Name, y.obj.Name))
	})
	b.policies = slices.Clone(c.Policies)
	slices.SortFunc(b.policies, func(x, y *networkingv1.NetworkPolicy) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
	return b
}

func (b *builder) problem(format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// podIPv4 is p's IPv4 address, if policies apply to p: a pod on the host's network has the
// node's address (and Kubernetes leaves policies for it undefined), a terminated one no traffic.
func podIPv4(p *corev1.Pod) (netip.Addr, bool) {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return netip.Addr{}, false
	}
	ips := p.Status.PodIPs
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: p.Status.PodIP}}
	}
	for _, s := range ips {
		// IPv6 addresses are skipped: the cluster is single-stack IPv4 (see the package comment).
		if a, err := netip.ParseAddr(s.IP); err == nil && a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// localPods are node's pods, one per IP. Two pods can briefly hold one IP when a deleted pod's
// address is handed out again before its deletion is seen; the one that is not being deleted,
// else the newer, gets the IP's chains (nft would refuse two chains of one name).
func (b *builder) localPods(node string) []*pod {
	byIP := map[netip.Addr]*pod{}
	for _, p := range b.pods {
		if p.obj.Spec.NodeName != node {
			continue
		}
		q, ok := byIP[p.ip]
		if !ok {
			byIP[p.ip] = p
			continue
		}
		keep, drop := q, p
		if preferred(p, q) {
			keep, drop = p, q
		}
		byIP[p.ip] = keep
		b.problem("pods %s and %s both have IP %s: enforcing %s's policies", keep.name(), drop.name(), p.ip, keep.name())
	}
	var out []*pod
	for _, p := range b.pods {
		if byIP[p.ip] == p {
			out = append(out, p)
		}
	}
	return out
}

// preferred reports whether p, rather than q, is the pod that holds their shared IP now.
func preferred(p, q *pod) bool {
	if (p.obj.DeletionTimestamp == nil) != (q.obj.DeletionTimestamp == nil) {
		return p.obj.DeletionTimestamp == nil
	}
	return q.obj.CreationTimestamp.Before(&p.obj.CreationTimestamp)
}

// selector converts a label selector; one that does not convert (the API server refuses those)
// selects nothing, so that it only ever allows less.
func (b *builder) selector(ls *metav1.LabelSelector, where string) labels.Selector {
	if s, ok := b.selectors[ls]; ok {
		return s
	}
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		b.problem("%s: %v: it selects nothing", where, err)
		s = labels.Nothing()
	}
	b.selectors[ls] = s
	return s
}

// selects reports whether pol's spec.podSelector selects p (pol being in p's namespace).
func (b *builder) selects(pol *networkingv1.NetworkPolicy, p *pod) bool {
	return b.selector(&pol.Spec.PodSelector, policyName(pol)+" podSelector").Matches(labels.Set(p.obj.Labels))
}

func policyName(pol *networkingv1.NetworkPolicy) string { return pol.Namespace + "/" + pol.Name }

// policyTypes is what pol isolates its pods for: the listed types, or by default ingress, plus
// egress when it has egress rules.
func policyTypes(pol *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(pol.Spec.PolicyTypes) == 0 {
		return true, len(pol.Spec.Egress) > 0
	}
	for _, t := range pol.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

type direction int

const (
	ingressDir direction = iota
	egressDir
)

func (d direction) String() string {
	if d == ingressDir {
		return "ingress"
	}
	return "egress"
}

// podAddr is the nft expression for the local pod's address in a packet of direction d.
func (d direction) podAddr() string {
	if d == ingressDir {
		return "ip daddr"
	}
	return "ip saddr"
}

// peerAddr is the nft expression for the address of the other end.
func (d direction) peerAddr() string {
	if d == ingressDir {
		return "ip saddr"
	}
	return "ip daddr"
}

// rule is an ingress or egress rule of a policy: from or to which peers, to which ports.
type rule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

// rulesOf is pol's rules of direction d.
func rulesOf(pol *networkingv1.NetworkPolicy, d direction) []rule {
	var out []rule
	if d == ingressDir {
		for _, r := range pol.Spec.Ingress {
			out = append(out, rule{r.From, r.Ports})
		}
		return out
	}
	for _, r := range pol.Spec.Egress {
		out = append(out, rule{r.To, r.Ports})
	}
	return out
}

// peers is what a rule's from (or to) admits: any address, or some pods and IP blocks.
type peers struct {
	any    bool
	pods   []*pod
	blocks []ipBlock
}

// ipBlock is an IPv4 CIDR less its exceptions.
type ipBlock struct {
	cidr   netip.Prefix
	except []netip.Prefix
}

func (k ipBlock) contains(a netip.Addr) bool {
	if !k.cidr.Contains(a) {
		return false
	}
	for _, e := range k.except {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

// peers resolves a rule's from (or to) list of policy pol.
func (b *builder) peers(pol *networkingv1.NetworkPolicy, where string, list []networkingv1.NetworkPolicyPeer) peers {
	if len(list) == 0 {
		return peers{any: true}
	}
	var ps peers
	seen := map[*pod]bool{}
	for i, peer := range list {
		where := fmt.Sprintf("%s peer %d", where, i)
		if peer.IPBlock != nil {
			if k, ok := b.ipBlock(peer.IPBlock, where); ok {
				ps.blocks = append(ps.blocks, k)
			}
			continue
		}
		if peer.PodSelector == nil && peer.NamespaceSelector == nil {
			b.problem("%s: no podSelector, namespaceSelector or ipBlock: it matches nothing", where)
			continue
		}
		// Without a namespaceSelector the pods are the policy's namespace's; without a
		// podSelector they are all the pods of the selected namespaces.
		podSel, nsSel := labels.Everything(), labels.Selector(nil)
		if peer.PodSelector != nil {
			podSel = b.selector(peer.PodSelector, where+" podSelector")
		}
		if peer.NamespaceSelector != nil {
			nsSel = b.selector(peer.NamespaceSelector, where+" namespaceSelector")
		}
		for _, p := range b.pods {
			if nsSel == nil && p.obj.Namespace != pol.Namespace {
				continue
			}
			// A namespace not seen yet has no labels: only an empty selector matches it.
			if nsSel != nil && !nsSel.Matches(b.nsLabels[p.obj.Namespace]) {
				continue
			}
			if podSel.Matches(labels.Set(p.obj.Labels)) && !seen[p] {
				seen[p] = true
				ps.pods = append(ps.pods, p)
			}
		}
	}
	return ps
}

// ipBlock parses an ipBlock. One that does not parse is left out whole, an exception that does
// not parse too: leaving out only the exception would allow more than the policy says.
func (b *builder) ipBlock(k *networkingv1.IPBlock, where string) (ipBlock, bool) {
	cidr, err := netip.ParsePrefix(k.CIDR)
	if err != nil {
		b.problem("%s: ipBlock %q: %v: left out", where, k.CIDR, err)
		return ipBlock{}, false
	}
	if !cidr.Addr().Is4() {
		// IPv6 is not enforced (see the package comment): no IPv4 packet can match it.
		return ipBlock{}, false
	}
	out := ipBlock{cidr: cidr.Masked()}
	for _, e := range k.Except {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			b.problem("%s: ipBlock %s except %q: %v: block left out", where, k.CIDR, e, err)
			return ipBlock{}, false
		}
		if p.Addr().Is4() {
			out.except = append(out.except, p.Masked())
		}
	}
	out.except = mergePrefixes(out.except)
	return out, true
}

// mergePrefixes sorts ps and drops those inside another: older nft versions refuse overlapping
// elements in a set.
func mergePrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(x, y netip.Prefix) int {
		return cmp.Or(x.Addr().Compare(y.Addr()), cmp.Compare(x.Bits(), y.Bits()))
	})
	var out []netip.Prefix
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Bits() <= p.Bits() && out[n-1].Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// portRange is a closed range of destination ports of one protocol; 0-65535 is the whole
// protocol.
type portRange struct {
	proto  string // nft's name: tcp, udp or sctp
	lo, hi int32
}

var nftProto = map[corev1.Protocol]string{corev1.ProtocolTCP: "tcp", corev1.ProtocolUDP: "udp", corev1.ProtocolSCTP: "sctp"}

// resolve is the port range pp admits on pod target (for a named port; nil when the destination
// is not a pod), and false when it admits none there.
func (b *builder) resolve(pp networkingv1.NetworkPolicyPort, target *corev1.Pod, where string) (portRange, bool) {
	proto := corev1.ProtocolTCP
	if pp.Protocol != nil {
		proto = *pp.Protocol
	}
	name, ok := nftProto[proto]
	if !ok {
		b.problem("%s: protocol %q: left out", where, proto)
		return portRange{}, false
	}
	switch {
	case pp.Port == nil:
		return portRange{name, 0, 65535}, true
	case pp.Port.Type == intstr.Int:
		r := portRange{name, pp.Port.IntVal, pp.Port.IntVal}
		if pp.EndPort != nil && *pp.EndPort >= r.lo {
			r.hi = *pp.EndPort
		}
		return r, true
	case target == nil:
		return portRange{}, false
	}
	for _, c := range slices.Concat(target.Spec.InitContainers, target.Spec.Containers) {
		for _, cp := range c.Ports {
			if cp.Name == pp.Port.StrVal && cmp.Or(cp.Protocol, corev1.ProtocolTCP) == proto {
				return portRange{name, cp.ContainerPort, cp.ContainerPort}, true
			}
		}
	}
	return portRange{}, false
}

// portMatches renders port ranges as nft matches, one per protocol, merging overlaps (older nft
// versions refuse overlapping set elements).
func portMatches(rs []portRange) []string {
	order := map[string]int{"tcp": 0, "udp": 1, "sctp": 2}
	slices.SortFunc(rs, func(x, y portRange) int {
		return cmp.Or(cmp.Compare(order[x.proto], order[y.proto]), cmp.Compare(x.lo, y.lo), cmp.Compare(x.hi, y.hi))
	})
	var merged []portRange
	for _, r := range rs {
		if n := len(merged); n > 0 && merged[n-1].proto == r.proto && r.lo <= merged[n-1].hi+1 {
			merged[n-1].hi = max(merged[n-1].hi, r.hi)
			continue
		}
		merged = append(merged, r)
	}
	var out []string
	for i := 0; i < len(merged); {
		j := i
		var elems []string
		for ; j < len(merged) && merged[j].proto == merged[i].proto; j++ {
			r := merged[j]
			if r.lo == r.hi {
				elems = append(elems, fmt.Sprint(r.lo))
			} else {
				elems = append(elems, fmt.Sprintf("%d-%d", r.lo, r.hi))
			}
		}
		if elems[0] == "0-65535" {
			out = append(out, "meta l4proto "+merged[i].proto)
		} else {
			out = append(out, merged[i].proto+" dport "+set(elems))
		}
		i = j
	}
	return out
}

func isEmpty(s string) bool { return s == "" }

// set renders one element bare and several as an anonymous set.
func set(elems []string) string {
	if len(elems) == 1 {
		return elems[0]
	}
	return "{ " + strings.Join(elems, ", ") + " }"
}

// addrMatches renders what peers admits as nft matches on the peer's address, "" standing for
// any address; none when it admits nothing.
func addrMatches(d direction, ps peers) []string {
	if ps.any {
		return []string{""}
	}
	var out []string
	if len(ps.pods) > 0 {
		out = append(out, d.peerAddr()+" "+podSet(ps.pods))
	}
	for _, k := range ps.blocks {
		m := d.peerAddr() + " " + k.cidr.String()
		if len(k.except) > 0 {
			var elems []string
			for _, e := range k.except {
				elems = append(elems, e.String())
			}
			m += " " + d.peerAddr() + " != { " + strings.Join(elems, ", ") + " }"
		}
		out = append(out, m)
	}
	return out
}

// podSet renders the pods' addresses, sorted and without duplicates.
func podSet(pods []*pod) string {
	var ips []netip.Addr
	for _, p := range pods {
		ips = append(ips, p.ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	var elems []string
	for _, ip := range slices.Compact(ips) {
		elems = append(elems, ip.String())
	}
	return set(elems)
}

// allows renders rule i of pol (its peers and ports) for local pod p's chain in direction d: a
// rule for each combination of peer address match and protocol.
func (b *builder) allows(p *pod, d direction, pol *networkingv1.NetworkPolicy, i int, list []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) []string {
	where := fmt.Sprintf("%s %s[%d]", policyName(pol), d, i)
	comment := " comment " + quote(where)
	ps := b.peers(pol, where, list)
	var out []string
	emit := func(addrs, ports []string) {
		for _, a := range addrs {
			for _, pm := range ports {
				out = append(out, strings.Join(slices.DeleteFunc([]string{a, pm, "return"}, isEmpty), " ")+comment)
			}
		}
	}
	if len(ports) == 0 {
		emit(addrMatches(d, ps), []string{""})
		return out
	}
	// Ports the same for every peer: numeric ones, and named ones of an ingress rule, which name
	// a port of p itself.
	var fixed []portRange
	var named []networkingv1.NetworkPolicyPort
	for j, pp := range ports {
		if d == egressDir && pp.Port != nil && pp.Port.Type == intstr.String {
			named = append(named, pp)
			continue
		}
		if r, ok := b.resolve(pp, p.obj, fmt.Sprintf("%s port %d", where, j)); ok {
			fixed = append(fixed, r)
		}
	}
	if len(fixed) > 0 {
		emit(addrMatches(d, ps), portMatches(fixed))
	}
	if len(named) == 0 {
		return out
	}
	// A named egress port is a port of the destination pod, so it differs from peer to peer:
	// the pods that resolve the names alike share a rule.
	groups := map[string][]*pod{}
	var keys []string
	for _, q := range b.egressPods(ps) {
		var rs []portRange
		for j, pp := range named {
			if r, ok := b.resolve(pp, q.obj, fmt.Sprintf("%s named port %d", where, j)); ok {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		key := strings.Join(portMatches(rs), "\n")
		if _, ok := groups[key]; !ok {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], q)
	}
	slices.Sort(keys)
	for _, k := range keys {
		emit([]string{d.peerAddr() + " " + podSet(groups[k])}, strings.Split(k, "\n"))
	}
	return out
}

// egressPods are the pods among what ps admits: a named port can only be resolved on a pod.
func (b *builder) egressPods(ps peers) []*pod {
	if ps.any {
		return b.pods
	}
	out := slices.Clone(ps.pods)
	in := map[*pod]bool{}
	for _, q := range out {
		in[q] = true
	}
	for _, q := range b.pods {
		if !in[q] && slices.ContainsFunc(ps.blocks, func(k ipBlock) bool { return k.contains(q.ip) }) {
			out = append(out, q)
		}
	}
	return out
}
