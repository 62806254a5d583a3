package netpol

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Params configures a Controller.
type Params struct {
	// Client reads pods, namespaces and NetworkPolicies (list and watch).
	Client kubernetes.Interface
	// Node is the name of the node whose pods are enforced.
	Node string
	// ServiceSubnets are the cluster's Service IP ranges (Cluster.ServiceSubnets).
	ServiceSubnets []netip.Prefix
	// Nft applies the rulesets; NftCommand{} by default.
	Nft Nft
	// Logger gets a line per ruleset applied; slog.Default() by default.
	Logger *slog.Logger
	// Debounce is how long a change waits for the ones that follow it (a rollout is a burst of
	// pod updates), so that they make one ruleset; 100ms by default.
	Debounce time.Duration
	// Recheck is how often the table is checked to still be there; 10s by default.
	Recheck time.Duration
	// SyncTimeout bounds the wait for the informers' first listing; 2m by default.
	SyncTimeout time.Duration
}

// Controller keeps a node's ruleset in step with the cluster: on every change of a pod, a
// namespace or a NetworkPolicy it rebuilds the ruleset, and applies it if the text changed.
type Controller struct {
	p       Params
	applied chan struct{}
	last    string // the text in place
}

// NewController returns a Controller for p; Run starts it.
func NewController(p Params) *Controller {
	if p.Nft == nil {
		p.Nft = NftCommand{}
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Debounce == 0 {
		p.Debounce = 100 * time.Millisecond
	}
	if p.Recheck == 0 {
		p.Recheck = 10 * time.Second
	}
	if p.SyncTimeout == 0 {
		p.SyncTimeout = 2 * time.Minute
	}
	return &Controller{p: p, applied: make(chan struct{})}
}

// Applied is closed once the first ruleset is in place.
func (c *Controller) Applied() <-chan struct{} { return c.applied }

// syncKey is the work queue's only item: every change asks for the same thing, a new ruleset,
// so that the queue coalesces a burst of changes into one.
const syncKey = "ruleset"

// Run lists and watches pods, namespaces and NetworkPolicies and applies this node's ruleset
// until ctx ends. It returns an error if the informers do not sync within SyncTimeout or the
// first ruleset cannot be applied; later failures are logged and retried with backoff.
//
// It leaves the table in place when it returns: a node keeps enforcing the last ruleset while
// cnid restarts (failing closed), and a newer cnid replaces it atomically.
func (c *Controller) Run(ctx context.Context) error {
	// Cancelled before the factory's Shutdown, which waits for the informers to stop.
	ctx, cancel := context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(c.p.Client, 0, informers.WithTransform(dropManagedFields))
	defer factory.Shutdown()
	defer cancel()
	pods := factory.Core().V1().Pods()
	namespaces := factory.Core().V1().Namespaces()
	policies := factory.Networking().V1().NetworkPolicies()

	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "netpol"})
	defer queue.ShutDown()
	changed := func(any) { queue.AddAfter(syncKey, c.p.Debounce) }
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    changed,
		UpdateFunc: func(_, obj any) { changed(obj) },
		DeleteFunc: changed,
	}
	var synced []cache.InformerSynced
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), namespaces.Informer(), policies.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("watch for changes: %w", err)
		}
		synced = append(synced, inf.HasSynced)
	}
	factory.Start(ctx.Done())
	syncCtx, syncCancel := context.WithTimeout(ctx, c.p.SyncTimeout)
	defer syncCancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), synced...) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pods, namespaces and networkpolicies not listed within %s: can cnid list and watch them (RBAC)?", c.p.SyncTimeout)
	}

	build := func() (Ruleset, error) {
		cl := Cluster{ServiceSubnets: c.p.ServiceSubnets}
		var err error
		if cl.Pods, err = pods.Lister().List(labels.Everything()); err != nil {
			return Ruleset{}, fmt.Errorf("list pods: %w", err)
		}
		if cl.Namespaces, err = namespaces.Lister().List(labels.Everything()); err != nil {
			return Ruleset{}, fmt.Errorf("list namespaces: %w", err)
		}
		if cl.Policies, err = policies.Lister().List(labels.Everything()); err != nil {
			return Ruleset{}, fmt.Errorf("list networkpolicies: %w", err)
		}
		return Build(c.p.Node, cl), nil
	}
	if err := c.sync(ctx, build); err != nil {
		return fmt.Errorf("apply the first ruleset: %w", err)
	}
	close(c.applied)

	// A tool that flushes the ruleset must not leave the node unenforced until the next change.
	go func() {
		t := time.NewTicker(c.p.Recheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				queue.ShutDown()
				return
			case <-t.C:
				queue.Add(syncKey)
			}
		}
	}()
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return ctx.Err()
		}
		if err := c.sync(ctx, build); err != nil {
			c.p.Logger.Warn("applying network policy ruleset", "err", err, "retries", queue.NumRequeues(key))
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// sync applies the ruleset that build returns if it differs from the one in place, or if the
// table has gone.
func (c *Controller) sync(ctx context.Context, build func() (Ruleset, error)) error {
	rs, err := build()
	if err != nil {
		return err
	}
	if rs.Text == c.last {
		present, err := c.p.Nft.Present(ctx)
		if err == nil && present {
			return nil
		}
		c.p.Logger.Warn("network policy table missing: restoring it", "table", Table, "err", err)
	}
	if err := c.p.Nft.Apply(ctx, rs.Text); err != nil {
		// Whatever is in place now, the next sync applies the ruleset again.
		c.last = ""
		return err
	}
	c.last = rs.Text
	c.p.Logger.Info("network policy ruleset applied", "policies", rs.Policies, "localPods", rs.LocalPods, "ingressIsolated", rs.IngressIsolated,
		"egressIsolated", rs.EgressIsolated, "allowRules", rs.Allows, "bytes", len(rs.Text))
	for _, p := range rs.Problems {
		c.p.Logger.Warn("network policy left out", "problem", p)
	}
	return nil
}

// dropManagedFields keeps the informers' caches small: cnid reads labels, addresses, ports and
// phases, never who wrote them.
func dropManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.ObjectMetaAccessor); ok {
		m.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}
