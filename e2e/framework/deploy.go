package framework

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxyclient "github.com/Shopify/toxiproxy/v2/client"
	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stampede-e2e/stampede/e2e/chaos"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/ready"
	"github.com/stampede-e2e/stampede/e2e/traffic"
	"github.com/stampede-e2e/stampede/manifests"
	"github.com/stampede-e2e/stampede/manifests/components/toxiproxy"
)

// DeployParams shape a deployment of the target.
type DeployParams struct {
	// Strategy names the target's mode (modes[].name of its target file).
	Strategy string
	// Config holds extra settings merged over the mode's (manifests.Params.Config).
	Config map[string]string
	// Toxiproxy puts toxiproxy between the target and PostgreSQL: the target's database
	// endpoint (deploy.database.bundled.endpoint) becomes the toxiproxy Service.
	Toxiproxy bool
	// Image replaces the suite's image of the target for this deployment (the self-test's
	// build); empty keeps it.
	Image string
	// DurableDatabase says PostgreSQL's data must outlive its pod: the spec injects faults
	// (one of them may delete the pod). With -e2e.db-storage=auto it puts the data on a claim
	// (the cluster's default StorageClass); without it, on the pod's emptyDir, which needs no
	// provisioning (kind's local-path provisioner takes 3 to 4 s per claim, through a helper pod).
	DurableDatabase bool
	// Components are manifests' kustomize components layered onto the render, such as
	// manifests.ComponentPostgresAsyncCommit.
	Components []string
}

// ChaosTarget describes the suite's cluster to a fault before anything is deployed: enough for
// Available.
func (e *Env) ChaosTarget() *chaos.Target {
	return &chaos.Target{
		Client:         e.Client,
		Replicas:       e.Config.Replicas,
		Mode:           e.Config.Mode,
		Cluster:        e.Config.ClusterName,
		Nodes:          e.Nodes,
		ToxiproxyImage: e.Config.ToxiproxyImage,
		Logger:         e.Logger,

		// A fault's spec deploys with DurableDatabase: where its database will be.
		DatabaseOnEmptyDir: e.Config.databaseStorage(DeployParams{DurableDatabase: true}) == manifests.StorageEmptyDir,
	}
}

// StorageAuto is -e2e.db-storage's default outside existing mode: databaseStorage decides per
// deployment.
const StorageAuto = "auto"

// databaseStorage is where the database of a deployment with p keeps its data: the configured
// storage, or with StorageAuto a claim when p needs its data to outlive the pod, an emptyDir
// when it does not.
func (c *Config) databaseStorage(p DeployParams) string {
	switch {
	case c.DatabaseStorage != StorageAuto:
		return c.DatabaseStorage
	case p.DurableDatabase:
		return manifests.StoragePVC
	default:
		return manifests.StorageEmptyDir
	}
}

// SkipUnlessAvailable skips the running spec, with the fault's reason, when f cannot run in this
// cluster: a fault is never faked.
func (e *Env) SkipUnlessAvailable(f chaos.Fault) {
	GinkgoHelper()
	if err := f.Available(e.ChaosTarget()); err != nil {
		Skip(err.Error())
	}
}

// SkipUnlessRoundsReachService skips the running spec, before it deploys anything, when its
// chaos rounds would come from this host (-e2e.traffic=host) and nothing here reaches the token
// service. With -e2e.traffic=cluster they come from attacker pods inside the cluster.
func (e *Env) SkipUnlessRoundsReachService() {
	GinkgoHelper()
	if e.Config.Traffic != TrafficCluster && e.ServiceURL == "" {
		Skip(noHostRoute)
	}
}

const noHostRoute = "-e2e.traffic=host, and nothing here reaches the target: pass -e2e.service-url, or send the rounds from inside the cluster with -e2e.traffic=cluster"

// Deploy renders the manifests of p.Strategy into a fresh namespace, with p's extra settings and,
// when asked, toxiproxy in front of PostgreSQL (ready, its API reachable through a
// port-forward); applies them; waits until the database and every replica are ready and every
// ready pod answers through the Service from every node; and registers the cleanup
// (diagnostics first on failure, then deletion unless Keep asks to keep a failed spec's
// namespace). The namespace is the one of a database started ahead (startAhead) when that
// database is the one this render needs, and while this deployment starts, the next spec's
// database starts ahead; Deploy returns once it is ready and the pods of the namespaces deleted
// before are gone (drain), so that no start and no shutdown runs beside the spec's traffic.
func (e *Env) Deploy(ctx context.Context, p DeployParams) *Deployment {
	GinkgoHelper()
	t := e.Config.Target
	db := t.Deploy.Database.Bundled
	Expect(db).NotTo(BeNil(), "target %s: the suite deploys only the bundled PostgreSQL so far", t.Name)
	d, objs, early := e.prepare(ctx, p)
	e.startAhead(d, p)
	applied := d.apply(ctx, p, objs, early)
	if p.Toxiproxy {
		d.openToxiproxy(ctx)
	}
	rollout := d.waitRolledOut(ctx, applied)
	// What the checks start from is read while the Service is checked from every node (neither
	// waits for the other): the outcome counters, the pods and the database's port-forward. The
	// served check asks only the readiness path, which no counter the checks read counts.
	base := d.readBaselines(ctx)
	DeferCleanup(func() {
		if stop := base().dbStop; stop != nil {
			stop()
		}
	})
	d.waitServedEverywhere(ctx, applied, rollout)

	b := base()
	By("reading every replica's outcome counters: the metrics witness starts from here")
	if d.metricsBase = b.scrapes; b.scrapeErr != nil {
		d.metricsBase = d.scrapeRegistrationsEventually(ctx)
	}
	if d.podsBase = b.pods; b.podsErr != nil {
		d.podsBase = d.lookAtPodsEventually(ctx)
	}
	By("opening a port-forward to the database, the ground truth")
	Expect(b.dbErr).NotTo(HaveOccurred())
	d.DSN = databaseDSN(db, d.inputs.databasePassword, b.dbPort)
	e.awaitAhead(ctx)
	e.awaitDrained(ctx)
	return d
}

// prepare makes d and renders its objects: into the namespace of the database started ahead
// when its objects are this render's (manifests.SameDatabase), which it returns, else into a
// new namespace.
func (e *Env) prepare(ctx context.Context, p DeployParams) (*Deployment, []*unstructured.Unstructured, *ahead) {
	GinkgoHelper()
	if a := e.takeAhead(ctx); a != nil {
		d := e.newDeployment(p, a.inputs)
		objs := d.render(p)
		if dbObjs, err := manifests.DatabaseObjects(objs); err == nil && manifests.SameDatabase(a.objs, dbObjs) {
			return d, objs, a
		}
		e.Logger.Info("not using the database started ahead: this deployment needs another one", "namespace", a.inputs.namespace)
		e.dropAhead(ctx, a)
	}
	in, err := newDBInputs("stampede-" + p.Strategy + "-" + randomSuffix())
	Expect(err).NotTo(HaveOccurred())
	d := e.newDeployment(p, in)
	return d, d.render(p), nil
}

// newDeployment names the deployment's namespace and artifacts directory and makes what its
// render needs and its checks verify by: the mode's verifier settings, the tenants' API keys
// and the signing key. Nothing in the cluster is touched yet.
func (e *Env) newDeployment(p DeployParams, in dbInputs) *Deployment {
	GinkgoHelper()
	t := e.Config.Target
	d := &Deployment{
		Env:             e,
		Strategy:        p.Strategy,
		Namespace:       in.namespace,
		inputs:          in,
		DatabaseStorage: e.Config.databaseStorage(p),
		Dir:             filepath.Join(e.Config.Artifacts, specDirName()),
		Clock:           history.NewClock(time.Now()),
		Seqs:            history.NewSeqs(),
	}
	Expect(os.MkdirAll(d.Dir, 0o755)).To(Succeed())
	var err error
	d.verifier, err = verifierOf(t, p.Strategy, p.Config)
	Expect(err).NotTo(HaveOccurred())
	d.APIKeys, err = NewAPIKeys(keyFormat(t), traffic.TenantIDs(traffic.MaxTenants))
	Expect(err).NotTo(HaveOccurred())
	return d
}

// render renders the objects of d's namespace, with d's inputs, toxiproxy's among them when p
// asks for it.
func (d *Deployment) render(p DeployParams) []*unstructured.Unstructured {
	GinkgoHelper()
	e, t := d.Env, d.Env.Config.Target
	secrets, key, err := generatedSecrets(t, d.APIKeys)
	Expect(err).NotTo(HaveOccurred())
	d.Key = key
	params := manifests.Params{
		Target:          t,
		Mode:            p.Strategy,
		Namespace:       d.Namespace,
		Images:          map[string]string{e.Config.imageName(): firstNonEmpty(p.Image, e.Config.Image)},
		PostgresImage:   e.Config.PostgresImage,
		Replicas:        e.Config.Replicas,
		Secrets:         secrets,
		Config:          p.Config,
		Components:      p.Components,
		Kustomize:       e.Config.Manifests,
		NodePort:        e.nodePort(),
		DatabaseStorage: d.DatabaseStorage,
		DNS:             must(e.Config.dnsEgress()),
	}
	if p.Toxiproxy {
		Expect(e.Config.ToxiproxyImage).NotTo(BeEmpty(), "toxiproxy image")
		params.DatabaseHost, params.DatabasePort = toxiproxy.Name, toxiproxy.ProxyPort
	}
	params.PostgresPassword, params.DatabasePassword = d.inputs.postgresPassword, d.inputs.databasePassword
	params.DatabaseTLS = d.inputs.tls
	objs, err := manifests.Render(params)
	Expect(err).NotTo(HaveOccurred(), "render manifests")
	d.pods, d.podPort, err = manifests.TargetPods(objs, t)
	Expect(err).NotTo(HaveOccurred(), "the target's pods")
	if p.Toxiproxy {
		objs = d.withToxiproxy(objs)
	}
	return objs
}

// withToxiproxy inserts toxiproxy's objects into objs, its ingress open to the target's pods.
func (d *Deployment) withToxiproxy(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	GinkgoHelper()
	proxy, err := toxiproxy.Render(d.Namespace, d.Env.Config.ToxiproxyImage)
	Expect(err).NotTo(HaveOccurred(), "render toxiproxy")
	// Its ingress admits the target's pods: the Service's selector, as PostgreSQL's does.
	pods, err := labels.ConvertSelectorToLabelsMap(d.pods)
	Expect(err).NotTo(HaveOccurred(), "the target's pod selector %q", d.pods)
	manifests.FillTargetPeers(proxy, pods)
	// After the Namespace, before the workloads: the service's first connection goes to it.
	return append(objs[:1:1], append(proxy, objs[1:]...)...)
}

// apply creates d's namespace, or takes the one of early (a database started ahead), and
// applies objs into it, with the cleanups registered before the namespace exists (deletion,
// then the failure dump that runs first), and returns when the apply began: the rollout is
// timed from it.
func (d *Deployment) apply(ctx context.Context, p DeployParams, objs []*unstructured.Unstructured, early *ahead) (applied time.Time) {
	GinkgoHelper()
	e := d.Env
	how := ", database on " + map[string]string{manifests.StoragePVC: "a claim", manifests.StorageEmptyDir: "an emptyDir"}[d.DatabaseStorage]
	if early != nil {
		how += fmt.Sprintf(", started ahead %s before", time.Since(early.started).Round(100*time.Millisecond))
	}
	if p.Toxiproxy {
		how += ", its traffic through toxiproxy"
	}
	if len(p.Components) > 0 {
		how += ", with " + strings.Join(p.Components, ", ")
	}
	DeferCleanup(d.delete, NodeTimeout(2*time.Minute))
	DeferCleanup(d.dumpOnFailure, NodeTimeout(2*time.Minute))
	if early != nil {
		d.namespaceUID = early.uid // d's now: its cleanup deletes it, whatever fails next
	}
	e.labelNamespaces(objs)
	ns, objs, err := splitNamespace(objs)
	Expect(err).NotTo(HaveOccurred())
	// A namespace kept by an earlier failed spec of this run must not hold the NodePort this one
	// needs.
	Expect(e.releaseKeptNodePorts(ctx)).To(Succeed())

	By(fmt.Sprintf("deploying %s in mode %s into %s%s", e.Config.Target.Name, p.Strategy, d.Namespace, how))
	applied = time.Now()
	if early != nil {
		// Its labels were the render's that started it: the mode's is this one's.
		Expect(relabelNamespace(ctx, e.Client, ns)).To(Succeed())
	} else {
		d.namespaceUID, err = e.createRunNamespace(ctx, ns)
		Expect(err).NotTo(HaveOccurred())
	}
	d.readable = true
	Expect(e.Applier.Apply(ctx, objs)).To(Succeed())
	return applied
}

// openToxiproxy waits for toxiproxy and reaches its API through a port-forward: the faults
// that cut or slow the database drive it.
func (d *Deployment) openToxiproxy(ctx context.Context) {
	GinkgoHelper()
	e := d.Env
	d.waitReady(ctx, toxiproxy.Name, manifests.Selector(toxiproxy.Name), 1)
	By("opening a port-forward to toxiproxy's API")
	port, stop, err := PortForward(ctx, e.RestConfig, e.Client, d.Namespace, manifests.Selector(toxiproxy.Name), toxiproxy.APIPort)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(stop)
	d.Toxiproxy = toxiproxyclient.NewClient(fmt.Sprintf("127.0.0.1:%d", port))
	Eventually(ctx, func() error {
		_, err := d.Toxiproxy.Proxy(toxiproxy.ProxyName)
		return err
	}).WithTimeout(30*time.Second).WithPolling(time.Second).Should(Succeed(), "toxiproxy's proxy %s", toxiproxy.ProxyName)
}

// waitRolledOut waits until the database and every replica are ready, and the Service has an
// endpoint for each, and returns how long the rollout took since applied (the apply began).
func (d *Deployment) waitRolledOut(ctx context.Context, applied time.Time) time.Duration {
	GinkgoHelper()
	d.waitDatabase(ctx)
	d.waitWorkload(ctx, int32(d.Env.Config.Replicas))
	rollout := time.Since(applied)
	d.waitEndpoints(ctx, d.Env.Config.Replicas)
	return rollout
}

// waitServedEverywhere waits until every ready pod answers through the Service from every node,
// and logs how long the rollout and that took since applied.
func (d *Deployment) waitServedEverywhere(ctx context.Context, applied time.Time, rollout time.Duration) {
	GinkgoHelper()
	By("waiting until every ready pod answers through the Service from every node")
	d.WaitServedEverywhere(ctx)
	// One line per deployment that a run's log can be grepped for: issue 8's rollouts took 2 min.
	d.Env.Logger.Info("deployment serving", "namespace", d.Namespace, "strategy", d.Strategy,
		"rollout", rollout.Round(time.Millisecond), "serving", time.Since(applied).Round(time.Millisecond))
}

// baselines are what a deployment's checks start from, read once (readBaselines): a failed read
// is read again, the Gomega way, by Deploy.
type baselines struct {
	scrapes   PodScrapes
	scrapeErr error
	pods      PodLook
	podsErr   error
	dbPort    int
	dbStop    func()
	dbErr     error
}

// readBaselines reads the baselines in the background and returns the function that waits for
// them (as often as asked: the spec's cleanup asks too, to stop the port-forward).
func (d *Deployment) readBaselines(ctx context.Context) func() baselines {
	e := d.Env
	done := make(chan baselines, 1)
	go func() {
		var b baselines
		b.scrapes, b.scrapeErr = d.ScrapeRegistrations(ctx)
		b.pods, b.podsErr = lookAtPods(ctx, e.Client, d.Namespace, d.pods)
		b.dbPort, b.dbStop, b.dbErr = PortForward(ctx, e.RestConfig, e.Client, d.Namespace, manifests.Selector(manifests.PostgresName), manifests.PostgresPort)
		done <- b
	}()
	return sync.OnceValue(func() baselines { return <-done })
}

// Target is what a fault acts on: this deployment in the suite's cluster.
func (d *Deployment) Target() *chaos.Target {
	t := d.Env.ChaosTarget()
	t.Namespace = d.Namespace
	w := d.Env.Config.workload()
	t.Workload, t.Container, t.Pods = w.Name, w.Container, d.pods
	t.Toxiproxy = d.Toxiproxy
	t.DatabaseOnEmptyDir = d.DatabaseStorage == manifests.StorageEmptyDir
	return t
}

// noPulls is check, stopped at the first pod of selector in namespace that waits for an image
// it could not pull, when this cluster's nodes were given the images (Env.LoadImages): a missing
// image made every spec wait out its 4 minutes with a reason that did not name it.
func (e *Env) noPulls(namespace, selector string, check ready.Check) ready.Check {
	if e.LoadImages == nil {
		return check // a cluster that pulls: a failed pull may be a registry's moment
	}
	return ready.NoPulls(e.Client, namespace, selector, check)
}

// noPulls is Env.noPulls in d's namespace.
func (d *Deployment) noPulls(selector string, check ready.Check) ready.Check {
	return d.Env.noPulls(d.Namespace, selector, check)
}

// createRunNamespace creates ns for this run (createNamespace) and binds the run role in it, if
// any. The UID is returned once the namespace exists, even when the binding fails: its cleanup
// needs it.
func (e *Env) createRunNamespace(ctx context.Context, ns *corev1.Namespace) (types.UID, error) {
	uid, err := createNamespace(ctx, e.Client, ns, e.Config.RunID)
	if err != nil || e.Config.RunRole == "" {
		return uid, err
	}
	return uid, bindRunRole(ctx, e.Client, ns.Name, e.Config.RunRole)
}

// databaseTimeout bounds the wait for a database, a deployment's or one started ahead.
const databaseTimeout = 4 * time.Minute

// waitForDatabase waits until the PostgreSQL StatefulSet in namespace has its one replica ready.
func (e *Env) waitForDatabase(ctx context.Context, namespace string) error {
	return ready.Wait(ctx, "database ready", rolloutPoll, databaseTimeout, e.noPulls(namespace, manifests.Selector(manifests.PostgresName),
		ready.StatefulSetRolledOut(e.Client, namespace, manifests.PostgresName, 1)))
}

// rolloutPoll is how often a deployment's waits look: every spec waits for its database, its
// replicas and their endpoints one after another, and each wait ends on average half a poll
// after what it waits for (a second's poll cost every spec 1.5 to 2 s; a look is a Get or a List
// or two).
const rolloutPoll = 200 * time.Millisecond

// waitDatabase waits until the PostgreSQL StatefulSet's one replica is ready (ready.StatefulSetReady).
func (d *Deployment) waitDatabase(ctx context.Context) {
	GinkgoHelper()
	start := time.Now()
	Expect(d.Env.waitForDatabase(ctx, d.Namespace)).To(Succeed())
	d.Env.Logger.Info("database ready", "namespace", d.Namespace, "took", time.Since(start).Round(time.Millisecond))
}

// waitWorkload waits until the target's workload has rolled out want ready replicas.
func (d *Deployment) waitWorkload(ctx context.Context, want int32) {
	GinkgoHelper()
	w := d.Env.Config.workload()
	if w.Kind == "Deployment" {
		d.waitReady(ctx, w.Name, d.pods, want)
		return
	}
	start := time.Now()
	Expect(ready.Wait(ctx, "rollout of "+w.Name, rolloutPoll, 4*time.Minute, d.noPulls(d.pods,
		ready.StatefulSetRolledOut(d.Env.Client, d.Namespace, w.Name, want)))).To(Succeed())
	d.Env.Logger.Info("rolled out", w.Kind, w.Name, "namespace", d.Namespace, "took", time.Since(start).Round(time.Millisecond))
}

// waitReady waits until the Deployment name, whose pods selector selects, has rolled out want
// ready replicas (ready.Rollout: updated, ready, available, and no older pod left).
func (d *Deployment) waitReady(ctx context.Context, name, selector string, want int32) {
	GinkgoHelper()
	start := time.Now()
	Expect(ready.Wait(ctx, "rollout of "+name, rolloutPoll, 4*time.Minute, d.noPulls(selector,
		ready.DeploymentRolledOut(d.Env.Client, d.Namespace, name, selector, want)))).To(Succeed())
	d.Env.Logger.Info("rolled out", "deployment", name, "namespace", d.Namespace, "took", time.Since(start).Round(time.Millisecond))
}

// waitEndpoints waits until the target's Service routes to want ready pods.
func (d *Deployment) waitEndpoints(ctx context.Context, want int) {
	GinkgoHelper()
	Eventually(ctx, func(g Gomega) {
		ready, err := d.ReadyEndpoints(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ready).To(HaveLen(want))
	}).WithTimeout(time.Minute).WithPolling(rolloutPoll).Should(Succeed())
}

// ReadyEndpoints lists the pods the target's Service routes to, as its EndpointSlices say
// (readyPodsFromSlices): the same list the coverage guard compares the serving pods with.
func (d *Deployment) ReadyEndpoints(ctx context.Context) ([]string, error) {
	return readyPodsFromSlices(ctx, d.Env.Client, d.Namespace, d.Env.Config.serviceName())
}

// reforwardDatabase opens a new port-forward to the database and points DSN at it.
func (d *Deployment) reforwardDatabase(ctx context.Context) error {
	port, stop, err := PortForward(ctx, d.Env.RestConfig, d.Env.Client, d.Namespace, manifests.Selector(manifests.PostgresName), manifests.PostgresPort)
	if err != nil {
		return fmt.Errorf("port-forward to the database again: %w", err)
	}
	DeferCleanup(stop)
	u, err := url.Parse(d.DSN)
	if err != nil {
		stop()
		return fmt.Errorf("parse DSN: %w", err)
	}
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	d.DSN = u.String()
	return nil
}
