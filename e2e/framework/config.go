package framework

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stampede-e2e/stampede/e2e/cluster"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/target"
	"github.com/stampede-e2e/stampede/e2e/traffic"
	"github.com/stampede-e2e/stampede/manifests"
)

// Config is what a run of the suite is told, by flags (prefix e2e.) or, where no flag is given,
// by environment variables (STAMPEDE_E2E_*). Flags win.
type Config struct {
	// Mode is kind (a fresh cluster, deleted at the end), reuse (a kept kind cluster, created when
	// absent) or existing (any cluster from a kubeconfig and context).
	Mode string
	// ClusterName names the kind cluster in kind and reuse modes: by default
	// cluster.KindName(RunID) in kind mode (a cluster per run) and "stampede" in reuse mode.
	ClusterName string
	// RunID identifies the run: in the kind cluster's default name, its owner record, and the
	// label stampede.io/run of every namespace it creates. Empty means a new one.
	RunID string
	// KindConfig is the kind cluster configuration file.
	KindConfig string
	// NodeImage is the kind node image; empty means scripts/node-image.sh decides.
	NodeImage string
	// Kubeconfig and Context select the cluster in existing mode.
	Kubeconfig, Context string
	// Image is the target's image (deploy.images of its target file), PostgresImage and
	// ToxiproxyImage the suite's own; empty means they are built here (scripts/build-image.sh,
	// and the target's build script) and loaded into the kind nodes.
	Image, PostgresImage, ToxiproxyImage string
	// SelftestImage is the target built with the self-test's mutants (-tags selftest);
	// empty means built here when a self-test spec runs.
	SelftestImage string
	// Manifests is a team's kustomize directory for the target, deployed instead of the
	// target file's own deploy.kustomize (manifests.Contract says what it must provide).
	Manifests string
	// ServiceURL overrides the target's address from the host (existing mode).
	ServiceURL string
	// Traffic is where the bursts come from: TrafficHost (this process, through ServiceURL) or
	// TrafficCluster (Attackers pods of a Job inside the cluster, through the target's
	// ClusterIP Service). Empty means TrafficCluster in existing mode, TrafficHost otherwise.
	Traffic string
	// Attackers is the number of attacker pods that share every burst with cluster traffic.
	Attackers int
	// AttackerImage is the attacker pods' image; empty means built here
	// (scripts/build-image.sh attacker) and loaded into the kind nodes when cluster traffic is
	// chosen. Required for cluster traffic in existing mode.
	AttackerImage string
	// AttackLead is how far ahead of the attacker Job's creation its agreed start instant is:
	// long enough for every pod to be scheduled and started.
	AttackLead time.Duration
	// Seed fixes the customers and the burst plan; 0 means a new one, printed at the start.
	Seed uint64
	// Customers is the number of new customers per spec, each hit by Burst simultaneous requests.
	Customers, Burst int
	// Gap separates the starts of two customers' bursts in a spec's Stampede.
	Gap time.Duration
	// Replicas of the target's workload.
	Replicas int
	// Keep keeps the cluster (kind mode) and failed specs' namespaces for inspection.
	Keep bool
	// Artifacts is the run's own directory for reports, histories and logs. Empty means
	// MakeRunDir names one under ArtifactsBase once the seed is known.
	Artifacts string
	// ArtifactsBase holds a directory per run, <UTC time>-seed<N>, and the link latest.
	ArtifactsBase string
	// Timeout bounds each registration spec; a chaos spec gets ChaosTimeout.
	Timeout time.Duration
	// DatabaseStorage is where PostgreSQL keeps its data: manifests.StoragePVC,
	// manifests.StorageEmptyDir, or StorageAuto (a claim for the deployments whose data must
	// outlive a pod, DeployParams.DurableDatabase, an emptyDir for the rest). Empty means an
	// emptyDir in existing mode, where a claim's volume can outlive the spec (a StorageClass
	// that reclaims with Retain), and StorageAuto elsewhere.
	DatabaseStorage string
	// DatabaseAhead starts each deployment's database while the one before it deploys
	// (framework's ahead), in the suite's own clusters only: not in existing mode.
	DatabaseAhead bool
	// DNS replaces the peers the pods may query DNS at (manifests.ParseDNSEgress reads it);
	// empty keeps manifests.DefaultDNS.
	DNS string
	// AllowClientOnlyCoverage accepts client-side coverage alone from a service whose answers
	// carry no handler interval (Server-Timing): without it such a run is inconclusive
	// (check.CoverageParams.AllowClientOnly).
	AllowClientOnlyCoverage bool
	// TargetFile is the target file the run judges (a directory means its target.yaml);
	// empty means DefaultTarget.
	TargetFile string
	// DefaultTarget is the target file a run judges unless -e2e.target names one, relative to
	// the repository's root: the spec package sets it before RegisterFlags.
	DefaultTarget string
	// Target is TargetFile loaded and validated, set by Validate.
	Target *target.Target
	// RunRole is a ClusterRole that each spec binds, in its own namespace only, to the identity
	// the suite runs as (a RoleBinding the namespace takes with it): the namespaced rights of
	// manifests/rbac. Empty binds nothing: the identity must hold those rights already.
	RunRole string
}

// Where the bursts come from (Config.Traffic).
const (
	TrafficHost    = "host"
	TrafficCluster = "cluster"
)

func env(name, def string) string {
	if v, ok := os.LookupEnv("STAMPEDE_E2E_" + name); ok && v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(env(name, "")); err == nil {
		return v
	}
	return def
}

// RegisterFlags registers the suite's flags on fs with their environment defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	root := repoRoot()
	artifacts := os.Getenv("ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(root, "_artifacts")
	}
	fs.StringVar(&c.RunID, "e2e.run-id", env("RUN_ID", ""), "id of this run (default: a new one; scripts/e2e.sh passes its own)")
	seed, _ := strconv.ParseUint(firstNonEmpty(env("SEED", ""), os.Getenv("SEED")), 10, 64)
	fs.StringVar(&c.Mode, "e2e.mode", env("MODE", "kind"), "kind | reuse | existing (env STAMPEDE_E2E_MODE)")
	fs.StringVar(&c.ClusterName, "e2e.cluster-name", env("CLUSTER_NAME", ""), "kind cluster name (default stampede-<run id> for kind, stampede for reuse; env CLUSTER)")
	fs.StringVar(&c.KindConfig, "e2e.kind-config", env("KIND_CONFIG", filepath.Join(root, "kind-config.yaml")), "kind cluster configuration")
	fs.StringVar(&c.NodeImage, "e2e.node-image", firstNonEmpty(env("NODE_IMAGE", ""), os.Getenv("STAMPEDE_NODE_IMAGE")), "kind node image (default: scripts/node-image.sh)")
	fs.StringVar(&c.Kubeconfig, "e2e.kubeconfig", env("KUBECONFIG", ""), "kubeconfig of an existing cluster (existing mode)")
	fs.StringVar(&c.Context, "e2e.context", env("CONTEXT", ""), "kubeconfig context (existing mode)")
	fs.StringVar(&c.Image, "e2e.image", env("IMAGE", ""), "the target's image (default: built here by its target file's build script)")
	fs.StringVar(&c.PostgresImage, "e2e.postgres-image", env("POSTGRES_IMAGE", ""), "PostgreSQL image (default: built here)")
	fs.StringVar(&c.ToxiproxyImage, "e2e.toxiproxy-image", env("TOXIPROXY_IMAGE", ""), "toxiproxy image (default: built here)")
	fs.StringVar(&c.SelftestImage, "e2e.selftest-image", env("SELFTEST_IMAGE", ""), "self-test image of the target, built with -tags selftest (default: built here when a selftest spec runs)")
	fs.StringVar(&c.Manifests, "e2e.manifests", env("MANIFESTS", ""), "a kustomize directory to deploy instead of the target file's deploy.kustomize (what it must provide: README)")
	fs.StringVar(&c.ServiceURL, "e2e.service-url", env("SERVICE_URL", ""), "target URL from this host (default: the kind port mapping)")
	fs.StringVar(&c.Traffic, "e2e.traffic", env("TRAFFIC", ""), "where the bursts come from: host (this process) or cluster (attacker pods; default in existing mode)")
	fs.IntVar(&c.Attackers, "e2e.attackers", envInt("ATTACKERS", 3), "attacker pods that share every burst with -e2e.traffic=cluster")
	fs.StringVar(&c.AttackerImage, "e2e.attacker-image", env("ATTACKER_IMAGE", ""), "attacker image for -e2e.traffic=cluster (default: built here; required in existing mode)")
	fs.DurationVar(&c.AttackLead, "e2e.attack-lead", envDuration("ATTACK_LEAD", 10*time.Second), "how far ahead of the attacker Job's creation its pods' agreed start instant is")
	fs.Uint64Var(&c.Seed, "e2e.seed", seed, "seed of the customers and burst plan; 0 picks one (env SEED)")
	fs.IntVar(&c.Customers, "e2e.customers", envInt("CUSTOMERS", 40), "new customers per spec")
	fs.IntVar(&c.Burst, "e2e.burst", envInt("BURST", 6), "simultaneous first-registration requests per customer")
	fs.DurationVar(&c.Gap, "e2e.gap", envDuration("GAP", 0), "time between the starts of two customers' bursts (default: the target file's traffic.gap, else "+traffic.DefaultGap.String()+")")
	fs.IntVar(&c.Replicas, "e2e.replicas", envInt("REPLICAS", 3), "target replicas")
	fs.BoolVar(&c.Keep, "e2e.keep", env("KEEP", "") == "true", "keep the kind cluster and failed specs' namespaces")
	fs.BoolVar(&c.AllowClientOnlyCoverage, "e2e.allow-client-only-coverage", env("ALLOW_CLIENT_ONLY_COVERAGE", "") == "true",
		"accept client-side coverage alone from a service that sends no Server-Timing handler interval (default: such a run is inconclusive)")
	fs.StringVar(&c.Artifacts, "e2e.artifacts", env("ARTIFACTS", ""), "this run's artifacts directory (default: <artifacts-base>/<UTC time>-seed<N>)")
	fs.StringVar(&c.ArtifactsBase, "e2e.artifacts-base", artifacts, "directory of the runs' artifacts directories (env ARTIFACTS)")
	fs.StringVar(&c.DatabaseStorage, "e2e.db-storage", env("DB_STORAGE", ""), "where PostgreSQL keeps its data: emptydir, pvc, or auto: a claim for the specs that inject faults, an emptyDir for the rest (default: emptydir in existing mode, else auto)")
	fs.BoolVar(&c.DatabaseAhead, "e2e.db-ahead", env("DB_AHEAD", "") != "false", "start the next spec's database while a spec deploys (kind and reuse modes; none in existing mode)")
	fs.StringVar(&c.DNS, "e2e.dns", env("DNS", ""), "DNS peers of the pods' egress policy, space-separated NAMESPACE/KEY=VALUE and CIDRs (default \""+manifests.DefaultDNS.String()+"\")")
	fs.StringVar(&c.TargetFile, "e2e.target", env("TARGET", ""), "the target file, or a directory holding target.yaml (default: "+firstNonEmpty(c.DefaultTarget, "none")+")")
	fs.StringVar(&c.RunRole, "e2e.run-role", env("RUN_ROLE", ""), "ClusterRole bound to the suite's identity in each spec's namespace (manifests/rbac: stampede-run)")
	fs.DurationVar(&c.Timeout, "e2e.spec-timeout", 10*time.Minute, "time limit of one registration spec; chaos specs get 1.5 times it (a fault's hold and recovery)")
}

// Validate says in one line what is wrong with c.
func (c *Config) Validate() error {
	for _, step := range []func() error{c.validateMode, c.validateDeploy, c.validateTraffic, c.validateTarget, c.validateLoad} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// validateMode completes the run's id and its cluster's name, and refuses an existing cluster
// not named in full or without images it can pull.
func (c *Config) validateMode() error {
	if c.RunID == "" {
		c.RunID = cluster.NewRunID()
	}
	switch c.Mode {
	case "kind", "reuse":
		if c.ClusterName == "" {
			c.ClusterName = map[string]string{"kind": cluster.KindName(c.RunID), "reuse": cluster.DefaultName}[c.Mode]
		}
	case "existing":
		if c.Kubeconfig == "" || c.Context == "" {
			// Never the kubeconfig's current context: a run against the wrong cluster is the
			// mistake this refuses.
			return fmt.Errorf("existing mode needs -e2e.kubeconfig and -e2e.context, the context named explicitly (KUBECONFIG=... CONTEXT=...)")
		}
		if c.Image == "" || c.PostgresImage == "" {
			return fmt.Errorf("existing mode needs -e2e.image and -e2e.postgres-image (images the cluster can pull)")
		}
	default:
		return fmt.Errorf("-e2e.mode=%q: use kind, reuse or existing", c.Mode)
	}
	return nil
}

// validateDeploy checks, and completes by the mode, what shapes each deployment: its
// manifests, its database's storage, its DNS egress and the role bound in its namespace.
func (c *Config) validateDeploy() error {
	if c.Manifests != "" {
		if fi, err := os.Stat(c.Manifests); err != nil || !fi.IsDir() {
			return fmt.Errorf("-e2e.manifests=%s: not a directory (a kustomize directory of the target)", c.Manifests)
		}
	}
	if c.DatabaseStorage == "" {
		c.DatabaseStorage = StorageAuto
		if c.Mode == "existing" {
			c.DatabaseStorage = manifests.StorageEmptyDir
		}
	}
	switch c.DatabaseStorage {
	case manifests.StoragePVC, manifests.StorageEmptyDir, StorageAuto:
	default:
		return fmt.Errorf("-e2e.db-storage=%q: use %s, %s or %s", c.DatabaseStorage, manifests.StorageEmptyDir, manifests.StoragePVC, StorageAuto)
	}
	if c.DNS != "" {
		if _, err := manifests.ParseDNSEgress(c.DNS); err != nil {
			return fmt.Errorf("-e2e.dns: %w", err)
		}
	}
	if c.RunRole != "" {
		if msgs := validation.IsDNS1123Subdomain(c.RunRole); len(msgs) > 0 {
			return fmt.Errorf("-e2e.run-role=%q: not a ClusterRole name: %s", c.RunRole, msgs[0])
		}
	}
	return nil
}

// validateTraffic completes by the mode where the traffic comes from, and checks what cluster
// traffic needs.
func (c *Config) validateTraffic() error {
	if c.Traffic == "" {
		c.Traffic = TrafficHost
		if c.Mode == "existing" {
			c.Traffic = TrafficCluster
		}
	}
	switch c.Traffic {
	case TrafficHost:
	case TrafficCluster:
		if c.Attackers < 1 {
			return fmt.Errorf("-e2e.attackers=%d: cluster traffic needs at least one attacker pod", c.Attackers)
		}
		if c.AttackLead <= 0 {
			return fmt.Errorf("-e2e.attack-lead=%s: the pods need time to start before the agreed instant", c.AttackLead)
		}
		if c.Mode == "existing" && c.AttackerImage == "" {
			return fmt.Errorf("cluster traffic in existing mode needs -e2e.attacker-image (scripts/build-image.sh attacker, pushed where the cluster pulls from), or -e2e.traffic=host")
		}
	default:
		return fmt.Errorf("-e2e.traffic=%q: use host or cluster", c.Traffic)
	}
	return nil
}

// validateTarget loads the target file, and refuses a target whose image the suite should
// build but has no recipe for.
func (c *Config) validateTarget() error {
	if _, err := c.LoadTarget(); err != nil {
		return err
	}
	if script, _ := c.recipe(); c.Mode != "existing" && c.Image == "" && script == "" {
		return fmt.Errorf("target %s: its image has no build script the suite runs (deploy.images[0].build.script): give it with -e2e.image", c.Target.Name)
	}
	return nil
}

// validateLoad refuses a load that cannot make a race: one request per customer, or one pod.
func (c *Config) validateLoad() error {
	if c.Customers < 1 || c.Burst < 2 {
		return fmt.Errorf("-e2e.customers must be >= 1 and -e2e.burst >= 2 (a race needs two requests)")
	}
	if c.Gap == 0 && c.Target != nil {
		c.Gap = c.Target.Gap()
	}
	if c.Gap == 0 {
		c.Gap = traffic.DefaultGap
	}
	if c.Gap < 0 {
		return fmt.Errorf("-e2e.gap=%s: want more than 0", c.Gap)
	}
	if c.Replicas < 2 {
		return fmt.Errorf("-e2e.replicas must be >= 2: the race needs two pods")
	}
	return nil
}

// loadTarget loads TargetFile (DefaultTarget if empty; a directory's target.yaml) into
// Target. A file with problems is refused in one line: the first problem, how many there are,
// and the command that lists them all.
func (c *Config) loadTarget() error {
	file := c.TargetFile
	if file == "" && c.DefaultTarget == "" {
		return errors.New("no target: name its file with -e2e.target (TARGET=)")
	}
	if file == "" {
		file = filepath.Join(repoRoot(), c.DefaultTarget)
	}
	file = target.FileOf(file)
	t, err := target.Load(file)
	var list target.ErrorList
	switch {
	case errors.As(err, &list) && len(list) > 0:
		return fmt.Errorf("-e2e.target=%s: %d problems, the first %s (all of them: stampede target validate %s)", file, len(list), list[0], file)
	case err != nil:
		return fmt.Errorf("-e2e.target=%s: %w", file, err)
	}
	c.TargetFile, c.Target = file, t
	return nil
}

// TargetRef names the run's target for results.json and the report: its file relative to the
// repository's root when it lies inside it, so that runs on two machines name it alike. Nil
// before Validate loaded it.
func (c *Config) TargetRef() *report.TargetRef {
	if c.Target == nil {
		return nil
	}
	file := c.Target.File()
	if abs, err := filepath.Abs(file); err == nil {
		if rel, err := filepath.Rel(repoRoot(), abs); err == nil && filepath.IsLocal(rel) {
			file = filepath.ToSlash(rel)
		}
	}
	return &report.TargetRef{Name: c.Target.Name, File: file, Digest: c.Target.Digest()}
}

// LoadTarget loads the target file into Target, once: the spec files call it while Ginkgo builds
// the tree (after the flags are parsed, before BeforeSuite validates the rest), to know the
// target's modes; Validate finds it loaded.
func (c *Config) LoadTarget() (*target.Target, error) {
	if c.Target == nil {
		if err := c.loadTarget(); err != nil {
			return nil, err
		}
	}
	return c.Target, nil
}

// createRequest is the target's create request, which every sender sends.
func (c *Config) createRequest() request.Template { return c.Target.Request() }

// jwksPath is where the target publishes the keys that verify its credentials; "" when it
// publishes none.
func (c *Config) jwksPath() string {
	if c.Target != nil && c.Target.Response.Verifier != nil {
		return c.Target.Response.Verifier.JWKSPath
	}
	return ""
}

// MakeRunDir creates the run's artifacts directory under ArtifactsBase, named after now and the
// seed (which must be chosen first), and points ArtifactsBase/latest at it; with Artifacts given,
// it only creates that directory.
func (c *Config) MakeRunDir(now time.Time) error {
	if c.Artifacts != "" {
		return os.MkdirAll(c.Artifacts, 0o755)
	}
	if c.Seed == 0 {
		return fmt.Errorf("artifacts directory: the seed must be chosen before the directory is named")
	}
	dir, err := report.NewRunDir(c.ArtifactsBase, now, c.Seed, c.RunID)
	if err != nil {
		return err
	}
	c.Artifacts = dir
	return nil
}

// KeptCluster is the cluster that outlives the run, which a repro line can name: reuse mode's,
// or kind mode's with Keep; empty when the run deletes its cluster or uses an existing one.
func (c *Config) KeptCluster() string {
	if c.Mode == "reuse" || (c.Mode == "kind" && c.Keep) {
		return c.ClusterName
	}
	return ""
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// repoRoot is the directory holding go.mod, found upwards from the working directory (Ginkgo runs
// the suite in e2e/).
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// RepoRoot is the repository's root directory.
func RepoRoot() string { return repoRoot() }

// TrafficSource says where the bursts come from, for logs and reports: "host", or "cluster (3
// attacker pods)".
func (c *Config) TrafficSource() string {
	if c.Traffic == TrafficCluster {
		return fmt.Sprintf("%s (%d attacker pods)", TrafficCluster, c.Attackers)
	}
	return c.Traffic
}

// ChaosTimeout is the time limit of a chaos spec: the spec timeout and half again, for the
// fault's hold and the recovery bound.
func (c *Config) ChaosTimeout() time.Duration { return c.Timeout * 3 / 2 }

// ClusterParams are the e2e/cluster parameters of c's mode: the kind settings (cluster name,
// kind config, node image) only in kind and reuse modes, where they have defaults; an existing
// cluster is named by its kubeconfig and context alone.
func (c *Config) ClusterParams() cluster.Params {
	p := cluster.Params{
		Mode:         cluster.Mode(c.Mode),
		Name:         c.ClusterName,
		RunID:        c.RunID,
		ConfigPath:   c.KindConfig,
		NodeImage:    c.NodeImage,
		Kubeconfig:   c.Kubeconfig,
		Context:      c.Context,
		ArtifactsDir: c.Artifacts,
		Keep:         c.Keep,
	}
	if c.Mode == "existing" {
		p.Name, p.ConfigPath, p.NodeImage = "", "", ""
	}
	return p
}

// dnsEgress is the DNS setting as manifests.Params take it: nil for the default.
func (c *Config) dnsEgress() (*manifests.DNSEgress, error) {
	if c.DNS == "" {
		return nil, nil
	}
	return manifests.ParseDNSEgress(c.DNS)
}
