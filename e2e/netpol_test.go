//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/framework"
	"github.com/stampede-e2e/stampede/e2e/target"
	"github.com/stampede-e2e/stampede/manifests"
)

// How long a probe waits for its connection: a policy drops the SYN, so a denied connection is one
// that has not opened by then. A probe that must connect waits up to probeTimeout, which only an
// unexpected failure spends. A probe that must be refused spends its whole deniedTimeout every
// time, so it is shorter, but still sends three SYNs (at 0, 1 and 3 s): a new pod's first SYNs
// can be dropped while the plugin programs its rules, and the control probes connected after
// 1.0 to 2.1 s in 16 runs, so a path that is open shows as open within it.
const (
	probeTimeout  = 5 * time.Second
	deniedTimeout = 4 * time.Second
)

var _ = Describe("Network policy", Label("netpol"), func() {
	plan, ok := planOrFail()
	if !ok {
		return
	}
	// Addresses are the Services' ClusterIPs and the pods' IPs, not names: a DNS failure must not
	// pass for a denied connection. The target's Service, pods and metrics port are its file's.
	It(specText(plan.Target, "keeps every pod but the target's away from PostgreSQL, and the target still reaches it",
		"keeps every pod but the token service away from PostgreSQL, and the token service still reaches it"),
		Label(plan.Primary()), func(ctx SpecContext) {
			skipFor(plan.NoExactlyOnce)
			t := env.Config.Target
			skipFor(noBundledDatabase(t))
			d := env.Deploy(ctx, framework.DeployParams{Strategy: plan.Primary()})
			svc := func(name string, port int) string {
				s, err := env.Client.CoreV1().Services(d.Namespace).Get(ctx, name, metav1.GetOptions{})
				Expect(err).NotTo(HaveOccurred())
				return net.JoinHostPort(s.Spec.ClusterIP, strconv.Itoa(port))
			}
			postgres := svc(manifests.PostgresName, manifests.PostgresPort)
			tokensvc := svc(t.Deploy.Service.Name, t.Deploy.Service.Port)
			pods, err := env.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: d.PodSelector()})
			Expect(err).NotTo(HaveOccurred())
			Expect(pods.Items).NotTo(BeEmpty())
			metrics := ""
			if m := t.Observability.Metrics; m != nil {
				metrics = net.JoinHostPort(pods.Items[0].Status.PodIP, strconv.Itoa(m.Port))
			}

			// Two rounds of probes, each at once: a denied connection waits out its whole timeout,
			// and none of a round depends on another's result. The first asks whether PostgreSQL
			// is out of reach of a pod no policy allows, by address and by name, and whether a
			// missing name fails as a lookup. The control policy is created just before it, and its
			// first control probe joins the round: policies only ever allow, so the control policy,
			// in effect or not yet, opens no path for the other probes, which carry no control
			// label. The second round runs once a control probe has connected.
			// The DNS peers are the run's setting (-e2e.dns, default CoreDNS's pods and NodeLocal
			// DNSCache's listener): on a cluster whose DNS they miss, every lookup fails here.
			// Relative names, as a client writes them, whatever the cluster's domain. The missing one
			// ends, once no search domain completes it, as a query the cluster's DNS forwards
			// upstream: here that fails after 4 s, so its probe ends at its deadline, still an
			// error of the lookup.
			byName := net.JoinHostPort(manifests.PostgresName+"."+d.Namespace+".svc", strconv.Itoa(manifests.PostgresPort))
			missing := net.JoinHostPort("no-such-service."+d.Namespace+".svc", strconv.Itoa(manifests.PostgresPort))
			allowControlProbes(ctx, d.Namespace)
			allowed := map[string]string{controlLabel: "allowed"}
			By("probing at once: PostgreSQL from a pod outside the allowed set, by address and by name, a name that does not exist, and PostgreSQL from a control pod")
			before := d.Probes(ctx,
				framework.ProbeSpec{Name: "probe-denied", Addr: postgres, Timeout: deniedTimeout},
				framework.ProbeSpec{Name: "probe-dns", Addr: byName, Timeout: deniedTimeout},
				framework.ProbeSpec{Name: "probe-dns-control", Addr: missing, Timeout: deniedTimeout},
				framework.ProbeSpec{Name: "probe-control-1", Labels: allowed, Addr: postgres, Timeout: probeTimeout})

			By("a pod outside the allowed set cannot open a connection to PostgreSQL")
			Expect(before[0].Connected).To(BeFalse(), "a pod that no policy allows reached PostgreSQL at %s: "+
				"the cluster's network plugin does not enforce NetworkPolicy (the offline node image's cnid does; see README)", postgres)

			By("a pod that only the DNS policy lets out resolves PostgreSQL's name, and is still refused the connection")
			Expect(before[1].Connected).To(BeFalse(), "a pod that no policy allows reached PostgreSQL at %s", byName)
			Expect(before[1].Error).NotTo(ContainSubstring("lookup"),
				"the DNS lookup of %s failed under the DNS policy: set the cluster's DNS peers (DNS=..., README: DNS egress)", byName)
			By("control: a name that does not exist fails as a lookup, so the probe tells one from a refused connection")
			Expect(before[2].Error).To(ContainSubstring("lookup"),
				"a lookup of %s did not fail as a lookup: the probe cannot see a DNS failure, and the check above proves nothing", missing)

			By("control: a policy that lets a probe out, and into PostgreSQL, makes the same probe connect")
			// cnid applies a new policy within moments; until the first control probe has seen it,
			// ask again with fresh pods.
			connected, n := before[3].Connected, 1
			Eventually(ctx, func() bool {
				if !connected {
					n++
					connected = d.Probe(ctx, fmt.Sprintf("probe-control-%d", n), allowed, postgres, probeTimeout, "").Connected
				}
				return connected
			}).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(BeTrue(),
				"with a policy allowing it, the probe never reached PostgreSQL: the probe cannot see an open path, and its 'denied' proves nothing")

			after := []framework.ProbeSpec{
				{Name: "probe-denied-again", Addr: postgres, Timeout: deniedTimeout},
				{Name: "probe-control-api", Labels: allowed, Addr: tokensvc, Timeout: probeTimeout},
			}
			if metrics != "" {
				after = append(after, framework.ProbeSpec{Name: "probe-control-metrics", Labels: allowed, Addr: metrics, Timeout: deniedTimeout})
			}
			By("probing at once: PostgreSQL from a pod without the control label, the API and the metrics port from a control pod")
			got := d.Probes(ctx, after...)

			By("a pod without the control label is still refused, after the control policy exists")
			Expect(got[0].Connected).To(BeFalse())

			By("the control probe reaches the token service's API, but not its metrics port (port-forwards only)")
			Expect(got[1].Connected).To(BeTrue(), "the token service's Service at %s", tokensvc)
			if metrics != "" {
				Expect(got[2].Connected).To(BeFalse(), "a pod reached the token service's metrics port at %s", metrics)
			}

			By("the token service still reaches PostgreSQL: a burst registers every customer")
			// What this asks is the path through the policies, judged by every invariant; the race's
			// statistics are the registration specs': a quarter of their customers (1 s of bursts
			// instead of 4), never fewer than the coverage guard's minimum.
			p := bursts(5)
			p.Customers = env.Customers(5, max(env.Config.Customers/4, coverage.MinCovered))
			o := d.Stampede(ctx, p)
			if o.Result.Verdict != check.VerdictPass {
				d.Failf(o, "under the network policies the token service broke the invariants")
			}
		}, SpecTimeout(cfg.Timeout))
})

// noBundledDatabase is why the spec cannot run on t: the PostgreSQL whose policy it probes is
// the suite's bundled one.
func noBundledDatabase(t *target.Target) string {
	if t.Deploy.Database.Bundled == nil {
		return "target " + t.Name + " does not use the bundled PostgreSQL, whose network policy this spec probes"
	}
	return ""
}

// controlLabel marks the probe pods the control policy lets through.
const controlLabel = "stampede.dev/netprobe"

// allowControlProbes adds two policies to namespace: pods labelled controlLabel=allowed may open
// any connection, and PostgreSQL accepts them on its port.
func allowControlProbes(ctx context.Context, namespace string) {
	GinkgoHelper()
	tcp := corev1.ProtocolTCP
	control := &metav1.LabelSelector{MatchLabels: map[string]string{controlLabel: "allowed"}}
	for _, p := range []*networkingv1.NetworkPolicy{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "netprobe-control-egress"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: *control,
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "netprobe-control-postgres"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{manifests.NameLabel: manifests.PostgresName}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: control}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(manifests.PostgresPort))}},
				}},
			},
		},
	} {
		_, err := env.Client.NetworkingV1().NetworkPolicies(namespace).Create(ctx, p, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "create NetworkPolicy %s", p.Name)
	}
}
