package framework

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/stampede-e2e/stampede/e2e/cluster"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// Setup is the suite's BeforeSuite: it completes cfg (seed, run directory, images: the node
// image and the workloads' through e2e/cluster's one resolver, unless given), brings up the
// cluster with its cleanup registered before anything is created, loads the images, and returns
// the Env the specs deploy into.
func Setup(ctx context.Context, cfg *Config) *Env {
	GinkgoHelper()
	startRun(cfg)
	logger := slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if cfg.Mode != "existing" {
		buildImages(ctx, cfg)
	}
	c := bringUp(ctx, cfg, logger)
	load := loadImages(ctx, cfg, c)
	url := hostServiceURL(cfg, c)
	fmt.Fprintf(GinkgoWriter, "traffic: %s\n", cfg.TrafficSource())
	applier, err := NewApplier(c.RESTConfig())
	Expect(err).NotTo(HaveOccurred())
	exportLogs := c.ExportLogs
	if cfg.Mode == "existing" {
		// Every pod and event of a team's cluster is not the suite's to read (nor in the rights
		// manifests/rbac grants): a failed spec's own namespace is dumped instead (DumpNamespace).
		exportLogs = nil
	}
	env := &Env{
		Config:            *cfg,
		RestConfig:        c.RESTConfig(),
		Client:            c.Client(),
		Applier:           applier,
		ServiceURL:        url,
		Nodes:             c.Nodes(),
		Logger:            logger,
		ExportClusterLogs: exportLogs,
		LoadImages:        load,
	}
	// Before the cluster's teardown (cleanups run last first): a database started ahead for a
	// spec that did not come.
	DeferCleanup(func(ctx SpecContext) { env.DropAhead(ctx) }, NodeTimeout(time.Minute))
	return env
}

// startRun validates cfg, completes its seed and run directory, and prints and reports them:
// the lines a failed run is replayed from.
func startRun(cfg *Config) {
	GinkgoHelper()
	// Validate loads the target file: a run whose target does not load stops here, in one line,
	// before any image is built or cluster touched.
	Expect(cfg.Validate()).To(Succeed())
	if cfg.Seed == 0 {
		cfg.Seed = traffic.NewSeed()
	}
	Expect(cfg.MakeRunDir(time.Now())).To(Succeed())
	fmt.Fprintf(GinkgoWriter, "seed %d (replay: make e2e SEED=%d), run %s, artifacts %s\n", cfg.Seed, cfg.Seed, cfg.RunID, cfg.Artifacts)
	AddReportEntry("seed", cfg.Seed)
	AddReportEntry("run", cfg.RunID)
	if ref := cfg.TargetRef(); ref != nil {
		fmt.Fprintf(GinkgoWriter, "target %s (%s, %s)\n", ref.Name, ref.File, ref.Digest)
		AddReportEntry("target", *ref)
	}
}

// buildImages chooses the node image and builds the images cfg does not name (the target's,
// PostgreSQL's, toxiproxy's, the attacker's), each a stage of the run's timeline: a cluster the
// suite makes runs what this checkout builds.
func buildImages(ctx context.Context, cfg *Config) {
	GinkgoHelper()
	if cfg.NodeImage == "" {
		By("choosing the node image (scripts/node-image.sh)")
		end := beginStage(cfg.Artifacts, "node image (in the suite)")
		img, err := cluster.NodeImage(ctx, RepoRoot(), GinkgoWriter)
		end(err)
		cfg.NodeImage = must(img, err)
	}
	if cfg.Image == "" || cfg.PostgresImage == "" || cfg.ToxiproxyImage == "" {
		By("building the images the suite deploys (scripts/build-image.sh, and the target's build recipe)")
		end := beginStage(cfg.Artifacts, "images (in the suite)")
		images, err := cluster.BuildImages(ctx, RepoRoot(), GinkgoWriter, cfg.suiteImageNames()...)
		end(err)
		must(images, err)
		cfg.PostgresImage = firstNonEmpty(cfg.PostgresImage, images["postgres"])
		cfg.ToxiproxyImage = firstNonEmpty(cfg.ToxiproxyImage, images["toxiproxy"])
		if cfg.Image == "" {
			cfg.Image = cfg.targetImage(ctx, images)
		}
	}
	// Built even for host traffic: the network-policy spec's probe pods run it too.
	if cfg.AttackerImage == "" {
		By("building the attacker image: in-cluster traffic and network probes (scripts/build-image.sh attacker)")
		end := beginStage(cfg.Artifacts, "attacker image (in the suite)")
		images, err := cluster.BuildImages(ctx, RepoRoot(), GinkgoWriter, "attacker")
		end(err)
		must(images, err)
		Expect(images["attacker"]).NotTo(BeEmpty(), "scripts/build-image.sh printed no attacker image")
		cfg.AttackerImage = images["attacker"]
	}
}

// bringUp makes or reuses cfg's cluster, its teardown registered before anything is created.
func bringUp(ctx context.Context, cfg *Config, logger *slog.Logger) *cluster.Cluster {
	GinkgoHelper()
	By(fmt.Sprintf("bringing up cluster %s (%s mode, run %s)", cfg.ClusterName, cfg.Mode, cfg.RunID))
	p := cfg.ClusterParams()
	p.Logger = logger
	// Every refusal of a right by the API server becomes one "missing permission" line at the
	// end of the run (MissingPermissions), whichever step met it.
	p.WrapTransport = recordDenials
	// New takes the cluster name's lock; the cleanup is registered before Start creates
	// anything, so that an interrupt at any point (Ginkgo runs DeferCleanup on SIGINT and
	// SIGTERM) deletes what this run made, unless KEEP=true.
	c, err := cluster.New(p)
	Expect(err).NotTo(HaveOccurred(), "cluster %s", cfg.ClusterName)
	DeferCleanup(func(ctx SpecContext) {
		Expect(c.Down(ctx)).To(Succeed())
	}, NodeTimeout(3*time.Minute))
	end := beginStage(cfg.Artifacts, fmt.Sprintf("cluster: up (%s mode)", cfg.Mode))
	err = c.Start(ctx)
	end(err)
	Expect(err).To(Succeed(), "cluster up")
	return c
}

// loadImages loads the suite's images into c's nodes when c can, and returns how to load more
// (the self-test's builds); nil when c cannot, and its nodes pull them.
func loadImages(ctx context.Context, cfg *Config, c *cluster.Cluster) func(ctx context.Context, images ...string) error {
	GinkgoHelper()
	ok, why := c.CanLoadImages()
	if !ok {
		fmt.Fprintf(GinkgoWriter, "not loading images: %s\n", why)
		return nil
	}
	By("loading the images into the nodes")
	images := []string{cfg.Image, cfg.PostgresImage, cfg.ToxiproxyImage, cfg.AttackerImage}
	end := beginStage(cfg.Artifacts, "cluster: images loaded into the nodes")
	err := c.LoadImages(ctx, images...)
	end(err)
	Expect(err).To(Succeed())
	return c.LoadImages
}

// hostServiceURL is how this host reaches the target's Service: cfg's, else c's; empty when
// none exists and the traffic comes from inside the cluster, which needs none.
func hostServiceURL(cfg *Config, c *cluster.Cluster) string {
	GinkgoHelper()
	if cfg.ServiceURL != "" {
		return cfg.ServiceURL
	}
	url, err := c.ServiceURL()
	if err != nil && cfg.Traffic == TrafficCluster {
		// The bursts and the chaos rounds come from inside the cluster: the host needs no
		// way in.
		fmt.Fprintf(GinkgoWriter, "no address of the target's Service from this host (%v): traffic from inside the cluster only\n", err)
		url, err = "", nil
	}
	Expect(err).NotTo(HaveOccurred(), "the target's address from this host; in existing mode pass -e2e.service-url")
	return url
}

// targetImage is the target's image: built among the suite's own (images, by scripts/
// build-image.sh's names) when that script is its recipe, else by its own recipe run in the
// target file's directory, and found by repository in what the recipe printed.
func (c *Config) targetImage(ctx context.Context, images map[string]string) string {
	GinkgoHelper()
	if n := c.buildName(); n != "" {
		Expect(images[n]).NotTo(BeEmpty(), "scripts/build-image.sh printed no image %s for target %s", n, c.Target.Name)
		return images[n]
	}
	script, args := c.recipe()
	By(fmt.Sprintf("building target %s's image: %s", c.Target.Name, strings.Join(append([]string{script}, args...), " ")))
	end := beginStage(c.Artifacts, "image: "+c.imageName()+" (in the suite)")
	built, err := cluster.RecipeImages(ctx, c.Target.Dir(), GinkgoWriter, script, args...)
	end(err)
	Expect(err).NotTo(HaveOccurred())
	ref := cluster.ImageNamed(built, c.imageName())
	Expect(ref).NotTo(BeEmpty(), "target %s's build recipe printed no image %s (NAME=%s:TAG): it printed %v", c.Target.Name, c.imageName(), c.imageName(), built)
	return ref
}

func must[T any](v T, err error) T {
	GinkgoHelper()
	Expect(err).NotTo(HaveOccurred())
	return v
}
