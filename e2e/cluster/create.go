package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
)

func (c *Cluster) upKind(ctx context.Context) error {
	exists, err := clusterExists(c.provider, c.p.Name)
	if err != nil {
		return err
	}
	rec, err := readOwner(c.p.StateDir, c.p.Name)
	if err != nil {
		return err
	}
	if c.p.Mode == ModeKind {
		if exists {
			return kindNameTaken(c.p.Name, rec)
		}
		return c.create(ctx)
	}
	if !exists {
		if c.p.NoCreate {
			return fmt.Errorf("reuse cluster %s: no such kind cluster (create it with `stampede-cluster up --name %s`)", c.p.Name, c.p.Name)
		}
		return c.create(ctx)
	}
	var broken error
	if !c.p.Recreate {
		start := time.Now()
		if rec != nil {
			// We hold the name's lock, so no stampede run is using the cluster: a paused node is
			// what an interrupted chaos run left.
			c.unpauseNodes(ctx)
		}
		if broken = c.reuse(ctx); broken == nil {
			c.reused = true
			c.log.Info("reusing healthy cluster", "checked", since(start), "nodes", len(c.nodes))
			return nil
		}
	}
	switch act, err := decideReuse(c.p.Name, broken, rec, c.p.Recreate, c.p.NoCreate); act {
	case reuseRecreate:
		c.log.Warn("deleting cluster to recreate it", "reason", err)
		if err := deleteUntilGone(c.provider, c.p.Name); err != nil {
			return err
		}
		if err := removeOwner(c.p.StateDir, c.p.Name); err != nil {
			return err
		}
		return c.create(ctx)
	default:
		return err
	}
}

// kindNameTaken is kind mode's refusal of a name that is already a cluster.
func kindNameTaken(name string, rec *Owner) error {
	if rec != nil && !rec.Keep && !rec.Alive() {
		return fmt.Errorf("kind cluster %s exists: a leftover of stampede run %s (pid %d, gone); remove it with `stampede-cluster gc` (make gc), or name another cluster", name, rec.RunID, rec.PID)
	}
	return fmt.Errorf("kind cluster %s exists and this run did not create it: name another cluster (CLUSTER=, -e2e.cluster-name), reuse it (make e2e-reuse CLUSTER=%s), or delete it (stampede-cluster down --name %s)", name, name, name)
}

type reuseAction int

const (
	reuseRefuse reuseAction = iota
	reuseRecreate
)

// decideReuse decides what reuse mode does with an existing cluster that is broken (or that the
// user asked to recreate). It recreates a cluster only when asked to, or when stampede's reuse
// mode created it (rec): this run holds the name's lock, so no other run is using it. Else it
// refuses and says how to delete it.
func decideReuse(name string, broken error, rec *Owner, recreate, noCreate bool) (reuseAction, error) {
	switch {
	case recreate:
		return reuseRecreate, errors.New("asked to recreate it (--fresh)")
	case noCreate:
		return reuseRefuse, fmt.Errorf("reuse cluster %s: %w", name, broken)
	case rec != nil && rec.Mode == ModeReuse:
		return reuseRecreate, fmt.Errorf("broken, and created by stampede's reuse mode (run %s): %w", rec.RunID, broken)
	case rec != nil:
		return reuseRefuse, fmt.Errorf("reuse cluster %s: broken (%w); it was made by a %s-mode run (%s), not by reuse mode: delete it with `stampede-cluster down --name %s`, or recreate it with `stampede-cluster up --fresh --name %s`", name, broken, rec.Mode, rec.RunID, name, name)
	default:
		return reuseRefuse, fmt.Errorf("reuse cluster %s: broken (%w); stampede did not create it, so it is left alone: delete it with `stampede-cluster down --name %s`, or recreate it with `stampede-cluster up --fresh --name %s`", name, broken, name, name)
	}
}

func clusterExists(p *kindcluster.Provider, name string) (bool, error) {
	names, err := p.List()
	if err != nil {
		return false, fmt.Errorf("list kind clusters: %w", err)
	}
	return slices.Contains(names, name), nil
}

func (c *Cluster) create(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("create cluster: %w", err)
	}
	cfg, err := LoadConfig(c.p.ConfigPath)
	if err != nil {
		return fmt.Errorf("create cluster: %w", err)
	}
	moves, err := RelocateBusyPorts(cfg, nil, nil)
	if err != nil {
		return fmt.Errorf("create cluster: %w", err)
	}
	for _, m := range moves {
		c.log.Warn("host port taken: using a free one", "containerPort", m.ContainerPort, "asked", m.From, "using", m.To)
	}
	path, err := c.kubeconfigPath()
	if err != nil {
		return err
	}
	if err := ensureNetwork(ctx); err != nil {
		return fmt.Errorf("create cluster: %w", err)
	}
	// The record goes first: if this process dies during the create, gc finds the nodes by it.
	owner := newOwner(c.p.Name, c.p.RunID, c.p.Mode, c.p.Keep || c.p.Mode == ModeReuse)
	if err := writeOwner(c.p.StateDir, owner); err != nil {
		return fmt.Errorf("create cluster: %w", err)
	}
	done := make(chan struct{})
	c.mu.Lock()
	c.ours, c.createDone = true, done
	c.mu.Unlock()

	c.log.Info("creating cluster", "image", c.p.NodeImage, "nodes", len(cfg.Nodes), "config", c.p.ConfigPath, "network", NetworkName, "run", c.p.RunID)
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		defer close(done)
		errc <- c.provider.Create(c.p.Name,
			kindcluster.CreateWithV1Alpha4Config(cfg),
			kindcluster.CreateWithNodeImage(c.p.NodeImage),
			kindcluster.CreateWithKubeconfigPath(path),
			// Always retain: logs are collected before the nodes go, and deletion is ours to decide.
			kindcluster.CreateWithRetain(true),
			kindcluster.CreateWithWaitForReady(c.p.WaitForReady),
			kindcluster.CreateWithDisplayUsage(false),
			kindcluster.CreateWithDisplaySalutation(false),
		)
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
		c.log.Warn("interrupted during create", "after", since(start))
		return fmt.Errorf("create kind cluster %s: %w", c.p.Name, errors.Join(ctx.Err(), c.abortCreate()))
	}
	if err != nil {
		c.log.Error("create failed", "after", since(start), "err", err)
		return errors.Join(fmt.Errorf("create kind cluster %s: %w", c.p.Name, err), c.failedCreate(ctx))
	}
	c.created = true
	c.log.Info("cluster created", "took", since(start))
	if err := c.afterCreate(ctx, cfg); err != nil {
		return errors.Join(err, c.failedCreate(ctx))
	}
	return nil
}

// abortCreate ends a create that is still running in kind: unless Keep, it deletes the nodes
// made so far, which makes kind's Create fail at its next step, waits (bounded) for Create to
// return, and deletes again whatever it made meanwhile.
func (c *Cluster) abortCreate() error {
	c.mu.Lock()
	done, ours := c.createDone, c.ours
	c.mu.Unlock()
	if !ours || done == nil {
		return nil
	}
	if c.p.Keep {
		c.log.Warn("keeping the nodes of the interrupted create as asked", "delete", "stampede-cluster down --name "+c.p.Name)
		return nil
	}
	_ = deleteCluster(c.provider, c.p.Name) // kind may still be adding nodes: the last delete counts
	select {
	case <-done:
	case <-time.After(createAbortWait):
		c.log.Warn("kind's create did not return in time; deleting what it made so far", "waited", createAbortWait)
	}
	if err := deleteUntilGone(c.provider, c.p.Name); err != nil {
		return err
	}
	c.log.Info("deleted the nodes of the interrupted create")
	c.mu.Lock()
	c.ours = false // nothing left for Down to delete
	c.mu.Unlock()
	return removeOwner(c.p.StateDir, c.p.Name)
}

// failedCreate collects the logs of a cluster that did not come up, then deletes it unless
// Keep is set.
func (c *Cluster) failedCreate(ctx context.Context) error {
	if ctx.Err() != nil {
		// Interrupted: no time for logs.
		return c.abortCreate()
	}
	dir := c.p.ArtifactsDir
	var errs []error
	if dir == "" {
		d, err := os.MkdirTemp("", "stampede-kind-logs-")
		if err != nil {
			errs = append(errs, fmt.Errorf("logs directory: %w", err))
		}
		dir = d
	} else {
		dir = filepath.Join(dir, "kind-create-"+c.p.Name)
	}
	if dir != "" {
		if err := c.provider.CollectLogs(c.p.Name, dir); err != nil {
			errs = append(errs, fmt.Errorf("collect logs of failed create: %w", err))
		} else {
			c.log.Info("collected logs of failed create", "dir", dir)
		}
	}
	if c.p.Keep {
		c.log.Warn("keeping the failed cluster's nodes as asked", "delete", "stampede-cluster down --name "+c.p.Name)
	} else if err := c.delete(); err != nil {
		errs = append(errs, err)
	}
	c.mu.Lock()
	c.ours = c.p.Keep // Down has nothing left to delete
	c.mu.Unlock()
	return errors.Join(errs...)
}

func (c *Cluster) afterCreate(ctx context.Context, cfg *v1alpha4.Cluster) error {
	if err := c.connect(c.kubeconfig); err != nil {
		return err
	}
	if err := c.loadNodes(ctx); err != nil {
		return err
	}
	if err := c.loadHostPorts(ctx, cfg); err != nil {
		return err
	}
	return c.waitNodesReady(ctx, c.p.WaitForReady)
}

// reuse checks that the existing cluster is usable and connects to it; it returns why not.
func (c *Cluster) reuse(ctx context.Context) error {
	cfg, err := LoadConfig(c.p.ConfigPath)
	if err != nil {
		return err
	}
	if err := c.loadNodes(ctx); err != nil {
		return err
	}
	if len(c.nodes) != len(cfg.Nodes) {
		return fmt.Errorf("has %d nodes, the config wants %d", len(c.nodes), len(cfg.Nodes))
	}
	names := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		names[i] = n.Container
	}
	infos, err := inspectContainers(ctx, names...)
	if err != nil {
		return err
	}
	for _, ci := range infos {
		name := strings.TrimPrefix(ci.Name, "/")
		if !ci.State.Running || ci.State.Paused {
			return fmt.Errorf("node container %s is %s", name, ci.State.Status)
		}
		if c.p.NodeImage != "" && ci.Config.Image != c.p.NodeImage {
			return fmt.Errorf("node %s runs image %s, want %s", name, ci.Config.Image, c.p.NodeImage)
		}
	}
	if err := c.loadHostPorts(ctx, cfg); err != nil {
		return err
	}
	raw, err := c.provider.KubeConfig(c.p.Name, false)
	if err != nil {
		return fmt.Errorf("get kubeconfig: %w", err)
	}
	path, err := c.kubeconfigPath()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	if err := c.connect(path); err != nil {
		return err
	}
	// A healthy cluster answers at once; a short bound keeps a broken one from stalling the run.
	return c.waitNodesReady(ctx, 30*time.Second)
}
