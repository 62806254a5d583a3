// Package chaos injects faults into a running token service while first-registration bursts
// run: one small type per fault, in one registry (etcd robustness's Failpoint in spirit). A
// fault acts on the real cluster (client-go for pods and Deployments, kind's node containers,
// toxiproxy for the database path) and says when it cannot run there; the caller records its
// start and end as a history.Event and judges the outcome with the same checker as every spec.
//
// Everything a fault decides at random (when it fires, how long it holds, which target) comes
// from a Plan derived from the suite's seed, so that a printed seed replays the same faults.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"k8s.io/client-go/kubernetes"

	"github.com/stampede-e2e/stampede/e2e/cluster"
)

// ErrUnavailable wraps every reason a fault cannot run in a cluster: the spec is skipped with it.
var ErrUnavailable = errors.New("fault unavailable")

// Fault is one kind of trouble. Inject starts it on a target the plan picks and returns the
// Injection that ends it; a fault that is over as soon as it is done (a pod deleted) ends by
// waiting until what it broke is back. A fault declares the answers it may cause by
// implementing Excuser; it excuses nothing else.
type Fault interface {
	// Name is the fault's name, also its spec's label.
	Name() string
	// Available returns nil if the fault can run against t, or an error wrapping ErrUnavailable
	// that says why not. It only looks; it changes nothing.
	Available(t *Target) error
	// Inject starts the fault.
	Inject(ctx context.Context, t *Target, p Plan) (*Injection, error)
}

// Injection is a fault in progress.
type Injection struct {
	// Target names what the fault acts on, such as a pod or a node container.
	Target string
	// Detail says how, for the history and the logs.
	Detail string
	// Held says that the fault lasts until Recover (a toxic, a paused node): the runner holds
	// it for the plan's hold first. A fault that is over once done (a pod deleted) is not held:
	// Recover at once waits for the damage to heal.
	Held bool
	// Pods are the token-service pods the fault acted on (the one killed or cut off, those on
	// a paused node): the pods its TargetPods excuses name.
	Pods []string
	// Database says the fault reached PostgreSQL or its path (a paused node that runs it), for
	// the excuses declared IfDatabase.
	Database bool
	// At is when the fault took effect, by the wall clock, for a fault that can tell (db-crash:
	// once the SIGKILL was delivered); zero otherwise. The history's event keeps it as Landed.
	At time.Time
	// Recover removes the fault's cause and waits until it is gone (a toxic removed, a node
	// container resumed and its node Ready, a killed pod replaced).
	Recover func(ctx context.Context) error
}

// Toxic is implemented by faults that need toxiproxy between the token service and PostgreSQL.
type Toxic interface{ NeedsToxiproxy() }

// NeedsToxiproxy reports whether f needs the deployment to route its database traffic through
// toxiproxy.
func NeedsToxiproxy(f Fault) bool {
	_, ok := f.(Toxic)
	return ok
}

// Target is the deployment a fault acts on, and how to reach its cluster.
type Target struct {
	Client kubernetes.Interface
	// Namespace holds the target, PostgreSQL and, when deployed, toxiproxy.
	Namespace string
	// Workload is the target's Deployment, Container its container and Pods the label selector
	// of its pods (its Service's selector): what the pod and node faults act on, read from the
	// target file and its render.
	Workload, Container, Pods string
	// Replicas is the target's desired replica count.
	Replicas int
	// Mode is the suite's cluster mode: kind, reuse or existing.
	Mode string
	// Cluster is the kind cluster's name (kind and reuse modes).
	Cluster string
	// Nodes are the cluster's nodes as e2e/cluster made or found them, with the docker
	// container of each (kind and reuse modes): the only containers a node fault touches.
	Nodes []cluster.Node
	// ToxiproxyImage is the toxiproxy image; empty means toxiproxy cannot be deployed.
	ToxiproxyImage string
	// DatabaseOnEmptyDir says PostgreSQL's data is on its pod's emptyDir, which a deleted pod
	// takes with it (manifests.StorageEmptyDir).
	DatabaseOnEmptyDir bool
	// Toxiproxy drives the deployment's toxiproxy (nil when it has none).
	Toxiproxy *toxiproxy.Client
	// Docker runs the docker CLI (nil: the docker binary on PATH).
	Docker func(ctx context.Context, args ...string) ([]byte, error)
	Logger *slog.Logger
}

func (t *Target) logger() *slog.Logger {
	if t.Logger == nil {
		return slog.Default()
	}
	return t.Logger
}

// Registry lists every fault, in the order the specs run them.
var Registry = []Fault{
	PodKill{},
	RollingRestart{},
	Scale{},
	DBRestart{},
	DBCrash{},
	DBLatency{},
	DBCut{},
	NodeLoss{},
	Partition{},
}

// Names lists the names of the faults in the Registry.
func Names() []string {
	names := make([]string, len(Registry))
	for i, f := range Registry {
		names[i] = f.Name()
	}
	return names
}

// ByName returns the registered fault called name.
func ByName(name string) (Fault, error) {
	i := slices.IndexFunc(Registry, func(f Fault) bool { return f.Name() == name })
	if i < 0 {
		return nil, fmt.Errorf("no fault %q: want one of %v", name, Names())
	}
	return Registry[i], nil
}

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// kindNodesOnly is the Available of the faults that act on kind's node containers.
func kindNodesOnly(t *Target, what string) error {
	if t.Mode != "kind" && t.Mode != "reuse" {
		return unavailable("%s needs kind's node containers; %s mode has none the suite may touch", what, t.Mode)
	}
	if len(t.Nodes) == 0 {
		return unavailable("%s needs the kind cluster's node containers, and the suite was given none", what)
	}
	return nil
}
