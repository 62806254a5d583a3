//go:build e2e

// Package e2e is stampede's Ginkgo suite: a kind cluster (or an existing one), the token service
// replicated behind a Service, concurrent first-registration bursts, and a checker that every
// customer got exactly one valid, consistent token, with the database as ground truth.
package e2e

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/stampede-e2e/stampede/e2e/cluster"
	"github.com/stampede-e2e/stampede/e2e/framework"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

var (
	cfg framework.Config
	env *framework.Env
)

func init() { cfg.RegisterFlags(flag.CommandLine) }

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "stampede e2e")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	Expect(cfg.Validate()).To(Succeed())
	if cfg.Seed == 0 {
		cfg.Seed = traffic.NewSeed()
	}
	Expect(cfg.MakeRunDir(time.Now())).To(Succeed())
	fmt.Fprintf(GinkgoWriter, "seed %d (replay: make e2e SEED=%d), run %s, artifacts %s\n", cfg.Seed, cfg.Seed, cfg.RunID, cfg.Artifacts)
	AddReportEntry("seed", cfg.Seed)
	AddReportEntry("run", cfg.RunID)
	logger := slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelInfo}))

	if cfg.Mode != "existing" {
		if cfg.NodeImage == "" {
			By("choosing the node image (scripts/node-image.sh)")
			cfg.NodeImage = runScript(ctx, "scripts/node-image.sh")
		}
		if cfg.TokensvcImage == "" || cfg.PostgresImage == "" || cfg.ToxiproxyImage == "" {
			By("building the images the suite deploys (scripts/build-image.sh)")
			for _, line := range strings.Split(runScript(ctx, "scripts/build-image.sh", "all"), "\n") {
				name, image, _ := strings.Cut(strings.TrimSpace(line), "=")
				switch name {
				case "tokensvc":
					cfg.TokensvcImage = firstNonEmpty(cfg.TokensvcImage, image)
				case "postgres":
					cfg.PostgresImage = firstNonEmpty(cfg.PostgresImage, image)
				case "toxiproxy":
					cfg.ToxiproxyImage = firstNonEmpty(cfg.ToxiproxyImage, image)
				}
			}
		}
	}

	By(fmt.Sprintf("bringing up cluster %s (%s mode, run %s)", cfg.ClusterName, cfg.Mode, cfg.RunID))
	p := cluster.Params{
		Mode:         cluster.Mode(cfg.Mode),
		Name:         cfg.ClusterName,
		RunID:        cfg.RunID,
		ConfigPath:   cfg.KindConfig,
		NodeImage:    cfg.NodeImage,
		Kubeconfig:   cfg.Kubeconfig,
		Context:      cfg.Context,
		ArtifactsDir: cfg.Artifacts,
		Keep:         cfg.Keep,
		Logger:       logger,
	}
	if cfg.Mode == "existing" {
		p.Name = ""
	}
	// New takes the cluster name's lock; the cleanup is registered before Start creates
	// anything, so that an interrupt at any point (Ginkgo runs DeferCleanup on SIGINT and
	// SIGTERM) deletes what this run made, unless KEEP=true.
	c, err := cluster.New(p)
	Expect(err).NotTo(HaveOccurred(), "cluster %s", cfg.ClusterName)
	DeferCleanup(func(ctx SpecContext) {
		Expect(c.Down(ctx)).To(Succeed())
	}, NodeTimeout(3*time.Minute))
	Expect(c.Start(ctx)).To(Succeed(), "cluster up")

	if ok, why := c.CanLoadImages(); ok {
		By("loading the images into the nodes")
		Expect(c.LoadImages(ctx, cfg.TokensvcImage, cfg.PostgresImage, cfg.ToxiproxyImage)).To(Succeed())
	} else {
		fmt.Fprintf(GinkgoWriter, "not loading images: %s\n", why)
	}
	url := cfg.ServiceURL
	if url == "" {
		url, err = c.ServiceURL()
		Expect(err).NotTo(HaveOccurred(), "the token service's address from this host; in existing mode pass -e2e.service-url")
	}
	applier, err := framework.NewApplier(c.RESTConfig())
	Expect(err).NotTo(HaveOccurred())
	env = &framework.Env{
		Config:            cfg,
		RestConfig:        c.RESTConfig(),
		Client:            c.Client(),
		Applier:           applier,
		ServiceURL:        url,
		Nodes:             c.Nodes(),
		Logger:            logger,
		ExportClusterLogs: c.ExportLogs,
	}
}, NodeTimeout(30*time.Minute))

// A failed spec ends with the line that replays it; the report entries of every spec (their
// summaries) are gathered into one summary of the run, printed and kept in the artifacts.
var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() && env != nil {
		fmt.Fprintf(GinkgoWriter, "repro: %s\n", framework.ReproLine(env.Config.Seed, r.FullText(), env.Config.KeptCluster()))
	}
})

var _ = ReportAfterSuite("run summary", func(r Report) {
	var b strings.Builder
	fmt.Fprintf(&b, "stampede e2e: %d specs run, %d failed\n", r.PreRunStats.SpecsThatWillRun, countFailed(r))
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt || sr.State.Is(types.SpecStateSkipped) {
			continue
		}
		fmt.Fprintf(&b, "\n== %s: %s (%s)\n", sr.State, sr.FullText(), sr.RunTime.Round(time.Millisecond))
		for _, e := range sr.ReportEntries {
			if strings.HasPrefix(e.Name, "summary") || strings.Contains(e.Name, "detection") || e.Name == "return-existing" {
				fmt.Fprintf(&b, "-- %s\n%s\n", e.Name, strings.TrimSpace(e.StringRepresentation()))
			}
		}
	}
	fmt.Print(b.String())
	if cfg.Artifacts != "" {
		_ = os.MkdirAll(cfg.Artifacts, 0o755)
		_ = os.WriteFile(filepath.Join(cfg.Artifacts, "summary.txt"), []byte(b.String()), 0o644)
	}
})

func countFailed(r Report) int {
	n := 0
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType == types.NodeTypeIt && sr.Failed() {
			n++
		}
	}
	return n
}

// runScript runs a repository script and returns its stdout (what it built, one per line).
func runScript(ctx SpecContext, script string, args ...string) string {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, framework.RepoRoot()+"/"+script, args...)
	cmd.Stderr = GinkgoWriter
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "%s %s", script, strings.Join(args, " "))
	return strings.TrimSpace(string(out))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
