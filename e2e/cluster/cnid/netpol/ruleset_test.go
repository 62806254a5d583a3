package netpol

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The cluster every case runs on. Node n1 runs app/db, app/tokensvc, client/load-local and
// other/x, plus three pods that policies do not apply to; node n2 runs the rest.
var (
	testNamespaces = []*corev1.Namespace{
		namespace("app", "team", "app"),
		namespace("client", "team", "client"),
		namespace("other"),
		namespace("kube-system"),
	}
	testPods = []*corev1.Pod{
		testPod("app", "db", "n1", "10.244.1.10", map[string]string{"app": "postgres"}, port("postgres", 5432, corev1.ProtocolTCP)),
		testPod("app", "tokensvc", "n1", "10.244.1.11", map[string]string{"app": "tokensvc"},
			port("http", 8080, corev1.ProtocolTCP), port("metrics", 9090, corev1.ProtocolTCP)),
		testPod("app", "tokensvc-2", "n2", "10.244.2.11", map[string]string{"app": "tokensvc"}, port("http", 8081, corev1.ProtocolTCP)),
		testPod("client", "load", "n2", "10.244.2.20", map[string]string{"role": "client"}),
		testPod("client", "load-local", "n1", "10.244.1.20", map[string]string{"role": "client"}),
		testPod("client", "idle", "n2", "10.244.2.21", nil),
		testPod("other", "x", "n1", "10.244.1.30", map[string]string{"role": "client"}),
		testPod("kube-system", "coredns", "n2", "10.244.2.2", map[string]string{"k8s-app": "kube-dns"},
			port("dns", 53, corev1.ProtocolUDP), port("dns-tcp", 53, corev1.ProtocolTCP), port("metrics", 9153, corev1.ProtocolTCP)),
		// Policies do not apply to these: on the host's network, finished, no IP yet.
		func() *corev1.Pod {
			p := testPod("app", "hostnet", "n1", "172.18.0.2", map[string]string{"app": "postgres"})
			p.Spec.HostNetwork = true
			return p
		}(),
		func() *corev1.Pod {
			p := testPod("app", "done", "n1", "10.244.1.40", map[string]string{"app": "postgres"})
			p.Status.Phase = corev1.PodSucceeded
			return p
		}(),
		testPod("app", "pending", "n1", "", map[string]string{"app": "postgres"}),
	}
)

func namespace(name string, kv ...string) *corev1.Namespace {
	l := map[string]string{"kubernetes.io/metadata.name": name}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func testPod(ns, name, node, ip string, l map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if ip != "" {
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	return p
}

func port(name string, n int32, proto corev1.Protocol) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: proto}
}

func sel(kv ...string) *metav1.LabelSelector {
	l := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: l}
}

func pods(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nss(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func both(ns, pod *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pod}
}

func block(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func num(proto corev1.Protocol, n int32) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(n)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

func rng(proto corev1.Protocol, lo, hi int32) networkingv1.NetworkPolicyPort {
	p := num(proto, lo)
	p.EndPort = &hi
	return p
}

func named(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

const (
	TCP  = corev1.ProtocolTCP
	UDP  = corev1.ProtocolUDP
	SCTP = corev1.ProtocolSCTP
)

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	bothTypes   = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
)

func policy(ns, name string, podSel *metav1.LabelSelector, types []networkingv1.PolicyType,
	ingress []networkingv1.NetworkPolicyIngressRule, egress []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: *podSel, PolicyTypes: types, Ingress: ingress, Egress: egress},
	}
}

func from(ports []networkingv1.NetworkPolicyPort, peers ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyIngressRule {
	return []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: ports}}
}

func to(ports []networkingv1.NetworkPolicyPort, peers ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyEgressRule {
	return []networkingv1.NetworkPolicyEgressRule{{To: peers, Ports: ports}}
}

func ports(ps ...networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicyPort { return ps }

const drop = "counter drop"

// buildCases are the semantics of NetworkPolicy, each as the chains node n1 gets. chains lists
// every pod chain of the ruleset, so a pod that a case leaves alone is checked to have none.
var buildCases = []struct {
	name     string
	policies []*networkingv1.NetworkPolicy
	jumps    []string
	chains   map[string][]string
	problems []string
}{
	{name: "no policies, nothing isolated"},
	{
		name:     "default deny ingress and egress in one namespace",
		policies: []*networkingv1.NetworkPolicy{policy("app", "deny", sel(), bothTypes, nil, nil)},
		jumps: []string{
			"ip saddr 10.244.1.10 jump egress-10.244.1.10", "ip daddr 10.244.1.10 jump ingress-10.244.1.10",
			"ip saddr 10.244.1.11 jump egress-10.244.1.11", "ip daddr 10.244.1.11 jump ingress-10.244.1.11",
		},
		chains: map[string][]string{
			"egress-10.244.1.10": {drop}, "ingress-10.244.1.10": {drop},
			"egress-10.244.1.11": {drop}, "ingress-10.244.1.11": {drop},
		},
	},
	{
		name: "default policyTypes: ingress only without egress rules",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "deny", sel(), nil, nil, nil),
		},
		jumps:  []string{"ip daddr 10.244.1.10 jump ingress-10.244.1.10", "ip daddr 10.244.1.11 jump ingress-10.244.1.11"},
		chains: map[string][]string{"ingress-10.244.1.10": {drop}, "ingress-10.244.1.11": {drop}},
	},
	{
		name: "default policyTypes: egress too when egress rules are present",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "db", sel("app", "postgres"), nil, nil, to(nil, block("10.0.0.0/8"))),
		},
		jumps: []string{"ip saddr 10.244.1.10 jump egress-10.244.1.10", "ip daddr 10.244.1.10 jump ingress-10.244.1.10"},
		chains: map[string][]string{
			"egress-10.244.1.10":  {"ip daddr 10.0.0.0/8 return", drop},
			"ingress-10.244.1.10": {drop},
		},
	},
	{
		name: "listed policyTypes win over the rules present",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "db", sel("app", "postgres"), ingressOnly, nil, to(nil, block("10.0.0.0/8"))),
		},
		jumps:  []string{"ip daddr 10.244.1.10 jump ingress-10.244.1.10"},
		chains: map[string][]string{"ingress-10.244.1.10": {drop}},
	},
	{
		name: "allow by podSelector in the policy's namespace, pod not selected unaffected",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "db", sel("app", "postgres"), ingressOnly, from(ports(num(TCP, 5432)), pods(sel("app", "tokensvc"))), nil),
		},
		jumps: []string{"ip daddr 10.244.1.10 jump ingress-10.244.1.10"},
		chains: map[string][]string{
			"ingress-10.244.1.10": {"ip saddr { 10.244.1.11, 10.244.2.11 } tcp dport 5432 return", drop},
		},
	},
	{
		name: "allow by namespaceSelector: every pod of the namespaces",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "tokensvc", sel("app", "tokensvc"), ingressOnly, from(nil, nss(sel("team", "client"))), nil),
		},
		jumps: []string{"ip daddr 10.244.1.11 jump ingress-10.244.1.11"},
		chains: map[string][]string{
			"ingress-10.244.1.11": {"ip saddr { 10.244.1.20, 10.244.2.20, 10.244.2.21 } return", drop},
		},
	},
	{
		name: "namespaceSelector and podSelector in one peer are ANDed",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "tokensvc", sel("app", "tokensvc"), ingressOnly,
				from(nil, both(sel("team", "client"), sel("role", "client"))), nil),
		},
		jumps: []string{"ip daddr 10.244.1.11 jump ingress-10.244.1.11"},
		// Not client/idle (no role), not other/x (role=client in a namespace without team=client).
		chains: map[string][]string{"ingress-10.244.1.11": {"ip saddr { 10.244.1.20, 10.244.2.20 } return", drop}},
	},
	{
		name: "two peers are ORed; a podSelector alone stays in the policy's namespace",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "tokensvc", sel("app", "tokensvc"), ingressOnly,
				from(nil, nss(sel("team", "client")), pods(sel("role", "client")), pods(sel("app", "postgres"))), nil),
		},
		jumps: []string{"ip daddr 10.244.1.11 jump ingress-10.244.1.11"},
		chains: map[string][]string{
			"ingress-10.244.1.11": {"ip saddr { 10.244.1.10, 10.244.1.20, 10.244.2.20, 10.244.2.21 } return", drop},
		},
	},
	{
		name: "matchExpressions and an empty namespaceSelector",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "tokensvc", sel("app", "tokensvc"), ingressOnly, from(nil, both(&metav1.LabelSelector{}, &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "role", Operator: metav1.LabelSelectorOpIn, Values: []string{"client"}}},
			}), nss(&metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpDoesNotExist}},
			})), nil),
		},
		jumps: []string{"ip daddr 10.244.1.11 jump ingress-10.244.1.11"},
		// role=client anywhere, or any pod of other and kube-system (no team label): the peers of
		// one rule make one set.
		chains: map[string][]string{
			"ingress-10.244.1.11": {"ip saddr { 10.244.1.20, 10.244.1.30, 10.244.2.2, 10.244.2.20 } return", drop},
		},
	},
	{
		name: "ipBlock with except, nested exceptions merged, IPv6 block skipped",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "tokensvc", sel("app", "tokensvc"), egressOnly, nil,
				to(nil, block("10.0.0.0/8", "10.244.1.0/24", "10.244.0.0/16", "10.96.0.0/12"), block("192.168.1.7/24"), block("fd00::/8"), block("0.0.0.0/0", "10.0.0.0/8", "fd00::/8"))),
		},
		jumps: []string{"ip saddr 10.244.1.11 jump egress-10.244.1.11"},
		chains: map[string][]string{
			"egress-10.244.1.11": {
				"ip daddr 10.0.0.0/8 ip daddr != { 10.96.0.0/12, 10.244.0.0/16 } return",
				"ip daddr 192.168.1.0/24 return",
				"ip daddr 0.0.0.0/0 ip daddr != { 10.0.0.0/8 } return",
				drop,
			},
		},
	},
	{
		name: "ingress named port resolved against the local pod, protocol included",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "db", sel("app", "postgres"), ingressOnly, from(ports(named(TCP, "postgres")), pods(sel("app", "tokensvc"))), nil),
			policy("app", "db-udp", sel("app", "postgres"), ingressOnly, from(ports(named(UDP, "postgres"), named(TCP, "nope")), pods(sel("app", "tokensvc"))), nil),
		},
		jumps: []string{"ip daddr 10.244.1.10 jump ingress-10.244.1.10"},
		chains: map[string][]string{
			"ingress-10.244.1.10": {"ip saddr { 10.244.1.11, 10.244.2.11 } tcp dport 5432 return", drop},
		},
	},
	{
		name: "egress named port resolved against each peer pod",
		policies: []*networkingv1.NetworkPolicy{
			policy("client", "load", sel("role", "client"), egressOnly, nil,
				to(ports(named(TCP, "http"), num(TCP, 9090)), both(sel("team", "app"), sel("app", "tokensvc")))),
		},
		jumps: []string{"ip saddr 10.244.1.20 jump egress-10.244.1.20"},
		chains: map[string][]string{
			"egress-10.244.1.20": {
				"ip daddr { 10.244.1.11, 10.244.2.11 } tcp dport 9090 return",
				"ip daddr 10.244.1.11 tcp dport 8080 return",
				"ip daddr 10.244.2.11 tcp dport 8081 return",
				drop,
			},
		},
	},
	{
		name: "egress named port to any destination or an ipBlock matches only pods",
		policies: []*networkingv1.NetworkPolicy{
			policy("client", "any", sel("role", "client"), egressOnly, nil, to(ports(named(TCP, "metrics")))),
			policy("client", "block", sel("role", "client"), egressOnly, nil, to(ports(named(TCP, "http")), block("10.244.2.0/24", "10.244.2.128/25"))),
		},
		jumps: []string{"ip saddr 10.244.1.20 jump egress-10.244.1.20"},
		chains: map[string][]string{
			"egress-10.244.1.20": {
				"ip daddr 10.244.1.11 tcp dport 9090 return",
				"ip daddr 10.244.2.2 tcp dport 9153 return",
				"ip daddr 10.244.2.11 tcp dport 8081 return",
				drop,
			},
		},
	},
	{
		name: "endPort ranges merged, UDP, SCTP, protocol without a port",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "tokensvc", sel("app", "tokensvc"), ingressOnly, from(ports(
				num(UDP, 53), rng(TCP, 8000, 8100), num(TCP, 8050), num(TCP, 8101), num(TCP, 443),
				networkingv1.NetworkPolicyPort{Protocol: ptr(SCTP)}, rng(SCTP, 9, 10),
			)), nil),
		},
		jumps: []string{"ip daddr 10.244.1.11 jump ingress-10.244.1.11"},
		chains: map[string][]string{
			"ingress-10.244.1.11": {"tcp dport { 443, 8000-8101 } return", "udp dport 53 return", "meta l4proto sctp return", drop},
		},
	},
	{
		name: "a port without protocol is TCP",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "db", sel("app", "postgres"), ingressOnly, from([]networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(5432))}}), nil),
		},
		jumps:  []string{"ip daddr 10.244.1.10 jump ingress-10.244.1.10"},
		chains: map[string][]string{"ingress-10.244.1.10": {"tcp dport 5432 return", drop}},
	},
	{
		name: "several policies: the union of their rules, in the policies' order",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "z-clients", sel("app", "postgres"), ingressOnly, from(ports(num(TCP, 5432)), nss(sel("team", "client"))), nil),
			policy("app", "a-tokensvc", sel(), ingressOnly, from(ports(num(TCP, 5432)), pods(sel("app", "tokensvc"))), nil),
			policy("app", "deny", sel(), bothTypes, nil, nil),
		},
		jumps: []string{
			"ip saddr 10.244.1.10 jump egress-10.244.1.10", "ip daddr 10.244.1.10 jump ingress-10.244.1.10",
			"ip saddr 10.244.1.11 jump egress-10.244.1.11", "ip daddr 10.244.1.11 jump ingress-10.244.1.11",
		},
		chains: map[string][]string{
			"egress-10.244.1.10": {drop},
			"ingress-10.244.1.10": {
				"ip saddr { 10.244.1.11, 10.244.2.11 } tcp dport 5432 return",
				"ip saddr { 10.244.1.20, 10.244.2.20, 10.244.2.21 } tcp dport 5432 return",
				drop,
			},
			"egress-10.244.1.11":  {drop},
			"ingress-10.244.1.11": {"ip saddr { 10.244.1.11, 10.244.2.11 } tcp dport 5432 return", drop},
		},
	},
	{
		name: "an egress-only policy leaves ingress open",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "db", sel("app", "postgres"), egressOnly, nil, to(ports(num(UDP, 53)))),
		},
		jumps:  []string{"ip saddr 10.244.1.10 jump egress-10.244.1.10"},
		chains: map[string][]string{"egress-10.244.1.10": {"udp dport 53 return", drop}},
	},
	{
		name: "an empty rule allows everything; empty from with ports allows any peer",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "db", sel("app", "postgres"), bothTypes, []networkingv1.NetworkPolicyIngressRule{{}}, to(ports(num(UDP, 53)))),
		},
		jumps: []string{"ip saddr 10.244.1.10 jump egress-10.244.1.10", "ip daddr 10.244.1.10 jump ingress-10.244.1.10"},
		chains: map[string][]string{
			"egress-10.244.1.10":  {"udp dport 53 return", drop},
			"ingress-10.244.1.10": {"return", drop},
		},
	},
	{
		name: "DNS: egress to kube-system's CoreDNS pods by namespace and pod selector",
		policies: []*networkingv1.NetworkPolicy{
			policy("client", "dns", sel(), egressOnly, nil, to(ports(num(UDP, 53), num(TCP, 53)),
				both(sel("kubernetes.io/metadata.name", "kube-system"), sel("k8s-app", "kube-dns")))),
			policy("other", "dns-named", sel(), egressOnly, nil, to(ports(named(UDP, "dns"), named(TCP, "dns-tcp")),
				both(sel("kubernetes.io/metadata.name", "kube-system"), sel("k8s-app", "kube-dns")))),
		},
		jumps: []string{"ip saddr 10.244.1.20 jump egress-10.244.1.20", "ip saddr 10.244.1.30 jump egress-10.244.1.30"},
		chains: map[string][]string{
			"egress-10.244.1.20": {"ip daddr 10.244.2.2 tcp dport 53 return", "ip daddr 10.244.2.2 udp dport 53 return", drop},
			"egress-10.244.1.30": {"ip daddr 10.244.2.2 tcp dport 53 return", "ip daddr 10.244.2.2 udp dport 53 return", drop},
		},
	},
	{
		name: "a selector that selects no pod allows nothing",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "db", sel("app", "postgres"), ingressOnly, from(nil, pods(sel("app", "nothing")), nss(sel("team", "nobody"))), nil),
		},
		jumps:  []string{"ip daddr 10.244.1.10 jump ingress-10.244.1.10"},
		chains: map[string][]string{"ingress-10.244.1.10": {drop}},
	},
	{
		name: "policies of other nodes' pods are not in this node's ruleset",
		policies: []*networkingv1.NetworkPolicy{
			policy("kube-system", "dns", sel(), bothTypes, nil, nil),
		},
	},
	{
		name: "what cannot be translated is left out and reported",
		policies: []*networkingv1.NetworkPolicy{
			policy("app", "bad", sel("app", "postgres"), ingressOnly, from(ports(num("ICMP", 1), num(TCP, 5432)),
				block("10.0.0.0/33"), block("10.0.0.0/8", "nope"), pods(&metav1.LabelSelector{
					MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}},
				}), networkingv1.NetworkPolicyPeer{}, block("10.1.0.0/16")), nil),
		},
		jumps:  []string{"ip daddr 10.244.1.10 jump ingress-10.244.1.10"},
		chains: map[string][]string{"ingress-10.244.1.10": {"ip saddr 10.1.0.0/16 tcp dport 5432 return", drop}},
		problems: []string{
			`app/bad ingress[0] peer 0: ipBlock "10.0.0.0/33"`,
			`app/bad ingress[0] peer 1: ipBlock 10.0.0.0/8 except "nope"`,
			`app/bad ingress[0] peer 2 podSelector: "Near" is not a valid label selector operator: it selects nothing`,
			`app/bad ingress[0] peer 3: no podSelector, namespaceSelector or ipBlock: it matches nothing`,
			`app/bad ingress[0] port 0: protocol "ICMP": left out`,
		},
	},
}

func ptr[T any](v T) *T { return &v }

func TestBuild(t *testing.T) {
	for _, tc := range buildCases {
		t.Run(tc.name, func(t *testing.T) {
			rs := Build("n1", Cluster{Pods: testPods, Namespaces: testNamespaces, Policies: tc.policies})
			jumps, chains := parse(t, rs.Text)
			if !slices.Equal(jumps, tc.jumps) {
				t.Errorf("forward chain jumps:\n got %q\nwant %q", jumps, tc.jumps)
			}
			for _, name := range slices.Sorted(maps.Keys(chains)) {
				if want, ok := tc.chains[name]; !ok {
					t.Errorf("unexpected chain %s: %q", name, chains[name])
				} else if !slices.Equal(chains[name], want) {
					t.Errorf("chain %s:\n got %q\nwant %q", name, chains[name], want)
				}
			}
			for _, name := range slices.Sorted(maps.Keys(tc.chains)) {
				if _, ok := chains[name]; !ok {
					t.Errorf("missing chain %s", name)
				}
			}
			if len(rs.Problems) != len(tc.problems) {
				t.Errorf("problems:\n got %q\nwant %q", rs.Problems, tc.problems)
			} else {
				for i, want := range tc.problems {
					if !strings.HasPrefix(rs.Problems[i], want) {
						t.Errorf("problem %d = %q, want one starting %q", i, rs.Problems[i], want)
					}
				}
			}
			if rs.LocalPods != 4 {
				t.Errorf("LocalPods = %d, want 4 (db, tokensvc, load-local, x)", rs.LocalPods)
			}
			var in, eg, allows int
			for name, rules := range chains {
				allows += len(rules) - 1
				if strings.HasPrefix(name, "ingress-") {
					in++
				} else {
					eg++
				}
			}
			if rs.IngressIsolated != in || rs.EgressIsolated != eg || rs.Allows != allows {
				t.Errorf("counts: ingress %d egress %d allows %d, want %d %d %d", rs.IngressIsolated, rs.EgressIsolated, rs.Allows, in, eg, allows)
			}
		})
	}
}

var (
	chainRE   = regexp.MustCompile(`^\tchain (\S+) \{$`)
	commentRE = regexp.MustCompile(` comment "[^"]*"$`)
)

// parse splits a ruleset into the forward chain's jumps and the pod chains' rules, without
// comments, checking the frame that every ruleset has.
func parse(t *testing.T, text string) (jumps []string, chains map[string][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	head := []string{
		"table inet stampede-netpol", "delete table inet stampede-netpol", "table inet stampede-netpol {",
		"\tchain forward {", "\t\ttype filter hook forward priority filter; policy accept;", "\t\tct state established,related accept",
	}
	if len(lines) < len(head)+2 || !slices.Equal(lines[1:len(head)+1], head) || lines[len(lines)-1] != "}" {
		t.Fatalf("ruleset does not have the expected frame:\n%s", text)
	}
	chains = map[string][]string{}
	cur := ""
	for _, l := range lines[len(head)+1 : len(lines)-1] {
		if l == "\t}" {
			cur = ""
			continue
		}
		if m := chainRE.FindStringSubmatch(l); m != nil {
			cur = m[1]
			chains[cur] = []string{}
			continue
		}
		rule := strings.TrimPrefix(l, "\t\t")
		switch {
		case cur == "":
			jumps = append(jumps, rule)
		case strings.HasPrefix(rule, "comment "):
		default:
			chains[cur] = append(chains[cur], commentRE.ReplaceAllString(rule, ""))
		}
	}
	return jumps, chains
}

// TestBuildText pins the whole text of one ruleset, comments included: they are how a rule in
// `nft list ruleset` on a node is traced back to its policy.
func TestBuildText(t *testing.T) {
	// The service subnets' refusals come before any pod's chain (an IPv6 one is not enforced).
	rs := Build("n1", Cluster{Pods: testPods, Namespaces: testNamespaces, Policies: []*networkingv1.NetworkPolicy{
		policy("app", "db", sel("app", "postgres"), bothTypes, from(ports(num(TCP, 5432)), pods(sel("app", "tokensvc"))), nil),
	}, ServiceSubnets: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("fd00:10:96::/112")}})
	want := `# NetworkPolicy enforcement on node n1, generated by cnid.
table inet stampede-netpol
delete table inet stampede-netpol
table inet stampede-netpol {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		ip daddr 10.96.0.0/16 meta l4proto tcp reject with tcp reset comment "a Service IP kube-proxy did not translate: no ready endpoint"
		ip daddr 10.96.0.0/16 reject with icmp type port-unreachable comment "a Service IP kube-proxy did not translate: no ready endpoint"
		ip saddr 10.244.1.10 jump egress-10.244.1.10
		ip daddr 10.244.1.10 jump ingress-10.244.1.10
	}
	chain egress-10.244.1.10 {
		comment "egress of pod app/db"
		counter drop
	}
	chain ingress-10.244.1.10 {
		comment "ingress of pod app/db"
		ip saddr { 10.244.1.11, 10.244.2.11 } tcp dport 5432 return comment "app/db ingress[0]"
		counter drop
	}
}
`
	if rs.Text != want {
		t.Errorf("ruleset:\n%s\nwant:\n%s", rs.Text, want)
	}
}

// TestBuildDeterministic: the informers' listings come in no particular order, and a ruleset
// that changed with it would be applied again on every event.
func TestBuildDeterministic(t *testing.T) {
	c := Cluster{Pods: testPods, Namespaces: testNamespaces}
	// Every case's policies at once, renamed apart: names are unique in a namespace.
	for i, tc := range buildCases {
		for _, p := range tc.policies {
			p = p.DeepCopy()
			p.Name = fmt.Sprintf("%s-%d", p.Name, i)
			c.Policies = append(c.Policies, p)
		}
	}
	want := Build("n1", c)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		s := Cluster{Pods: slices.Clone(c.Pods), Namespaces: slices.Clone(c.Namespaces), Policies: slices.Clone(c.Policies)}
		r.Shuffle(len(s.Pods), func(i, j int) { s.Pods[i], s.Pods[j] = s.Pods[j], s.Pods[i] })
		r.Shuffle(len(s.Namespaces), func(i, j int) { s.Namespaces[i], s.Namespaces[j] = s.Namespaces[j], s.Namespaces[i] })
		r.Shuffle(len(s.Policies), func(i, j int) { s.Policies[i], s.Policies[j] = s.Policies[j], s.Policies[i] })
		got := Build("n1", s)
		if got.Text != want.Text || !slices.Equal(got.Problems, want.Problems) {
			t.Fatalf("shuffled input gave another ruleset:\n%s\nwant:\n%s", got.Text, want.Text)
		}
	}
}

func TestBuildSharedIP(t *testing.T) {
	old := testPod("app", "old", "n1", "10.244.1.60", map[string]string{"app": "postgres"})
	old.CreationTimestamp = metav1.NewTime(time.Unix(100, 0))
	deleting := testPod("app", "deleting", "n1", "10.244.1.60", map[string]string{"app": "tokensvc"})
	deleting.CreationTimestamp = metav1.NewTime(time.Unix(300, 0))
	deleting.DeletionTimestamp = ptr(metav1.NewTime(time.Unix(400, 0)))
	newer := testPod("app", "newer", "n1", "10.244.1.60", map[string]string{"app": "tokensvc"})
	newer.CreationTimestamp = metav1.NewTime(time.Unix(200, 0))
	pols := []*networkingv1.NetworkPolicy{policy("app", "db", sel("app", "postgres"), ingressOnly, nil, nil)}

	// The newer of two live pods holds the IP: a policy selecting only the older one is not applied.
	rs := Build("n1", Cluster{Pods: []*corev1.Pod{old, newer, deleting}, Policies: pols})
	if strings.Contains(rs.Text, "jump") || len(rs.Problems) != 2 || !strings.Contains(rs.Problems[0], "enforcing app/newer's") {
		t.Errorf("newer pod should hold the IP; problems %q, ruleset:\n%s", rs.Problems, rs.Text)
	}
	// A pod being deleted gives way even to an older one.
	rs = Build("n1", Cluster{Pods: []*corev1.Pod{deleting, old}, Policies: pols})
	if !strings.Contains(rs.Text, "jump ingress-10.244.1.60") || len(rs.Problems) != 1 || !strings.Contains(rs.Problems[0], "enforcing app/old's") {
		t.Errorf("live pod should hold the IP; problems %q, ruleset:\n%s", rs.Problems, rs.Text)
	}
}

func TestPodIPv4(t *testing.T) {
	dual := testPod("a", "dual", "n1", "", nil)
	dual.Status.PodIPs = []corev1.PodIP{{IP: "fd00::5"}, {IP: "10.244.1.50"}}
	v6 := testPod("a", "v6", "n1", "fd00::6", nil)
	failed := testPod("a", "failed", "n1", "10.244.1.51", nil)
	failed.Status.Phase = corev1.PodFailed
	legacy := testPod("a", "legacy", "n1", "", nil)
	legacy.Status.PodIP = "10.244.1.52"
	for _, tc := range []struct {
		pod  *corev1.Pod
		want string
	}{{dual, "10.244.1.50"}, {v6, ""}, {failed, ""}, {legacy, "10.244.1.52"}, {testPods[0], "10.244.1.10"}} {
		got, ok := podIPv4(tc.pod)
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("podIPv4(%s) = %v, %v; want %q", tc.pod.Name, got, ok, tc.want)
		}
	}
}
