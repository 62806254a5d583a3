//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stampede-e2e/stampede/e2e/chaos"
	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/framework"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/manifests"
)

// durabilityCrashes bounds the crashes the durability canary tries before it calls the run
// inconclusive; durabilityRoundEvery keeps registrations committing right up to each crash.
const (
	durabilityCrashes    = 3
	durabilityRoundEvery = 100 * time.Millisecond
)

// canaryLatency is the db-latency under which the canary must catch each known-broken mode in
// every run.
const (
	canaryLatency = 20 * time.Millisecond
	canaryJitter  = 10 * time.Millisecond
)

// The chaos specs take minutes each: scripts/e2e.sh leaves them out unless LABELS selects them
// (make e2e-chaos, make nightly with LABELS=all).
//
// Spec texts stay short, with the fault or strategy early: the artifacts directory is named
// after the first 80 characters of the spec's full text.
//
// Every fault runs on the target's first exactly-once mode, the canary under db-latency on each
// of its known-broken modes (framework.PlanSpecs).
var _ = Describe("Chaos", Label("chaos"), func() {
	plan, ok := planOrFail()
	if !ok {
		return
	}
	mode := plan.Primary()
	for i, f := range chaos.Registry {
		It("keeps "+mode+"'s invariants under "+f.Name(), Label(f.Name(), mode), func(ctx SpecContext) {
			skipFor(plan.NoExactlyOnce)
			if chaos.NeedsToxiproxy(f) {
				skipFor(plan.NoProxy)
			}
			env.SkipUnlessAvailable(f)
			env.SkipUnlessRoundsReachService()
			plan := chaos.NewPlan(env.Config.Seed, f.Name())
			By("planning the fault from the seed: " + plan.String())
			d := env.Deploy(ctx, framework.DeployParams{Strategy: mode, Toxiproxy: chaos.NeedsToxiproxy(f), DurableDatabase: true})
			_, crash := f.(chaos.DBCrash)
			if crash {
				// The durability canary's "on" twin: it proves durability only if it is on.
				d.ExpectSynchronousCommit(ctx, "on")
			}
			o := d.StampedeUnderFault(ctx, framework.FaultParams{
				Fault:    f,
				Plan:     plan,
				Salt:     uint64(100 + i),
				Burst:    env.Config.Burst,
				Retry:    framework.DefaultRetry,
				Coverage: coverage,
			})
			Expect(o.InjectErr).NotTo(HaveOccurred(), "inject %s", f.Name())
			Expect(o.RecoverErr).NotTo(HaveOccurred(), "recover %s", f.Name())
			Expect(o.During.Requests).To(BeNumerically(">", 0), "no request was sent while %s was on: the run proves nothing", f.Name())
			expectRaceExercised(d, o.Outcome)
			if o.Result.Verdict != check.VerdictPass {
				d.Failf(o.Outcome, "%s broke the invariants under %s", mode, f.Name())
			}
			if crash {
				expectAcknowledgedBeforeCrash(d, o)
			}
			Expect(o.Result.EmptySubjects).To(BeZero())
			Expect(o.Result.DuplicateCustomers).To(BeZero())
			Expect(o.Recovered).To(BeTrue(), "after %s ended, no whole round of new bursts succeeded within the bound", f.Name())
		}, SpecTimeout(cfg.ChaosTimeout()))
	}

	// The canary under chaos: latency on the database path widens the window between a
	// mode's lookup and its insert, so each known-broken mode must be caught in every run with
	// it, and the detection rates with and without it are reported.
	if plan.NoCanary != "" {
		It("canary under db-latency: caught, with the detection rate with and without it", Label("db-latency", "canary"), func() {
			Skip(plan.NoCanary)
		})
	}
	for i, c := range plan.Canaries {
		strategy := c.Mode
		It(fmt.Sprintf("canary %s under db-latency: caught, with the detection rate with and without it", strategy),
			Label("db-latency", "canary", strategy), func(ctx SpecContext) {
				skipFor(plan.NoProxy)
				env.SkipUnlessAvailable(chaos.DBLatency{})
				d := env.Deploy(ctx, framework.DeployParams{Strategy: strategy, Toxiproxy: true, DurableDatabase: true})
				p := bursts(uint64(200 + 10*i))
				p.Name = "without-latency"
				without := d.Stampede(ctx, p)

				By(fmt.Sprintf("adding %s ± %s of latency between the service and PostgreSQL", canaryLatency, canaryJitter))
				inj, err := chaos.AddLatency(ctx, d.Target(), canaryLatency, canaryJitter)
				Expect(err).NotTo(HaveOccurred())
				p = bursts(uint64(201 + 10*i))
				p.Name = "with-latency"
				with := d.Stampede(ctx, p)
				Expect(inj.Recover(ctx)).To(Succeed())

				// Its own findings (modes[].canary.findings) and any violation: uniform latency
				// keeps simultaneous requests in step, so a lookup-then-insert mode's losers more
				// often insert too (duplicates) than find the winner's row.
				off, on := c.Detect(without.Result), c.Detect(with.Result)
				anyOff, anyOn := check.DetectAny(without.Result), check.DetectAny(with.Result)
				bug := check.BugName(c.Mode, c.Findings)
				line := fmt.Sprintf("%-16s per burst, without latency: %s %s, any violation %s; with %s±%s latency: %s %s, any violation %s",
					strategy, bug, off, anyOff, canaryLatency, canaryJitter, bug, on, anyOn)
				AddReportEntry("canary under db-latency "+strategy, line)
				AddReportEntry("canary.detection_rate_without_latency", off.Rate(), ReportEntryVisibilityNever)
				AddReportEntry("canary.detection_rate_with_latency", on.Rate(), ReportEntryVisibilityNever)
				GinkgoWriter.Println(line)
				d.WriteFile(report.DetectionFile, []byte(line+"\n"))
				env.AppendChaosSummary(line)
				expectRaceExercised(d, without)
				expectRaceExercised(d, with)
				// Caught means one of its findings, not any violation: a wording change or an
				// unrelated failure must not pass for detection.
				if on.Caught == 0 {
					d.Failf(with, "the canary under db-latency did not find %s's known bug (%s) in %d customers", strategy, bug, on.Customers)
				}
				if canarySpecOf(plan.Target, strategy).caughtWithoutLatency && off.Caught == 0 {
					d.Failf(without, "%s showed no %s without latency in %d customers", strategy, bug, off.Customers)
				}
				expectNoneOfNever(d, c, without)
				expectNoneOfNever(d, c, with)
			}, SpecTimeout(cfg.ChaosTimeout()))
	}

	// The durability canary: PostgreSQL with synchronous_commit=off acknowledges a commit before
	// its WAL is written, and db-crash (SIGKILL, no clean shutdown) must then lose acknowledged
	// registrations that the checker finds (check.AsyncCommit's known bug: a consistent 2xx
	// naming a row the database no longer has). atomic on the default synchronous_commit=on
	// must lose none under the same crash: that is "keeps atomic's invariants under db-crash".
	// It needs the bundled PostgreSQL, whose setting it turns off, and an exactly-once mode.
	It("canary db-crash with synchronous_commit=off: lost acknowledged registrations are found",
		Label("db-crash", "canary", "durability", mode), func(ctx SpecContext) {
			skipFor(plan.NoDurability)
			skipFor(plan.NoExactlyOnce)
			env.SkipUnlessAvailable(chaos.DBCrash{})
			env.SkipUnlessRoundsReachService()
			d := env.Deploy(ctx, framework.DeployParams{Strategy: mode, Components: []string{manifests.ComponentPostgresAsyncCommit}, DurableDatabase: true})
			d.ExpectSynchronousCommit(ctx, "off")
			known, ok := check.KnownBugOf(check.AsyncCommit)
			Expect(ok).To(BeTrue())
			var (
				last  framework.FaultOutcome
				lines []string
				found check.Detection
			)
			crashUntil(ctx, d, env.Config.Seed, 300, durabilityCrashes, func(o framework.FaultOutcome) bool {
				// A catch counts only for a write acknowledged within check.DurabilityWindow before
				// the kill landed: what synchronous_commit=off can lose, not any row lost any time.
				last, found = o, check.DetectDurable(o.Result, o.Event, check.DurabilityWindow)
				lines = append(lines, fmt.Sprintf("crash %d: %s acknowledged within %s before the kill %s, any violation %s, %d acknowledged in that window, %d requests during the fault",
					len(lines)+1, known.Bug, check.DurabilityWindow, found, check.DetectAny(o.Result),
					check.AcknowledgedBeforeCrash(o.Traffic.History, o.Event, check.DurabilityWindow), o.During.Requests))
				return found.Caught > 0
			})
			line := fmt.Sprintf("%-16s synchronous_commit=off under db-crash: %s", "durability", strings.Join(lines, "; "))
			AddReportEntry("durability canary", line)
			AddReportEntry("durability.caught_customers", found.Caught, ReportEntryVisibilityNever)
			AddReportEntry("durability.crashes", len(lines), ReportEntryVisibilityNever)
			GinkgoWriter.Println(line)
			d.WriteFile(report.DetectionFile, []byte(line+"\n"))
			env.AppendChaosSummary(line)
			if found.Caught == 0 {
				d.Failf(last.Outcome, "inconclusive: %d crashes of PostgreSQL with synchronous_commit=off lost no acknowledged registration the checker could see (%s)",
					durabilityCrashes, strings.Join(lines, "; "))
			}
		}, SpecTimeout(cfg.ChaosTimeout()*durabilityCrashes))
})

// crashUntil crashes d's PostgreSQL (db-crash) under rounds of bursts every
// durabilityRoundEvery, so that commits are in flight when the crash lands, at most max times
// and until stop says enough was seen. Crash n is planned from planSeed and "db-crash#n", sends
// the customers of salt+n, and is judged in its own report (crash-n).
func crashUntil(ctx context.Context, d *framework.Deployment, planSeed, salt uint64, max int, stop func(framework.FaultOutcome) bool) []framework.FaultOutcome {
	GinkgoHelper()
	var out []framework.FaultOutcome
	for crash := 1; crash <= max; crash++ {
		plan := chaos.NewPlan(planSeed, fmt.Sprintf("db-crash#%d", crash))
		plan.Fault = chaos.DBCrash{}.Name()
		By(fmt.Sprintf("crash %d of at most %d: %s", crash, max, plan))
		o := d.StampedeUnderFault(ctx, framework.FaultParams{
			Name:       fmt.Sprintf("crash-%d", crash),
			Fault:      chaos.DBCrash{},
			Plan:       plan,
			Salt:       salt + uint64(crash),
			Burst:      env.Config.Burst,
			RoundEvery: durabilityRoundEvery,
			Retry:      framework.DefaultRetry,
			Coverage:   coverage,
		})
		Expect(o.InjectErr).NotTo(HaveOccurred(), "inject db-crash")
		Expect(o.RecoverErr).NotTo(HaveOccurred(), "recover db-crash")
		expectAcknowledgedBeforeCrash(d, o)
		out = append(out, o)
		if stop(o) {
			break
		}
	}
	return out
}

// expectAcknowledgedBeforeCrash fails o as inconclusive unless some registration was
// acknowledged within check.DurabilityWindow before its db-crash landed: without one, nothing
// the crash could lose was at stake, and losing nothing proves nothing.
func expectAcknowledgedBeforeCrash(d *framework.Deployment, o framework.FaultOutcome) {
	GinkgoHelper()
	if n := check.AcknowledgedBeforeCrash(o.Traffic.History, o.Event, check.DurabilityWindow); n == 0 {
		d.Failf(o.Outcome, "inconclusive: no registration was acknowledged within %s before the crash landed (%s): nothing was at stake",
			check.DurabilityWindow, o.Event)
	}
}
