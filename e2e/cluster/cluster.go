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
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
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
const ServiceNodePort int32 = 30080

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
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: c.p.Kubeconfig}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.p.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", c.p.Kubeconfig, err)
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
	var notReady []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			notReady = []string{"api: " + err.Error()}
			return false, nil
		}
		notReady = notReady[:0]
		for _, n := range list.Items {
			if !nodeReady(&n) {
				notReady = append(notReady, n.Name)
			}
		}
		return len(list.Items) > 0 && len(notReady) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("wait for nodes Ready: %w (not ready: %s)", err, strings.Join(notReady, ", "))
	}
	c.log.Info("nodes ready", "took", since(start))
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

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
