// Package cluster gives stampede's suite and tools a Kubernetes cluster to run against: a fresh
// kind cluster made through kind's Go API (deleted at the end), a named kind cluster kept between
// runs (the fast inner loop), or any existing cluster from a kubeconfig. It loads locally built
// images into kind nodes, collects logs, reports the host ports that kind maps, and checks a
// cluster end to end with Smoke.
//
// The user's own kubeconfig is never read or written: a kind cluster's kubeconfig goes to a
// temporary file (or Params.Kubeconfig), and existing mode only reads the file it is given.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/stampede-e2e/stampede/manifests"
)

// Mode says where a Cluster comes from and what Down does with it.
type Mode string

const (
	// ModeKind creates a fresh kind cluster, named after the run unless named, and deletes it
	// in Down. It refuses a name that is already a cluster: it never deletes what it did not
	// create.
	ModeKind Mode = "kind"
	// ModeReuse uses the named kind cluster if it is healthy and creates it when absent. A
	// broken one is recreated only when stampede's reuse mode created it (its owner record says
	// so); else Up says how to delete it. Down keeps it.
	ModeReuse Mode = "reuse"
	// ModeExisting uses any cluster from a kubeconfig and context; nothing is created or deleted
	// and images cannot be loaded.
	ModeExisting Mode = "existing"
)

// DefaultName is the kind cluster name of reuse mode when Params.Name is empty. Kind mode's
// default is KindName(RunID), one cluster per run.
const DefaultName = "stampede"

// createAbortWait bounds how long an interrupted create waits for kind's Create to return once
// the nodes made so far are deleted (which makes it fail fast).
const createAbortWait = 2 * time.Minute

// ServiceNodePort is the NodePort of the token service (and of Smoke's test service) that
// kind-config.yaml maps to the host.
const ServiceNodePort int32 = manifests.NodePort

// DefaultWaitForReady bounds how long Up waits for every node to be Ready.
const DefaultWaitForReady = 3 * time.Minute

var validName = regexp.MustCompile(`^[a-z0-9.-]+$`)

// Params configures Up.
type Params struct {
	// Mode is kind, reuse or existing; empty means kind.
	Mode Mode
	// Name is the kind cluster name (kind and reuse modes); empty means KindName(RunID) in kind
	// mode and DefaultName in reuse mode.
	Name string
	// RunID identifies the run in owner records and labels; empty means NewRunID().
	RunID string
	// StateDir holds the locks and owner records; empty means StateDir().
	StateDir string
	// ConfigPath is the kind v1alpha4 config (kind and reuse modes), e.g. kind-config.yaml.
	ConfigPath string
	// NodeImage is the kind node image (kind and reuse modes); a reused cluster running another
	// image is recreated. There is no default: kind's own default would be pulled from a
	// registry. It may be empty only with NoCreate.
	NodeImage string
	// Kubeconfig is, in existing mode, the kubeconfig to read. In kind and reuse modes it is
	// where the cluster's kubeconfig is written; empty means a temporary file that Down removes.
	Kubeconfig string
	// Context is the kubeconfig context (existing mode); empty means its current context.
	Context string
	// ArtifactsDir receives kind's logs when a create fails; empty means a temporary directory.
	ArtifactsDir string
	// Keep keeps a kind-mode cluster in Down, and the nodes of a failed create.
	Keep bool
	// Recreate deletes a reuse-mode cluster and creates it anew even when it is healthy.
	Recreate bool
	// NoCreate makes reuse mode fail instead of creating a cluster that is absent or broken
	// (for tools that attach to a cluster made earlier).
	NoCreate bool
	// WaitForReady bounds the wait for every node to be Ready; zero means DefaultWaitForReady.
	WaitForReady time.Duration
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
	// WrapTransport wraps the transport of every client of the cluster's API (rest.Config's),
	// e.g. to record what the API server refused; nil leaves it as it is.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Validate checks Params and fills in defaults.
func (p *Params) Validate() error {
	var errs []error
	if p.Mode == "" {
		p.Mode = ModeKind
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.WaitForReady == 0 {
		p.WaitForReady = DefaultWaitForReady
	}
	onlyKind := func(field, value string) {
		if value != "" {
			errs = append(errs, fmt.Errorf("%s is only for kind and reuse modes (mode is %s)", field, p.Mode))
		}
	}
	switch p.Mode {
	case ModeKind, ModeReuse:
		if p.RunID == "" {
			p.RunID = NewRunID()
		}
		if p.StateDir == "" {
			p.StateDir = StateDir()
		}
		if p.Name == "" {
			p.Name = DefaultName
			if p.Mode == ModeKind {
				p.Name = KindName(p.RunID)
			}
		}
		if !validName.MatchString(p.Name) {
			errs = append(errs, fmt.Errorf("cluster name %q must match %s", p.Name, validName))
		}
		if p.ConfigPath == "" {
			errs = append(errs, errors.New("ConfigPath is required (the kind config, e.g. kind-config.yaml)"))
		}
		// Attaching without creating may leave the image out: then it is not checked.
		if p.NodeImage == "" && (p.Mode != ModeReuse || !p.NoCreate) {
			errs = append(errs, errors.New("NodeImage is required (scripts/node-image.sh prints it)"))
		}
		if p.Context != "" {
			errs = append(errs, fmt.Errorf("Context is only for existing mode (mode is %s)", p.Mode))
		}
		if p.Kubeconfig != "" && isUserKubeconfig(p.Kubeconfig) {
			errs = append(errs, fmt.Errorf("Kubeconfig %s is the user's own: kind would merge into it; leave it empty for a temporary file", p.Kubeconfig))
		}
		if p.Mode == ModeKind && (p.Recreate || p.NoCreate) {
			errs = append(errs, errors.New("Recreate and NoCreate are only for reuse mode (kind mode always creates)"))
		}
		if p.Recreate && p.NoCreate {
			errs = append(errs, errors.New("Recreate and NoCreate contradict each other"))
		}
	case ModeExisting:
		if p.Kubeconfig == "" {
			errs = append(errs, errors.New("Kubeconfig is required in existing mode"))
		}
		onlyKind("Name", p.Name)
		onlyKind("ConfigPath", p.ConfigPath)
		onlyKind("NodeImage", p.NodeImage)
		// Keep is tolerated: nothing is deleted in existing mode anyway.
		if p.Recreate || p.NoCreate {
			errs = append(errs, errors.New("Recreate and NoCreate are only for reuse mode (existing mode never creates or deletes)"))
		}
	default:
		errs = append(errs, fmt.Errorf("mode %q: want kind, reuse or existing", p.Mode))
	}
	if p.WaitForReady < 0 {
		errs = append(errs, fmt.Errorf("WaitForReady %s is negative", p.WaitForReady))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster params: %w", err)
	}
	return nil
}

// isUserKubeconfig reports whether path is ~/.kube/config, which kind and reuse modes must not
// write.
func isUserKubeconfig(path string) bool {
	home, err := os.UserHomeDir()
	if err != nil {
		return false
	}
	abs, err := filepath.Abs(path)
	return err == nil && abs == filepath.Join(home, ".kube", "config")
}

// Node is one node of the cluster.
type Node struct {
	// Name is the Kubernetes node name.
	Name string
	// Role is control-plane or worker.
	Role string
	// Container is the node's docker container (kind and reuse modes; empty in existing mode).
	// A chaos fault stops or pauses it.
	Container string
}

// Cluster is a cluster that Up made ready. Its methods are safe to call from one goroutine.
type Cluster struct {
	p              Params
	log            *slog.Logger
	provider       *kindcluster.Provider
	kubeconfig     string
	tempKubeconfig string // directory to remove in Down, when Up chose the path
	rest           *rest.Config
	client         kubernetes.Interface
	nodes          []Node
	hostPorts      map[int32]hostBinding
	created        bool

	lock *Lock
	// mu guards what Down reads while an interrupted Start may still run: ours says that this
	// run began creating the cluster (so Down may delete it); createDone is closed when kind's
	// Create returns.
	mu         sync.Mutex
	ours       bool
	createDone chan struct{}
	// reused is set when Start reused a healthy cluster: Down may then unpause its nodes.
	reused bool
}

type hostBinding struct {
	address string
	port    int
}

// Up makes a cluster ready according to p: New, then Start. On error nothing is left held
// and a cluster that Up began to create is deleted (unless Keep).
func Up(ctx context.Context, p Params) (*Cluster, error) {
	c, err := New(p)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, errors.Join(err, c.Down(context.WithoutCancel(ctx)))
	}
	return c, nil
}

// New checks p and, in kind and reuse modes, takes the lock of the cluster name for the life of
// the run (a second run on the same name fails here, naming the holder's pid). Register Down
// right after New: it undoes whatever Start did, also when Start was interrupted.
func New(p Params) (*Cluster, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{p: p, log: p.Logger.With("cluster", p.Name, "mode", string(p.Mode))}
	if p.Mode == ModeExisting {
		c.log = p.Logger.With("mode", string(p.Mode), "context", p.Context)
		return c, nil
	}
	l, err := AcquireLock(p.StateDir, p.Name, p.RunID)
	if err != nil {
		return nil, err
	}
	c.lock = l
	c.provider = newProvider(c.log)
	return c, nil
}

// Start makes the cluster ready: it creates, reuses or attaches, writes the kubeconfig, and
// waits until every node is Ready. kind's create cannot be interrupted: when ctx ends during
// it, the nodes made so far are deleted (so that kind's create fails fast), and Start returns
// once kind has returned, having deleted what it made.
func (c *Cluster) Start(ctx context.Context) error {
	if c.p.Mode == ModeExisting {
		return c.attachExisting(ctx)
	}
	return c.upKind(ctx)
}

func newProvider(log *slog.Logger) *kindcluster.Provider {
	return kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(kindLogger{log}))
}

// RunID returns the id of the run that uses the cluster (kind and reuse modes).
func (c *Cluster) RunID() string { return c.p.RunID }

// Kept reports whether the cluster outlives the run: reuse mode, or kind mode with Keep.
func (c *Cluster) Kept() bool { return c.p.Mode == ModeReuse || (c.p.Mode == ModeKind && c.p.Keep) }

// Name returns the kind cluster name (empty in existing mode).
func (c *Cluster) Name() string { return c.p.Name }

// Mode returns the mode the cluster was brought up in.
func (c *Cluster) Mode() Mode { return c.p.Mode }

// Created reports whether Up created the cluster (rather than reusing or attaching).
func (c *Cluster) Created() bool { return c.created }

// KubeconfigPath returns the path of the kubeconfig for this cluster.
func (c *Cluster) KubeconfigPath() string { return c.kubeconfig }

// RESTConfig returns the client configuration for the cluster.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Client returns a Kubernetes clientset for the cluster.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// Nodes returns the cluster's nodes sorted by name.
func (c *Cluster) Nodes() []Node { return slices.Clone(c.nodes) }

// Workers returns the nodes whose role is worker.
func (c *Cluster) Workers() []Node {
	var ws []Node
	for _, n := range c.nodes {
		if n.Role == "worker" {
			ws = append(ws, n)
		}
	}
	return ws
}

// HostPort returns the port on the host that containerPort of a node is published on, as kind
// mapped it (which may differ from the config's hostPort when that was taken).
func (c *Cluster) HostPort(containerPort int32) (int, error) {
	if c.p.Mode == ModeExisting {
		return 0, fmt.Errorf("host port of %d: existing mode has no kind port mappings (use a port-forward)", containerPort)
	}
	b, ok := c.hostPorts[containerPort]
	if !ok {
		return 0, fmt.Errorf("host port of %d: the kind config does not map it", containerPort)
	}
	return b.port, nil
}

// ServiceURL returns the host URL of the NodePort ServiceNodePort, e.g. http://127.0.0.1:30080.
func (c *Cluster) ServiceURL() (string, error) {
	port, err := c.HostPort(ServiceNodePort)
	if err != nil {
		return "", err
	}
	addr := c.hostPorts[ServiceNodePort].address
	if addr == "" || addr == "0.0.0.0" {
		addr = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(addr, strconv.Itoa(port)), nil
}

// kindNodes returns kind's handles for the internal nodes (kind and reuse modes).
func (c *Cluster) kindNodes() ([]nodes.Node, error) {
	if c.provider == nil {
		return nil, errors.New("existing mode has no kind nodes")
	}
	ns, err := c.provider.ListInternalNodes(c.p.Name)
	if err != nil {
		return nil, fmt.Errorf("list kind nodes: %w", err)
	}
	return ns, nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }
