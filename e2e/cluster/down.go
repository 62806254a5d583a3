package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	kindcluster "sigs.k8s.io/kind/pkg/cluster"
)

// Down ends the use of the cluster, whatever Start did or is still doing: it resumes paused
// nodes; kind mode deletes the cluster this run created (unless Keep); reuse mode keeps it;
// existing mode leaves it alone. It removes a temporary kubeconfig and releases the name's lock.
func (c *Cluster) Down(ctx context.Context) error {
	defer c.release()
	if c.p.Mode == ModeExisting {
		return nil
	}
	c.mu.Lock()
	ours, done := c.ours, c.createDone
	c.mu.Unlock()
	creating := false
	if done != nil {
		select {
		case <-done:
		default:
			creating = true
		}
	}
	switch downAction(c.p.Mode, ours, c.reused, c.p.Keep, creating) {
	case downAbortCreate:
		// Start was interrupted and has not returned (Ginkgo gave up waiting for it).
		return c.abortCreate()
	case downDelete:
		c.unpauseNodes(ctx)
		return c.delete()
	case downKeep:
		c.unpauseNodes(ctx)
		c.log.Info("keeping cluster", "kubeconfig", c.p.Kubeconfig, "delete", "stampede-cluster down --name "+c.p.Name)
	}
	return nil
}

type downKind int

const (
	downNothing downKind = iota
	downAbortCreate
	downDelete
	downKeep
)

// downAction decides what Down does: cut short a create still running; delete a cluster this
// run created unless it is kept; keep (with its nodes unpaused) a kept or reused one; and leave
// alone a cluster this run neither created nor used, such as the one whose name kind mode
// refused.
func downAction(mode Mode, ours, reused, keep, creating bool) downKind {
	switch {
	case mode == ModeExisting:
		return downNothing
	case creating:
		return downAbortCreate
	case ours && mode == ModeKind && !keep:
		return downDelete
	case ours || reused:
		return downKeep
	}
	return downNothing
}

// release gives up what the Cluster holds on this host: the temporary kubeconfig and the lock.
func (c *Cluster) release() {
	c.removeTempKubeconfig()
	c.lock.Release()
}

// unpauseNodes resumes the node containers a chaos fault (or an interrupted run) left paused.
func (c *Cluster) unpauseNodes(ctx context.Context) {
	cs, err := listKindContainers(context.WithoutCancel(ctx))
	if err != nil {
		c.log.Warn("listing node containers to unpause", "err", err)
		return
	}
	for _, n := range cs {
		if n.Cluster != c.p.Name || n.State != "paused" {
			continue
		}
		if _, err := Docker(context.WithoutCancel(ctx), "unpause", n.Name); err != nil {
			c.log.Warn("unpausing node", "node", n.Name, "err", err)
			continue
		}
		c.log.Warn("unpaused a node left paused", "node", n.Name)
	}
}

func (c *Cluster) delete() error {
	start := time.Now()
	if err := deleteUntilGone(c.provider, c.p.Name); err != nil {
		return err
	}
	c.log.Info("cluster deleted", "took", since(start))
	return removeOwner(c.p.StateDir, c.p.Name)
}

// deleteUntilGone deletes the cluster's nodes until none is left: nodes that kind was still
// creating when a delete listed them are caught by the next one.
func deleteUntilGone(p *kindcluster.Provider, name string) error {
	var errs []error
	for range 3 {
		err := deleteCluster(p, name)
		ns, lerr := p.ListNodes(name)
		if lerr == nil && len(ns) == 0 {
			return nil
		}
		errs = append(errs, err, lerr)
		time.Sleep(2 * time.Second) // pacing retries on purpose: docker run calls may still land
	}
	return fmt.Errorf("delete cluster %s: nodes remain: %w", name, errors.Join(errs...))
}

// deleteCluster deletes a kind cluster, pointing kind at a throwaway kubeconfig so that it never
// edits the user's own.
func deleteCluster(p *kindcluster.Provider, name string) error {
	dir, err := os.MkdirTemp("", "stampede-delete-")
	if err != nil {
		return fmt.Errorf("delete cluster %s: %w", name, err)
	}
	defer os.RemoveAll(dir)
	if err := p.Delete(name, filepath.Join(dir, "kubeconfig")); err != nil {
		return fmt.Errorf("delete cluster %s: %w", name, err)
	}
	return nil
}

// Delete deletes the kind cluster called name and its node containers, running, paused or
// stopped, whoever created it (the user named it: `stampede-cluster down --name`), and its
// owner record. It takes the name's lock first, so a cluster in use by a run is refused. It is
// not an error when there is no such cluster.
func Delete(ctx context.Context, name string, log *slog.Logger) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete cluster %s: %w", name, err)
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("cluster", name)
	stateDir := StateDir()
	l, err := AcquireLock(stateDir, name, "down")
	if err != nil {
		return err
	}
	defer l.Release()
	p := newProvider(log)
	exists, err := clusterExists(p, name)
	if err != nil {
		return err
	}
	if !exists {
		log.Info("no such cluster: nothing to delete")
		return removeOwner(stateDir, name)
	}
	c := &Cluster{p: Params{Name: name}, log: log}
	c.unpauseNodes(ctx)
	start := time.Now()
	if err := deleteUntilGone(p, name); err != nil {
		return err
	}
	log.Info("cluster deleted", "took", since(start))
	return removeOwner(stateDir, name)
}
