//go:build e2e

// Package e2e is stampede's Ginkgo suite: a kind cluster (or an existing one), the token service
// replicated behind a Service, concurrent first-registration bursts, and a checker that every
// customer got exactly one valid, consistent token, with the database as ground truth.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/stampede-e2e/stampede/e2e/framework"
	"github.com/stampede-e2e/stampede/e2e/report"
)

// cfg judges the bundled token service unless -e2e.target (TARGET=) names another target.
var (
	cfg = framework.Config{DefaultTarget: "targets/tokensvc/target.yaml"}
	env *framework.Env
)

func init() { cfg.RegisterFlags(flag.CommandLine) }

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "stampede e2e")
}

// BeforeSuite brings up the cluster and the images (framework.Setup); its cleanup deletes what
// this run made, even on Ctrl-C.
var _ = BeforeSuite(func(ctx SpecContext) {
	env = framework.Setup(ctx, &cfg)
}, NodeTimeout(30*time.Minute))

// The specs still to start: a deployment starts the next one's database ahead only when one
// follows.
var _ = ReportBeforeSuite(func(r Report) { framework.CountSpecs(r) })
var _ = ReportBeforeEach(func(r SpecReport) { framework.SpecStarting(r) })

// A failed spec ends with the line that replays it; the report entries of every spec (their
// summaries) are gathered into one summary of the run, printed and kept in the artifacts.
var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() {
		for _, line := range framework.MissingPermissions() {
			fmt.Fprintln(GinkgoWriter, line)
		}
	}
	if r.Failed() && env != nil {
		fmt.Fprintf(GinkgoWriter, "repro: %s\n", framework.ReproLine(&env.Config, r.FullText()))
	}
})

var _ = ReportAfterSuite("run summary", func(r Report) {
	var b strings.Builder
	fmt.Fprintf(&b, "stampede e2e: %d specs run, %d failed\n", r.PreRunStats.SpecsThatWillRun, countFailed(r))
	if ref := cfg.TargetRef(); ref != nil {
		fmt.Fprintf(&b, "target %s: %s (%s)\n", ref.Name, ref.File, ref.Digest)
	}
	// The rights the API server refused this run, each once: what to grant (manifests/rbac).
	for _, line := range framework.MissingPermissions() {
		fmt.Fprintln(&b, line)
	}
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt || sr.State.Is(types.SpecStateSkipped) {
			continue
		}
		fmt.Fprintf(&b, "\n== %s: %s (%s)\n", sr.State, sr.FullText(), sr.RunTime.Round(time.Millisecond))
		for _, e := range sr.ReportEntries {
			if strings.HasPrefix(e.Name, "summary") || strings.Contains(e.Name, "detection") {
				fmt.Fprintf(&b, "-- %s\n%s\n", e.Name, strings.TrimSpace(e.StringRepresentation()))
			}
		}
	}
	if cfg.Artifacts != "" {
		fmt.Fprintf(&b, "\nreport: %s\n", filepath.Join(cfg.Artifacts, report.HTMLFile))
	}
	fmt.Print(b.String())
	info := report.RunInfo{RunID: cfg.RunID, Seed: cfg.Seed, Target: cfg.TargetRef(), Start: r.StartTime.UTC()}
	results := framework.RunResults(r, info)
	if cfg.Artifacts != "" {
		// The specs and the cleanup join the timeline that the scripts and Setup began;
		// scripts/e2e.sh adds what comes after the suite and prints it (stampede timeline).
		for _, err := range []error{
			report.WriteTextFile(cfg.Artifacts, report.RunSummaryFile, b.String()),
			report.WriteJSONFile(cfg.Artifacts, report.ResultsFile, results),
			framework.RecordSuiteStages(cfg.Artifacts, r),
			report.KeepStages(cfg.Artifacts),
			report.WriteRunHTML(cfg.Artifacts, info, report.SpecsFromGinkgo(r)),
		} {
			if err != nil {
				fmt.Println("run summary:", err)
			}
		}
	}
	// A CI job page shows this file (GitHub Actions); elsewhere the variable is unset.
	if path := os.Getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			_, _ = f.WriteString(results.Markdown())
			_ = f.Close()
		}
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
