// Package framework is the glue between stampede's specs and the cluster: it deploys the token
// service, drives traffic, reads the database and judges the outcome. It is the only package of
// the suite that asserts (GinkgoHelper, Eventually); specs tell the story and call it.
package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	toxiproxyclient "github.com/Shopify/toxiproxy/v2/client"
	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified.
	. "github.com/onsi/gomega"    //nolint:revive

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/attack/attackjob"
	"github.com/stampede-e2e/stampede/e2e/cluster"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/manifests"
)

// Env is the cluster a suite runs against and what it deploys there.
type Env struct {
	Config     Config
	RestConfig *rest.Config
	Client     kubernetes.Interface
	Applier    *Applier
	// ServiceURL reaches the target's NodePort from this host; empty in existing mode
	// when the bursts come from inside the cluster and nothing here reaches the Service.
	ServiceURL string
	Logger     *slog.Logger
	// Nodes are the cluster's nodes, with their kind node containers (none in existing mode):
	// what the node faults act on.
	Nodes []cluster.Node
	// ExportClusterLogs writes the cluster's logs (kind's) into a directory; nil where unsupported.
	ExportClusterLogs func(ctx context.Context, dir string) error
	// LoadImages loads local images into every node; nil where the cluster pulls its images
	// (existing mode).
	LoadImages func(ctx context.Context, images ...string) error

	// aheadMu guards next, the database started ahead for the next deployment, if any, and
	// draining, the namespaces deleted whose pods may still be shutting down (drain).
	aheadMu  sync.Mutex
	next     *ahead
	draining []string
}

// Deployment is one spec's target: its own namespace, database and generated secrets.
type Deployment struct {
	Env       *Env
	Strategy  string
	Namespace string
	// DatabaseStorage is where its PostgreSQL keeps its data (Config.databaseStorage).
	DatabaseStorage string
	Key             SigningKey
	// DSN reaches the spec's PostgreSQL from this host through a port-forward.
	DSN string
	// Dir is the spec's artifacts directory.
	Dir string
	// Clock and Seqs are the spec's one time base and request numbering: every traffic run of
	// the spec records onto them, so that its histories line up as they are.
	Clock *history.Clock
	Seqs  *history.Seqs
	// Toxiproxy drives the toxiproxy in front of PostgreSQL; nil without one (DeployParams).
	Toxiproxy *toxiproxyclient.Client
	// APIKeys are the tenants' keys this deployment's service accepts.
	APIKeys APIKeys
	// readable says the suite may read the namespace: it exists and the run role, if any, is
	// bound in it. Before, a failed spec's dump would only add refusals that follow from the
	// first.
	readable bool
	// namespaceUID is the UID of Namespace as this run created it; empty until then. Only that
	// namespace, with the run's labels, is ever deleted.
	namespaceUID types.UID
	// inputs are the namespace and database secrets its render was made with.
	inputs dbInputs
	// metricsBase are the pods' outcome counters when the last judged traffic ended (or the
	// deployment became ready): the next judgement compares what they counted since.
	metricsBase PodScrapes
	// planned are the customers every judged run of the spec planned so far, on this
	// deployment's database: the next judgement's check.Params.Earlier.
	planned []history.Customer
	// podsBase is the target's pods as the last judged traffic left them (or the
	// deployment became ready): the next judgement reports their restarts and replacements since.
	podsBase PodLook

	// jobs sends the spec's runs from attacker Jobs (-e2e.traffic=cluster), numbering them.
	jobs *attackjob.JobSender
	// attackerClocks bounds how far the clocks of the attacker pods that timed the spec's
	// traffic may disagree once corrected (clockDisagreement), the largest of its runs: two
	// pods' call and return times are comparable only up to it.
	attackerClocks time.Duration
	// rounds sends the spec's chaos rounds from its round servers (-e2e.traffic=cluster),
	// once started.
	rounds attack.Sender

	// pods selects the target's pods (its Service's selector), podPort the container port its
	// Service sends to: read from the render (manifests.TargetPods).
	pods    string
	podPort int
	// verifier are the credential verifier's settings as this deployment configured them.
	verifier verifierSettings
}

func (d *Deployment) dumpOnFailure(ctx SpecContext) {
	if !CurrentSpecReport().Failed() {
		return
	}
	if !d.readable {
		GinkgoWriter.Printf("not dumping namespace %s: the spec failed before it could read it\n", d.Namespace)
		return
	}
	if err := DumpNamespace(ctx, d.Env.Client, d.Namespace, d.Dir); err != nil {
		d.Env.Logger.Warn("dumping namespace", "err", err)
	}
	if d.Env.ExportClusterLogs != nil {
		if err := d.Env.ExportClusterLogs(ctx, filepath.Join(d.Dir, "cluster-logs")); err != nil {
			d.Env.Logger.Warn("exporting cluster logs", "err", err)
		}
	}
	GinkgoWriter.Printf("artifacts of the failed spec: %s\n", d.Dir)
}

// delete removes the namespace, if this run created it (deleteOwnNamespace checks its UID and
// labels); the Service first, and synchronously, where it holds the NodePort the next spec's
// Service needs. A failed spec's namespace that Keep keeps gives its NodePort up instead: its
// Service becomes ClusterIP.
func (d *Deployment) delete(ctx SpecContext) {
	if d.namespaceUID == "" {
		return // never created: whatever holds the name is not this run's
	}
	if keepNamespace(CurrentSpecReport().Failed(), d.Env.Config.Keep) {
		GinkgoWriter.Printf("keeping namespace %s (keep asked); its Service gives up NodePort %d\n", d.Namespace, manifests.NodePort)
		if err := ReleaseNodePort(ctx, d.Env.Client, d.Namespace, d.Env.Config.serviceName()); err != nil {
			d.Env.Logger.Warn("releasing the kept service's NodePort", "err", err)
		}
		return
	}
	if d.Env.nodePort() {
		svcs := d.Env.Client.CoreV1().Services(d.Namespace)
		if err := svcs.Delete(ctx, d.Env.Config.serviceName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			d.Env.Logger.Warn("deleting service", "err", err)
		}
		Eventually(ctx, func() bool {
			_, err := svcs.Get(ctx, d.Env.Config.serviceName(), metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(time.Minute).Should(BeTrue(), "service %s/%s deleted", d.Namespace, d.Env.Config.serviceName())
	}
	if err := deleteOwnNamespace(ctx, d.Env.Client, d.Namespace, d.namespaceUID, d.Env.Config.RunID); err != nil {
		d.Env.Logger.Warn("deleting namespace", "err", err)
		return
	}
	d.Env.drain(ctx, d.Namespace)
}

// nodePort says whether the target's Service is a NodePort Service: only where a kind
// port mapping reaches it (kind and reuse modes). In existing mode it is ClusterIP, so that no
// port opens on a node the suite does not own.
func (e *Env) nodePort() bool { return e.Config.Mode != "existing" }

// The labels of every namespace the suite creates: which run made it, and that stampede did.
const (
	RunLabel       = cluster.RunLabel
	ManagedByLabel = cluster.ManagedByLabel
	ManagedBy      = cluster.ManagedBy
)

// keepNamespace decides whether a spec's namespace outlives it: only a failed spec's, and only
// when Keep asks.
func keepNamespace(failed, keep bool) bool { return failed && keep }

// releaseNodePortSpec turns a NodePort Service into a ClusterIP one in place, so that a kept
// namespace does not hold a node port that the next spec's Service needs; it reports whether it
// changed anything.
func releaseNodePortSpec(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.ExternalTrafficPolicy = ""
	svc.Spec.HealthCheckNodePort = 0
	for i := range svc.Spec.Ports {
		svc.Spec.Ports[i].NodePort = 0
	}
	return true
}

// ReleaseNodePort makes the Service namespace/name a ClusterIP Service, freeing its node port.
func ReleaseNodePort(ctx context.Context, cs kubernetes.Interface, namespace, name string) error {
	svc, err := cs.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release node port of %s/%s: %w", namespace, name, err)
	}
	if !releaseNodePortSpec(svc) {
		return nil
	}
	if _, err := cs.CoreV1().Services(namespace).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("release node port of %s/%s: %w", namespace, name, err)
	}
	return nil
}

// releaseKeptNodePorts frees the node port of the target's Service in every namespace an earlier
// spec of this run kept, in case it ended before its cleanup did. Another run's Services are
// never rewritten: the selector names this run, and each namespace's labels are checked again.
func (e *Env) releaseKeptNodePorts(ctx context.Context) error {
	if !e.nodePort() {
		return nil
	}
	sel := fmt.Sprintf("%s=%s,%s=%s", RunLabel, e.Config.RunID, ManagedByLabel, ManagedBy)
	nss, err := e.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list kept namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp != nil || ns.Labels[RunLabel] != e.Config.RunID || ns.Labels[ManagedByLabel] != ManagedBy {
			continue
		}
		if err := ReleaseNodePort(ctx, e.Client, ns.Name, e.Config.serviceName()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// labelNamespaces puts the run's labels on the Namespace objects of objs.
func (e *Env) labelNamespaces(objs []*unstructured.Unstructured) {
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			continue
		}
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[RunLabel] = e.Config.RunID
		labels[ManagedByLabel] = ManagedBy
		o.SetLabels(labels)
	}
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// specDirName names the running spec's artifacts directory (report.SpecDirName).
func specDirName() string { return report.SpecDirName(CurrentSpecReport().FullText()) }
