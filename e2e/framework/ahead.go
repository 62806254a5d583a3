package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega" //nolint:revive
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/stampede-e2e/stampede/e2e/ready"
	"github.com/stampede-e2e/stampede/manifests"
)

// A database started ahead. Every spec deploys a fresh PostgreSQL, and its start (the pod, then
// initdb) is most of a deployment's wait: 4 to 7 s of a registration spec's 12 to 15 on 2 cores.
// So while one spec deploys, the next spec's database starts in a namespace of its own: its
// StatefulSet, Service and the Secrets its pod reads (manifests.DatabaseObjects), nothing of the
// target. The next Deploy takes that namespace when its own render has the same database
// objects (manifests.SameDatabase: the same storage, components, image and secrets; the mode
// only labels them), and applies the rest into it; otherwise it deletes it and starts afresh.
// The database is as new as one started by the spec itself: nothing but its own startup has
// touched it. Deploy returns only once the next database is ready, so the spec's traffic never
// runs beside a database's start. Only in the suite's own clusters (kind and reuse modes), and
// -e2e.db-ahead=false turns it off.
type ahead struct {
	inputs dbInputs
	// objs are the database objects applied, as rendered.
	objs    []*unstructured.Unstructured
	started time.Time
	cancel  context.CancelFunc
	// done is closed when the database is ready, or err says why it is not; uid and ready are
	// set before.
	done  chan struct{}
	uid   k8stypes.UID
	ready time.Duration
	err   error
}

// dbInputs are what a render takes besides the spec's parameters, made once per namespace: the
// namespace, PostgreSQL's passwords and its TLS certificate. A database started ahead keeps
// them for the deployment that takes it.
type dbInputs struct {
	namespace        string
	postgresPassword string
	databasePassword string
	tls              manifests.DatabaseTLS
}

func newDBInputs(namespace string) (dbInputs, error) {
	tls, err := manifests.NewDatabaseTLS(namespace)
	return dbInputs{
		namespace:        namespace,
		postgresPassword: randomSuffix() + randomSuffix(),
		databasePassword: randomSuffix() + randomSuffix(),
		tls:              tls,
	}, err
}

// specsToStart counts the specs of the run that have not started yet (CountSpecs, SpecStarting):
// a database is started ahead only when one follows.
var specsToStart atomic.Int64

// CountSpecs records how many specs the run will run; call it from ReportBeforeSuite.
func CountSpecs(r Report) { specsToStart.Store(int64(r.PreRunStats.SpecsThatWillRun)) }

// SpecStarting counts a spec that starts; call it from ReportBeforeEach, which sees the specs
// that will not run too.
func SpecStarting(r SpecReport) {
	if r.LeafNodeType == types.NodeTypeIt && !r.State.Is(types.SpecStateSkipped) {
		specsToStart.Add(-1)
	}
}

// startAhead starts the database of the next deployment, rendered as d's (p, d's storage) in a
// namespace of its own, unless one is started already, no spec follows, or the config says no.
func (e *Env) startAhead(d *Deployment, p DeployParams) {
	GinkgoHelper()
	if !e.Config.aheadOn() || specsToStart.Load() <= 0 {
		return
	}
	e.aheadMu.Lock()
	defer e.aheadMu.Unlock()
	if e.next != nil {
		return
	}
	in, err := newDBInputs("stampede-ahead-" + randomSuffix())
	Expect(err).NotTo(HaveOccurred())
	r := &Deployment{Env: e, Strategy: p.Strategy, Namespace: in.namespace, DatabaseStorage: d.DatabaseStorage, inputs: in, APIKeys: d.APIKeys}
	objs := r.render(DeployParams{Strategy: p.Strategy, Config: p.Config, Image: p.Image, Components: p.Components})
	e.labelNamespaces(objs)
	ns, rest, err := splitNamespace(objs)
	Expect(err).NotTo(HaveOccurred())
	dbObjs, err := manifests.DatabaseObjects(rest)
	Expect(err).NotTo(HaveOccurred(), "the database's objects")
	ctx, cancel := context.WithTimeout(context.Background(), databaseTimeout)
	a := &ahead{inputs: in, objs: dbObjs, started: time.Now(), cancel: cancel, done: make(chan struct{})}
	e.next = a
	e.Logger.Info("starting the next deployment's database ahead", "namespace", in.namespace, "storage", d.DatabaseStorage)
	go func() {
		defer close(a.done)
		a.err = e.runAhead(ctx, a, ns)
		a.ready = time.Since(a.started)
	}()
}

// runAhead creates a's namespace, applies its database objects and waits until PostgreSQL is
// ready (waitForDatabase, as a deployment waits for its own).
func (e *Env) runAhead(ctx context.Context, a *ahead, ns *corev1.Namespace) error {
	var err error
	if a.uid, err = e.createRunNamespace(ctx, ns); err != nil {
		return err
	}
	if err := e.Applier.Apply(ctx, a.objs); err != nil {
		return err
	}
	return e.waitForDatabase(ctx, ns.Name)
}

// drain deletes the pods of namespace, which this run deleted a moment ago, and remembers it
// until they are gone (awaitDrained). The namespace controller reaches them seconds later, when
// the next spec may be sending its traffic; deleted now, they shut down while the next spec
// deploys, and no pod can replace them in a terminating namespace. In the suite's own clusters
// only: a team's cluster keeps its own pace, and the run role need not grant this.
func (e *Env) drain(ctx context.Context, namespace string) {
	if e.Config.Mode == "existing" {
		return
	}
	if err := e.Client.CoreV1().Pods(namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
		e.Logger.Warn("deleting the pods of a deleted namespace", "namespace", namespace, "err", err)
		return
	}
	e.aheadMu.Lock()
	e.draining = append(e.draining, namespace)
	e.aheadMu.Unlock()
}

// drainTimeout bounds the wait for a deleted namespace's pods: past it the spec goes on, saying so.
const drainTimeout = time.Minute

// awaitDrained waits until no pod is left in the namespaces drain deleted, so that no shutdown
// runs beside the traffic that follows.
func (e *Env) awaitDrained(ctx context.Context) {
	GinkgoHelper()
	e.aheadMu.Lock()
	namespaces := e.draining
	e.draining = nil
	e.aheadMu.Unlock()
	said := false
	for _, ns := range namespaces {
		start := time.Now()
		err := ready.Wait(ctx, "pods of "+ns+" gone", rolloutPoll, drainTimeout, func(ctx context.Context) (bool, string, error) {
			pods, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
			switch {
			case apierrors.IsNotFound(err):
				return true, "", nil
			case err != nil:
				return false, "", err
			case len(pods.Items) == 0:
				return true, "", nil
			}
			if !said {
				By("waiting until the pods of the namespaces deleted before are gone, before any traffic")
				said = true
			}
			return false, "pod " + pods.Items[0].Name + " still there", nil
		})
		if err != nil {
			e.Logger.Warn("a deleted namespace's pods are still shutting down: going on", "namespace", ns, "err", err)
			continue
		}
		if d := time.Since(start); d > rolloutPoll {
			e.Logger.Info("deleted namespace drained", "namespace", ns, "waited", d.Round(time.Millisecond))
		}
	}
}

// awaitAhead waits until the database started ahead is ready, so that no start runs beside the
// traffic that follows. One that failed is deleted: the next deployment starts its own, and
// meets whatever stopped this one itself, in its own spec.
func (e *Env) awaitAhead(ctx context.Context) {
	GinkgoHelper()
	e.aheadMu.Lock()
	a := e.next
	e.aheadMu.Unlock()
	if a == nil {
		return
	}
	select {
	case <-a.done:
	default:
		By("waiting for the next spec's database, started ahead, before any traffic")
		select {
		case <-a.done:
		case <-ctx.Done():
			return
		}
	}
	if a.err != nil {
		e.Logger.Warn("the database started ahead did not start: the next deployment starts its own", "namespace", a.inputs.namespace, "err", a.err)
		e.aheadMu.Lock()
		if e.next == a {
			e.next = nil
		}
		e.aheadMu.Unlock()
		e.dropAhead(ctx, a)
		return
	}
	e.Logger.Info("database started ahead is ready", "namespace", a.inputs.namespace, "took", a.ready.Round(time.Millisecond))
}

// takeAhead hands over the database started ahead, once ready, and forgets it; nil when there is
// none or it did not start (then it is deleted).
func (e *Env) takeAhead(ctx context.Context) *ahead {
	e.aheadMu.Lock()
	a := e.next
	e.next = nil
	e.aheadMu.Unlock()
	if a == nil {
		return nil
	}
	select {
	case <-a.done:
	case <-ctx.Done():
		e.dropAhead(context.WithoutCancel(ctx), a)
		return nil
	}
	if a.err != nil {
		e.Logger.Warn("the database started ahead did not start: starting another", "namespace", a.inputs.namespace, "err", a.err)
		e.dropAhead(ctx, a)
		return nil
	}
	return a
}

// dropAhead stops a's start and deletes its namespace, if it was made.
func (e *Env) dropAhead(ctx context.Context, a *ahead) {
	a.cancel()
	<-a.done
	if a.uid == "" {
		return
	}
	if err := deleteOwnNamespace(ctx, e.Client, a.inputs.namespace, a.uid, e.Config.RunID); err != nil {
		e.Logger.Warn("deleting the namespace of a database started ahead", "err", err)
		return
	}
	e.drain(ctx, a.inputs.namespace)
}

// DropAhead deletes the database started ahead that no deployment took: the suite's cleanup
// calls it when the specs are done.
func (e *Env) DropAhead(ctx context.Context) {
	e.aheadMu.Lock()
	a := e.next
	e.next = nil
	e.aheadMu.Unlock()
	if a != nil {
		e.dropAhead(ctx, a)
	}
}

// relabelNamespace sets the labels of the rendered ns on the namespace of that name (a merge
// patch: labels it lacks are kept).
func relabelNamespace(ctx context.Context, cs kubernetes.Interface, ns *corev1.Namespace) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": ns.Labels}})
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns.Name, k8stypes.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("label namespace %s: %w", ns.Name, err)
	}
	return nil
}

// aheadOn says whether deployments start the next one's database ahead (Config.DatabaseAhead).
func (c *Config) aheadOn() bool { return c.DatabaseAhead && c.Mode != "existing" }
