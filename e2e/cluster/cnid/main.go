// Command cnid is stampede's minimal CNI daemon for kind clusters built offline (kindnetd cannot be
// obtained here). It runs as a host-network DaemonSet on every node and:
//
//  1. waits for kube-proxy's first sync on the node's loopback, so that its own first call to the
//     API server's Service IP is translated on the node instead of leaving through the default route;
//  2. writes a ptp + host-local + portmap CNI config list for the node's podCIDR, which makes the
//     node Ready;
//  3. keeps a route to every other node's podCIDR via that node's InternalIP.
//
// It has no NetworkPolicy support and no masquerading: a cluster of stampede's has nowhere to go
// outside itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
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
	proxyHealthz  string
	resync        time.Duration
	mtu           int
	networkName   string
	confFileName  string
	ipamStateRoot string
}

func run(ctx context.Context, logger *slog.Logger, args []string) error {
	var cfg config
	fs := flag.NewFlagSet("cnid", flag.ContinueOnError)
	fs.StringVar(&cfg.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (env NODE_NAME)")
	fs.StringVar(&cfg.confDir, "cni-conf-dir", "/etc/cni/net.d", "where the CNI config list is written")
	fs.StringVar(&cfg.proxyHealthz, "kube-proxy-healthz", "http://127.0.0.1:10256/healthz", "kube-proxy's health endpoint on this node")
	fs.DurationVar(&cfg.resync, "resync", 10*time.Second, "how often routes are reconciled")
	fs.IntVar(&cfg.mtu, "mtu", 1500, "pod interface MTU")
	fs.StringVar(&cfg.networkName, "network-name", "stampede", "CNI network name")
	fs.StringVar(&cfg.ipamStateRoot, "ipam-state-dir", "/run/cni-ipam-state", "host-local IPAM state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.nodeName == "" {
		return errors.New("no node name: set NODE_NAME from the downward API (spec.nodeName)")
	}
	cfg.confFileName = "10-" + cfg.networkName + ".conflist"
	logger.Info("starting", "node", cfg.nodeName, "confDir", cfg.confDir, "resync", cfg.resync)

	logger.Info("waiting for kube-proxy's first sync", "url", cfg.proxyHealthz)
	if err := waitProxySynced(ctx, cfg.proxyHealthz); err != nil {
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
	if err := writeConfList(cfg, self.Spec.PodCIDR); err != nil {
		return err
	}
	logger.Info("wrote CNI config", "podCIDR", self.Spec.PodCIDR, "file", filepath.Join(cfg.confDir, cfg.confFileName))

	installed := map[string]string{}
	reconcile := func(ctx context.Context) {
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
			out, err := exec.CommandContext(ctx, "ip", "route", "replace", n.Spec.PodCIDR, "via", ip).CombinedOutput()
			if err != nil {
				logger.Warn("adding route", "node", n.Name, "podCIDR", n.Spec.PodCIDR, "via", ip, "err", err, "output", strings.TrimSpace(string(out)))
				continue
			}
			installed[n.Spec.PodCIDR] = ip
			logger.Info("route installed", "node", n.Name, "podCIDR", n.Spec.PodCIDR, "via", ip)
		}
	}
	wait.UntilWithContext(ctx, reconcile, cfg.resync)
	return ctx.Err()
}

// waitProxySynced polls kube-proxy's healthz until it reports a completed sync: HTTP 200 and a
// non-zero lastUpdated.
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
		var body struct {
			LastUpdated time.Time `json:"lastUpdated"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return true, nil // an older kube-proxy answers plain "ok" once healthy
		}
		return !body.LastUpdated.IsZero(), nil
	})
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
