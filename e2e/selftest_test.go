//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/stampede-e2e/stampede/e2e/chaos"
	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/cluster"
	"github.com/stampede-e2e/stampede/e2e/framework"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/traffic"
	"github.com/stampede-e2e/stampede/internal/ctxtime"
	"github.com/stampede-e2e/stampede/service/mutants"
)

// The self-test (make selftest, LABELS=selftest): the suite's own kill ratio. Each variant of
// service/mutants is deployed from the tokensvc-selftest image (the build tag selftest; the
// production image has none of them) and must be caught by its scenario; the control, the same
// image with no mutant, must pass every scenario. The table goes to selftest.md in the run's
// artifacts and into the run's summary.

var selftestImage struct {
	once sync.Once
	ref  string
	err  error
}

// selftestTokensvc returns the self-test image, built and loaded into the nodes once per run
// (or named by -e2e.selftest-image for a cluster that pulls its images).
func selftestTokensvc(ctx context.Context) string {
	GinkgoHelper()
	selftestImage.once.Do(func() {
		if env.Config.SelftestImage != "" {
			selftestImage.ref = env.Config.SelftestImage
			return
		}
		if env.LoadImages == nil {
			selftestImage.err = fmt.Errorf("%s mode cannot load a local image: pass -e2e.selftest-image (a tokensvc image built with -tags %s)", env.Config.Mode, mutants.BuildTag)
			return
		}
		By("building the self-test image (scripts/build-image.sh tokensvc-selftest) and loading it into the nodes")
		images, err := cluster.BuildImages(ctx, framework.RepoRoot(), GinkgoWriter, "tokensvc-selftest")
		if err == nil && images["tokensvc-selftest"] == "" {
			err = fmt.Errorf("scripts/build-image.sh printed no tokensvc-selftest image")
		}
		if err == nil {
			err = env.LoadImages(ctx, images["tokensvc-selftest"])
		}
		selftestImage.ref, selftestImage.err = images["tokensvc-selftest"], err
	})
	Expect(selftestImage.err).NotTo(HaveOccurred(), "the self-test image")
	return selftestImage.ref
}

// selftestCrashes bounds the crashes a db-crash scenario tries before it gives up.
const selftestCrashes = 3

// runSelftestScenario sends scenario's traffic to d and returns the checker's results, each run
// also judged and reported like any spec's. stop says, after each crash, whether enough was
// seen; other scenarios make a fixed set of runs.
func runSelftestScenario(ctx context.Context, d *framework.Deployment, s mutants.Scenario, salt uint64, stop func(check.Result) bool) []check.Result {
	GinkgoHelper()
	switch s {
	case mutants.ScenarioBurst:
		p := bursts(salt)
		p.Name = "burst"
		o := d.Stampede(ctx, p)
		// issue 18: every burst carries keys of no tenant and colliding tenants; without them
		// the auth and tenants mutants would survive for want of traffic, not of a rule.
		if framework.UnauthenticatedRequests(o) == 0 || framework.CollidingTenants(o) == 0 {
			d.Failf(o, "inconclusive: %d requests with a key of no tenant, %d keys under two tenants: the burst lacks the auth surface or colliding tenants",
				framework.UnauthenticatedRequests(o), framework.CollidingTenants(o))
		}
		return []check.Result{o.Result}
	case mutants.ScenarioExisting:
		p := bursts(salt)
		p.Name = "register"
		first := d.Stampede(ctx, p)
		// The defects this exposes sign in a later second than the row's creation: start the
		// second burst once the clock has passed the second after the newest row's.
		var newest time.Time
		for _, r := range first.Rows {
			if r.CreatedAt.After(newest) {
				newest = r.CreatedAt
			}
		}
		Expect(ctxtime.Sleep(ctx, time.Until(newest.Truncate(time.Second).Add(time.Second)))).To(Succeed()) // pacing on purpose
		p.Name, p.Registered = "existing", p.Customers
		second := d.Stampede(ctx, p)
		return []check.Result{first.Result, second.Result}
	case mutants.ScenarioForeignKeys:
		// As the cross-tenant spec's mixed run: half the customers send every other request
		// with another tenant's key.
		p := bursts(salt)
		p.Name = "foreign-keys"
		p.Foreign = traffic.ForeignKeys{Customers: 0.5, Every: 2}
		o := d.Stampede(ctx, p)
		if framework.ForeignKeyRequests(o) == 0 {
			d.Failf(o, "inconclusive: no request carried another tenant's key, so nothing tested authorization")
		}
		return []check.Result{o.Result}
	case mutants.ScenarioScale:
		// issue 18, faults: the chaos spec's scale fault, planned from the seed and the salt, so
		// that rounds of bursts reach new replicas as soon as they report ready.
		plan := chaos.NewPlan(env.Config.Seed^salt, chaos.Scale{}.Name())
		By("scaling under rounds of bursts: " + plan.String())
		o := d.StampedeUnderFault(ctx, framework.FaultParams{Name: "scale", Fault: chaos.Scale{}, Plan: plan, Salt: salt,
			Burst: env.Config.Burst, Retry: framework.DefaultRetry, Coverage: coverage})
		Expect(o.InjectErr).NotTo(HaveOccurred(), "inject scale")
		Expect(o.RecoverErr).NotTo(HaveOccurred(), "recover scale")
		return []check.Result{o.Result}
	case mutants.ScenarioDBCrash:
		var out []check.Result
		for _, o := range crashUntil(ctx, d, env.Config.Seed^salt, salt, selftestCrashes, func(o framework.FaultOutcome) bool { return stop(o.Result) }) {
			out = append(out, o.Result)
		}
		return out
	}
	Fail(fmt.Sprintf("unknown self-test scenario %q", s))
	return nil
}

// A target whose image is not the one with a self-test build (selftestBuild) ships no mutants:
// every self-test spec is then skipped with that reason.
var _ = Describe("Self-test", Label("selftest"), func() {
	plan, ok := planOrFail()
	if !ok {
		return
	}
	It("control: the self-test build with no mutant passes every scenario", Label("control"), func(ctx SpecContext) {
		skipFor(plan.NoSelftest)
		start := time.Now()
		d := env.Deploy(ctx, framework.DeployParams{Strategy: mutants.Strategy, Image: selftestTokensvc(ctx), DurableDatabase: true})
		// The durability twin of async-commit: its db-crash proves something only if it is on.
		d.ExpectSynchronousCommit(ctx, "on")
		row := framework.SelftestRow{Variant: framework.SelftestControl, Doc: "the self-test build, TOKENSVC_MUTANT empty"}
		var results []check.Result
		// existing begins with a burst: these cover every scenario of the catalog.
		for i, s := range []mutants.Scenario{mutants.ScenarioExisting, mutants.ScenarioForeignKeys, mutants.ScenarioDBCrash, mutants.ScenarioScale} {
			row.Scenarios = append(row.Scenarios, string(s))
			// One crash: the control must lose nothing under it. Salts 10 apart: a db-crash run's
			// k-th crash plans its customers with salt+k, which must not be the next scenario's.
			results = append(results, runSelftestScenario(ctx, d, s, uint64(400+10*i), func(check.Result) bool { return true })...)
		}
		row = framework.JudgeControl(row, results)
		row.Duration = time.Since(start)
		AddReportEntry("selftest", framework.MarshalSelftestRow(row))
		if !row.ControlPassed() {
			Fail(row.Why + ": every kill of this run is in doubt")
		}
	}, SpecTimeout(cfg.Timeout+2*cfg.ChaosTimeout()))

	for i, m := range mutants.All {
		timeout := cfg.Timeout
		switch m.Scenario {
		case mutants.ScenarioDBCrash:
			timeout = cfg.ChaosTimeout() * selftestCrashes
		case mutants.ScenarioScale:
			timeout = cfg.ChaosTimeout()
		}
		It(fmt.Sprintf("kills mutant %s (%s)", m.Name, m.Scenario), Label(m.Name), func(ctx SpecContext) {
			skipFor(plan.NoSelftest)
			start := time.Now()
			d := env.Deploy(ctx, framework.DeployParams{Strategy: mutants.Strategy, Image: selftestTokensvc(ctx),
				Config: map[string]string{mutants.EnvVar: m.Name}, DurableDatabase: m.Scenario == mutants.ScenarioDBCrash})
			if m.Name == mutants.AsyncCommit {
				// Its own connections turn synchronous_commit off: shown by the service's sessions.
				d.ExpectSynchronousCommit(ctx, "off")
			}
			row := framework.SelftestRow{Variant: m.Name, Doc: m.Doc, Scenarios: []string{string(m.Scenario)}, Expected: m.Rules, Silent: m.Silent,
				ExpectInconclusive: m.Inconclusive}
			results := runSelftestScenario(ctx, d, m.Scenario, uint64(500+10*i), func(r check.Result) bool { return r.Verdict == check.VerdictFail })
			row = framework.JudgeMutant(row, results)
			row.Duration = time.Since(start)
			AddReportEntry("selftest", framework.MarshalSelftestRow(row))
			GinkgoWriter.Printf("selftest %s: %s\n", m.Name, row.Why)
			if !row.Killed {
				Fail(fmt.Sprintf("mutant %s survived: %s (%s)\nartifacts: %s\nrepro: %s", m.Name, row.Why, m.Doc, d.Dir, env.Repro()))
			}
		}, SpecTimeout(timeout))
	}
})

// The self-test's table, from the specs' report entries: selftest.md and selftest.json in the
// run's artifacts, and printed.
var _ = ReportAfterSuite("selftest table", func(r Report) {
	var rows []framework.SelftestRow
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			continue
		}
		for _, e := range sr.ReportEntries {
			if e.Name != "selftest" {
				continue
			}
			var row framework.SelftestRow
			if err := json.Unmarshal([]byte(e.StringRepresentation()), &row); err == nil {
				rows = append(rows, row)
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	table := framework.SelftestTable(rows)
	fmt.Print("\nself-test\n" + table)
	if cfg.Artifacts != "" {
		for _, err := range []error{
			report.WriteTextFile(cfg.Artifacts, report.SelftestTableFile, table),
			report.WriteJSONFile(cfg.Artifacts, report.SelftestJSONFile, rows),
		} {
			if err != nil {
				fmt.Println("selftest table:", err)
			}
		}
	}
})
