package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/stampede-e2e/stampede/e2e/ready"
)

// kubeconfigPath returns where the kind cluster's kubeconfig goes, choosing a temporary file
// when Params.Kubeconfig is empty. kind merges into an existing file, so the temporary file
// does not exist yet.
func (c *Cluster) kubeconfigPath() (string, error) {
	if c.kubeconfig != "" {
		return c.kubeconfig, nil
	}
	if c.p.Kubeconfig != "" {
		if err := os.MkdirAll(filepath.Dir(c.p.Kubeconfig), 0o700); err != nil {
			return "", fmt.Errorf("kubeconfig directory: %w", err)
		}
		c.kubeconfig = c.p.Kubeconfig
		return c.kubeconfig, nil
	}
	dir, err := os.MkdirTemp("", "stampede-kubeconfig-")
	if err != nil {
		return "", fmt.Errorf("kubeconfig directory: %w", err)
	}
	c.tempKubeconfig = dir
	c.kubeconfig = filepath.Join(dir, "kubeconfig")
	return c.kubeconfig, nil
}

func (c *Cluster) removeTempKubeconfig() {
	if c.tempKubeconfig != "" {
		_ = os.RemoveAll(c.tempKubeconfig)
		c.tempKubeconfig = ""
	}
}

func (c *Cluster) attachExisting(ctx context.Context) error {
	cfg, err := existingRESTConfig(c.p.Kubeconfig, c.p.Context)
	if err != nil {
		return err
	}
	if err := c.setRESTConfig(cfg); err != nil {
		return err
	}
	c.kubeconfig = c.p.Kubeconfig
	if err := c.loadNodes(ctx); err != nil {
		return err
	}
	c.log.Info("using existing cluster", "server", cfg.Host, "nodes", len(c.nodes))
	return nil
}

func (c *Cluster) connect(path string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	c.kubeconfig = path
	return c.setRESTConfig(cfg)
}

func (c *Cluster) setRESTConfig(cfg *rest.Config) error {
	// Bursts of list/watch calls from the suite must not be throttled client-side.
	cfg.QPS, cfg.Burst = 50, 100
	if c.p.WrapTransport != nil {
		cfg.Wrap(c.p.WrapTransport)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	c.rest, c.client = cfg, cs
	return nil
}

// loadNodes lists the nodes: kind's node containers, or the API's nodes in existing mode.
func (c *Cluster) loadNodes(ctx context.Context) error {
	c.nodes = nil
	if c.provider == nil {
		list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		for _, n := range list.Items {
			role := "worker"
			if _, ok := n.Labels["node-role.kubernetes.io/control-plane"]; ok {
				role = "control-plane"
			}
			c.nodes = append(c.nodes, Node{Name: n.Name, Role: role})
		}
	} else {
		kn, err := c.provider.ListInternalNodes(c.p.Name)
		if err != nil {
			return fmt.Errorf("list kind nodes: %w", err)
		}
		for _, n := range kn {
			role, err := n.Role()
			if err != nil {
				return fmt.Errorf("role of node %s: %w", n, err)
			}
			c.nodes = append(c.nodes, Node{Name: n.String(), Role: role, Container: n.String()})
		}
	}
	sort.Slice(c.nodes, func(i, j int) bool { return c.nodes[i].Name < c.nodes[j].Name })
	return nil
}

// loadHostPorts reads back, from the node containers, the host ports that the config's
// extraPortMappings were published on.
func (c *Cluster) loadHostPorts(ctx context.Context, cfg *v1alpha4.Cluster) error {
	c.hostPorts = map[int32]hostBinding{}
	names := make([]string, 0, len(c.nodes))
	for _, n := range c.nodes {
		names = append(names, n.Container)
	}
	infos, err := inspectContainers(ctx, names...)
	if err != nil {
		return fmt.Errorf("read host ports: %w", err)
	}
	for _, n := range cfg.Nodes {
		for _, m := range n.ExtraPortMappings {
			for _, ci := range infos {
				if addr, port, ok := ci.hostPortOf(m.ContainerPort); ok {
					c.hostPorts[m.ContainerPort] = hostBinding{address: addr, port: port}
				}
			}
			if _, ok := c.hostPorts[m.ContainerPort]; !ok && m.Protocol != v1alpha4.PortMappingProtocolUDP && m.Protocol != v1alpha4.PortMappingProtocolSCTP {
				return fmt.Errorf("no node container publishes port %d (the config maps it)", m.ContainerPort)
			}
		}
	}
	return nil
}

func (c *Cluster) waitNodesReady(ctx context.Context, timeout time.Duration) error {
	start := time.Now()
	if err := ready.Wait(ctx, "nodes Ready", time.Second, timeout, ready.NodesReady(c.client)); err != nil {
		return err
	}
	c.log.Info("nodes ready", "took", since(start))
	return nil
}

// existingRESTConfig loads the kubeconfig file and the context named in it (its current one when
// context is empty; the callers decide whether that is allowed).
func existingRESTConfig(kubeconfig, context string) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s (context %q): %w", kubeconfig, context, err)
	}
	return cfg, nil
}
