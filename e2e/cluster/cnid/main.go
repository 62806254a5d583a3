// Command cnid is stampede's minimal CNI daemon for kind clusters built offline (kindnetd cannot be
// obtained here). It runs as a host-network DaemonSet on every node and:
//
//  1. waits until kube-proxy has completed its first full sync of rules on this node (its metrics on
//     the node's loopback), so that its own first call to the API server's Service IP is translated
//     on the node instead of leaving through the default route. kube-proxy's healthz is not enough:
//     it answers healthy once its caches are synced, while the first full sync can take seconds
//     more on a loaded host, and a connection opened in that gap keeps retransmitting to the
//     untranslated address for its whole dial timeout;
//  2. writes a ptp + host-local + portmap CNI config list for the node's podCIDR, which makes the
//     node Ready;
//  3. keeps a route to every other node's podCIDR via that node's InternalIP (watching nodes, so a
//     new node is routed at once), and makes the rest of the cluster's pod subnet unreachable, so
//     that pod traffic without a route is refused on the node instead of leaving through the host;
//  4. before writing that config, and again on every resync, rejects in the FORWARD chain pod
//     traffic to the cluster's service subnet that kube-proxy did not translate (rejectRules), so
//     that it is refused on the node instead of leaving through the host. The service subnet is
//     read from kube-system/kubeadm-config, since kind's CNI template offers only the pod subnet;
//  5. enforces NetworkPolicies (package netpol), also before writing that config, so that no pod of
//     this node starts unenforced: it watches pods, namespaces and policies and applies this node's
//     ruleset, table inet stampede-netpol, with `nft -f -` whenever it changes. -network-policy=false
//     turns this off and removes the table.
//
// Why its own enforcement and not sigs.k8s.io/kube-network-policies, which kind's own CNI ships:
// that sends every new connection to userspace with the nftables queue expression, and the
// kernels stampede runs on are built without CONFIG_NFT_QUEUE, so its rules cannot be loaded; its
// package exports only NewController and Run, so its evaluator cannot be reused without the queue.
// A static ruleset needs nothing in userspace on the data path. The table is left in place when
// cnid stops: a node keeps enforcing the last policies while cnid restarts, rather than letting
// everything through.
//
// It does no masquerading: a cluster of stampede's has nowhere to go outside itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/stampede-e2e/stampede/e2e/cluster/cnid/netpol"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, logger, os.Args[1:]); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("cnid failed", "err", err)
		os.Exit(1)
	}
}

type config struct {
	nodeName      string
	confDir       string
	proxyMetrics  string
	resync        time.Duration
	podSubnet     string
	serviceSubnet string
	mtu           int
	networkName   string
	confFileName  string
	ipamStateRoot string
	networkPolicy bool
}

func run(ctx context.Context, logger *slog.Logger, args []string) error {
	var cfg config
	fs := flag.NewFlagSet("cnid", flag.ContinueOnError)
	fs.StringVar(&cfg.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (env NODE_NAME)")
	fs.StringVar(&cfg.confDir, "cni-conf-dir", "/etc/cni/net.d", "where the CNI config list is written")
	fs.StringVar(&cfg.proxyMetrics, "kube-proxy-metrics", "http://127.0.0.1:10249/metrics", "kube-proxy's metrics endpoint on this node")
	fs.DurationVar(&cfg.resync, "resync", 10*time.Second, "how often routes are reconciled")
	fs.StringVar(&cfg.podSubnet, "pod-subnet", os.Getenv("POD_SUBNET"), "the cluster's pod subnet, unreachable but for the nodes' podCIDRs (env POD_SUBNET)")
	fs.StringVar(&cfg.serviceSubnet, "service-subnet", os.Getenv("SERVICE_SUBNET"), "the cluster's service subnet(s), comma-separated; empty means read it from kube-system/kubeadm-config (env SERVICE_SUBNET)")
	fs.IntVar(&cfg.mtu, "mtu", 1500, "pod interface MTU")
	fs.StringVar(&cfg.networkName, "network-name", "stampede", "CNI network name")
	fs.StringVar(&cfg.ipamStateRoot, "ipam-state-dir", "/run/cni-ipam-state", "host-local IPAM state directory")
	fs.BoolVar(&cfg.networkPolicy, "network-policy", true, "enforce NetworkPolicies with nftables; false removes table inet "+netpol.Table)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.nodeName == "" {
		return errors.New("no node name: set NODE_NAME from the downward API (spec.nodeName)")
	}
	cfg.confFileName = "10-" + cfg.networkName + ".conflist"
	logger.Info("starting", "node", cfg.nodeName, "confDir", cfg.confDir, "resync", cfg.resync)

	logger.Info("waiting for kube-proxy's first full sync", "url", cfg.proxyMetrics)
	if err := waitProxySynced(ctx, cfg.proxyMetrics); err != nil {
		return fmt.Errorf("wait for kube-proxy: %w", err)
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("in-cluster config: %w", err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}

	var self *corev1.Node
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, cfg.nodeName, metav1.GetOptions{})
		if err != nil {
			logger.Info("getting own node", "err", err)
			return false, nil
		}
		self = n
		return n.Spec.PodCIDR != "", nil
	})
	if err != nil {
		return fmt.Errorf("wait for this node's podCIDR: %w", err)
	}
	// Pod traffic to a pod subnet this node has no route for yet must be refused here, not sent
	// to the default gateway: that would be the host, and through it the uplink.
	if cfg.podSubnet != "" {
		if err := ipRoute(ctx, "replace", "unreachable", cfg.podSubnet); err != nil {
			return fmt.Errorf("unreachable route for the cluster's pod subnet: %w", err)
		}
		logger.Info("pod subnet unreachable by default", "podSubnet", cfg.podSubnet)
	}
	subnets, err := serviceSubnets(ctx, client, cfg.serviceSubnet, logger)
	if err != nil {
		return err
	}
	var rules []rule
	for _, s := range subnets {
		rules = append(rules, rejectRules(s)...)
	}
	// Before the CNI config exists, so that no pod can start before the rules are in place.
	added, err := ensureRules(ctx, execRunner, rules)
	if err != nil {
		return fmt.Errorf("reject untranslated pod traffic to the service subnet: %w", err)
	}
	logger.Info("untranslated pod traffic to the service subnet rejected", "serviceSubnets", fmt.Sprint(subnets),
		"iptables", iptablesBackend(ctx, execRunner), "inserted", len(added), "rules", len(rules))

	installed := map[string]string{}
	reconcile := func(ctx context.Context) {
		// A flush of the filter table (a node restart, a tool resetting iptables) must not leave
		// the node without the rules until cnid restarts.
		if added, err := ensureRules(ctx, execRunner, rules); err != nil {
			logger.Warn("checking the service subnet reject rules", "err", err)
		} else {
			for _, r := range added {
				logger.Warn("service subnet reject rule was missing: restored", "rule", r.String())
			}
		}
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			logger.Warn("listing nodes", "err", err)
			return
		}
		for _, n := range nodes.Items {
			if n.Name == cfg.nodeName || n.Spec.PodCIDR == "" {
				continue
			}
			ip := internalIP(&n)
			if ip == "" || installed[n.Spec.PodCIDR] == ip {
				continue
			}
			if err := ipRoute(ctx, "replace", n.Spec.PodCIDR, "via", ip); err != nil {
				logger.Warn("adding route", "node", n.Name, "podCIDR", n.Spec.PodCIDR, "via", ip, "err", err)
				continue
			}
			installed[n.Spec.PodCIDR] = ip
			logger.Info("route installed", "node", n.Name, "podCIDR", n.Spec.PodCIDR, "via", ip)
		}
	}
	// Routes to the nodes known now go in before this node can start pods.
	reconcile(ctx)
	// And so do the policies.
	policyErr := make(chan error, 1)
	if cfg.networkPolicy {
		ctrl := netpol.NewController(netpol.Params{Client: client, Node: cfg.nodeName, ServiceSubnets: subnets, Logger: logger, Recheck: cfg.resync})
		go func() { policyErr <- ctrl.Run(ctx) }()
		select {
		case <-ctrl.Applied():
		case err := <-policyErr:
			return fmt.Errorf("network policy: %w", err)
		}
	} else {
		// A table left by an earlier cnid would enforce stale policies that nothing updates. Only
		// a warning if that fails: the flag is the way out when enforcement is what goes wrong.
		if err := (netpol.NftCommand{}).Delete(ctx); err != nil {
			logger.Warn("removing the network policy table", "table", netpol.Table, "err", err)
		}
		logger.Info("network policies not enforced", "flag", "-network-policy=false")
	}
	if err := writeConfList(cfg, self.Spec.PodCIDR); err != nil {
		return err
	}
	logger.Info("wrote CNI config", "podCIDR", self.Spec.PodCIDR, "file", filepath.Join(cfg.confDir, cfg.confFileName))

	// A node that joins later gets its route as soon as it has a podCIDR: a watch wakes the loop,
	// the resync covers a missed event.
	changed := make(chan struct{}, 1)
	go watchNodes(ctx, client, changed, logger)
	ticker := time.NewTicker(cfg.resync)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-ticker.C:
		case err := <-policyErr:
			return fmt.Errorf("network policy: %w", err)
		}
		reconcile(ctx)
	}
}

// watchNodes signals changed on every node event, re-establishing the watch when it ends.
func watchNodes(ctx context.Context, client kubernetes.Interface, changed chan<- struct{}, logger *slog.Logger) {
	for ctx.Err() == nil {
		w, err := client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
		if err != nil {
			logger.Warn("watching nodes", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for range w.ResultChan() {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
		w.Stop()
	}
}

// serviceSubnets returns the subnets given by flag (comma-separated), or else those of
// kube-system/kubeadm-config's ClusterConfiguration, waiting for a readable one up to 2 minutes.
func serviceSubnets(ctx context.Context, client kubernetes.Interface, flag string, logger *slog.Logger) ([]netip.Prefix, error) {
	if flag != "" {
		subnets, err := parseSubnets(flag)
		if err != nil {
			return nil, fmt.Errorf("-service-subnet: %w", err)
		}
		return subnets, nil
	}
	var (
		subnets []netip.Prefix
		last    error
	)
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, kubeadmConfigMap, metav1.GetOptions{})
		if err != nil {
			last = err
			logger.Info("reading the service subnet", "configmap", kubeadmConfigMap, "err", err)
			return false, nil
		}
		subnets, last = serviceSubnetsFrom(cm)
		return last == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("service subnet from kube-system/%s (or set -service-subnet): %w", kubeadmConfigMap, errors.Join(err, last))
	}
	return subnets, nil
}

func ipRoute(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"route"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip route %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fullSyncMetric counts kube-proxy's completed full syncs of its IPv4 rules.
const fullSyncMetric = `kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}`

// waitProxySynced polls kube-proxy's metrics until it has completed a full sync of its IPv4 rules.
func waitProxySynced(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		if err != nil {
			return false, nil
		}
		return fullSyncs(string(body)) >= 1, nil
	})
}

// fullSyncs reads fullSyncMetric from a Prometheus text exposition; 0 when absent.
func fullSyncs(metrics string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, fullSyncMetric+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return 0
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && !strings.Contains(a.Address, ":") {
			return a.Address
		}
	}
	return ""
}

func writeConfList(cfg config, podCIDR string) error {
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       cfg.networkName,
		"plugins": []any{
			map[string]any{
				"type":   "ptp",
				"ipMasq": false,
				"mtu":    cfg.mtu,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": cfg.ipamStateRoot,
					"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
					"ranges":  []any{[]any{map[string]any{"subnet": podCIDR}}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode CNI config: %w", err)
	}
	if err := os.MkdirAll(cfg.confDir, 0o755); err != nil {
		return fmt.Errorf("create CNI config dir: %w", err)
	}
	// Write then rename: the runtime must never read a half-written file.
	tmp := filepath.Join(cfg.confDir, "."+cfg.confFileName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write CNI config: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(cfg.confDir, cfg.confFileName)); err != nil {
		return fmt.Errorf("install CNI config: %w", err)
	}
	return nil
}
