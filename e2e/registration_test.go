//go:build e2e

package e2e

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/framework"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// coverage is the guard every spec shares: at least half of the customers, and at least three,
// must have had two of their requests served by different pods at overlapping times, or the run
// proves nothing and the spec fails as inconclusive.
var coverage = check.CoverageParams{MinCovered: 3, MinFraction: 0.5}

func bursts(salt uint64) framework.BurstParams {
	return framework.BurstParams{
		Customers: env.Customers(salt, env.Config.Customers),
		Burst:     env.Config.Burst,
		Retry:     framework.DefaultRetry,
		Coverage:  coverage,
	}
}

// expectRaceExercised fails the spec as inconclusive unless the coverage guard is satisfied.
func expectRaceExercised(d *framework.Deployment, o framework.Outcome) {
	GinkgoHelper()
	if !o.Result.Coverage.Sufficient {
		d.Failf(o, "inconclusive: %s", o.Result.Coverage)
	}
}

// The specs come from the target's modes (framework.PlanSpecs): the registration spec for each
// exactly-once mode, the canary for each known-broken one, then the cross-tenant and
// existing-keys specs on the first exactly-once mode. For the token service that is the order,
// the texts and the labels the specs had before they came from its file.
var _ = Describe("First registration under concurrency", Label("registration"), func() {
	plan, ok := planOrFail()
	if !ok {
		return
	}
	modes, skip := plan.ExactlyOnce, plan.NoExactlyOnce
	if skip != "" {
		modes = []string{plan.Primary()}
	}
	for _, mode := range modes {
		It(specText(plan.Target, "gives every key exactly one entity and one consistent answer in the "+mode+" mode",
			"gives every customer exactly one valid, consistent token with the "+mode+" strategy"),
			Label(mode, "invariants"), func(ctx SpecContext) {
				skipFor(skip)
				d := env.Deploy(ctx, framework.DeployParams{Strategy: mode})
				o := d.Stampede(ctx, bursts(1))
				expectRaceExercised(d, o)
				if o.Result.Verdict != check.VerdictPass {
					d.Failf(o, "%s broke the invariants", mode)
				}
				Expect(o.Result.EmptySubjects).To(BeZero())
				Expect(o.Result.DuplicateCustomers).To(BeZero())
			}, SpecTimeout(cfg.Timeout))
	}

	if plan.NoCanary != "" {
		It("catches a known-broken mode: the canary", Label("canary"), func() { Skip(plan.NoCanary) })
	}
	for i, c := range plan.Canaries {
		spec := canarySpecOf(plan.Target, c.Mode)
		It(spec.text, spec.labels, func(ctx SpecContext) {
			d := env.Deploy(ctx, framework.DeployParams{Strategy: c.Mode})
			o := d.Stampede(ctx, bursts(uint64(2+i)))
			// The figures a soak pools (make soak): customers caught by their known bug, of all,
			// recorded before any verdict so that a canary that caught nothing still counts.
			caught := c.Detect(o.Result)
			AddReportEntry("canary.caught", caught.Caught, ReportEntryVisibilityNever)
			AddReportEntry("canary.customers", caught.Customers, ReportEntryVisibilityNever)
			expectRaceExercised(d, o)
			By(fmt.Sprintf("expecting one of %s's known findings (%s): the suite must still see what it exists for", c.Mode, check.KindList(c.Findings)))
			if caught.Caught == 0 {
				d.Failf(o, "the canary found none of %s's known findings (%s) in %d customers: the suite no longer catches its bug",
					c.Mode, check.KindList(c.Findings), o.Result.Customers)
			}
			expectNoneOfNever(d, c, o)
			Expect(o.Result.Verdict).To(Equal(check.VerdictFail))
			figures := map[string]int{"customers": o.Result.Customers, "customers_caught": caught.Caught}
			for k, n := range check.CountKinds(o.Result, c.Findings...) {
				figures[string(k)] = n
			}
			AddReportEntry(c.Mode+" detection", figures)
		}, SpecTimeout(cfg.Timeout))
	}

	// OWASP API1 under the race: half the customers get every other request of their burst
	// with another tenant's key, so each burst mixes refused and served requests on several
	// pods at once; then customers whose every request carries a foreign key. Each foreign
	// request must be refused 403 (the checker's auth rule), and none may create a customer.
	It("refuses a tenant's key for another tenant's customers under concurrency",
		Label(plan.Primary(), "auth"), func(ctx SpecContext) {
			skipFor(plan.NoExactlyOnce)
			d := env.Deploy(ctx, framework.DeployParams{Strategy: plan.Primary()})
			p := bursts(6)
			p.Name = "mixed"
			p.Foreign = traffic.ForeignKeys{Customers: 0.5, Every: 2}
			mixed := d.Stampede(ctx, p)
			expectRaceExercised(d, mixed)
			if mixed.Result.Verdict != check.VerdictPass {
				d.Failf(mixed, "a burst mixing foreign and own keys broke the invariants")
			}
			Expect(mixed.Result.Refused).To(BeNumerically(">", 0), "no foreign-key request was sent and refused: the spec proves nothing")

			By("customers whose every request carries another tenant's key: all refused, none created")
			p = bursts(7)
			p.Name = "all-foreign"
			p.Foreign = traffic.ForeignKeys{Customers: 1}
			all := d.Stampede(ctx, p)
			if all.Result.Verdict == check.VerdictFail {
				d.Failf(all, "foreign keys were not all refused, or created customers")
			}
			Expect(all.Result.Refused+all.Result.Unknown).To(Equal(all.Result.Requests), "every request refused (or unanswered)")
			// The rows read are every row of these tenants, the mixed run's too: only these
			// customers' count.
			planned := map[history.Key]bool{}
			for _, c := range p.Customers {
				planned[c.Key()] = true
			}
			for _, r := range all.Rows {
				Expect(planned[history.Key{Tenant: r.Tenant, EntityKey: r.Key}]).To(BeFalse(),
					"customer %s/%s was created by requests carrying only foreign keys", r.Tenant, r.Key)
			}
		}, SpecTimeout(cfg.Timeout))

	It(specText(plan.Target, "answers concurrent requests for existing keys with the one answer they already have",
		"answers concurrent requests for existing customers with the one token they already have"),
		Label(plan.Primary(), "existing-customers"), func(ctx SpecContext) {
			skipFor(plan.NoExactlyOnce)
			d := env.Deploy(ctx, framework.DeployParams{Strategy: plan.Primary()})
			p := bursts(4)
			By("registering the customers one request at a time")
			first := d.Stampede(ctx, framework.BurstParams{Name: "register", Customers: p.Customers, Burst: 1, Retry: p.Retry})
			if len(first.Result.Violations) > 0 {
				d.Failf(first, "registering one request at a time broke the invariants")
			}
			By("expecting the coverage guard to call that run inconclusive: one request per customer races nothing")
			Expect(first.Result.Verdict).To(Equal(check.VerdictInconclusive))
			By("bursting the same customers again: every answer must say created=false")
			p.Name = "existing"
			p.Registered = p.Customers
			second := d.Stampede(ctx, p)
			expectRaceExercised(d, second)
			if second.Result.Verdict != check.VerdictPass {
				d.Failf(second, "existing customers broke the invariants")
			}
			Expect(framework.SameTokens(first, second)).To(Succeed(), "every response the same token as at registration")
		}, SpecTimeout(cfg.Timeout))
})

// canarySpec is a canary spec's text and labels.
type canarySpec struct {
	text   string
	labels Labels
	// caughtWithoutLatency asks the canary under db-latency to catch the mode without the
	// latency too, not only with it.
	caughtWithoutLatency bool
}

// earlierCanaries keep the texts and labels the token service's two canaries had before the
// specs came from its target file: soak's tables, the report and the artifacts directories know
// a spec by its text, and LABELS filters by its labels. return-existing duplicates customers
// whatever the latency, so its canary under db-latency must catch it without latency as well.
var earlierCanaries = map[[2]string]canarySpec{
	{"tokensvc", "legacy"}:          {text: "catches the seed's bug in the legacy strategy: the canary", labels: Label("legacy", "canary")},
	{"tokensvc", "return-existing"}: {text: "shows the return-existing strategy still duplicates customers", labels: Label("return-existing"), caughtWithoutLatency: true},
}

// canarySpecOf is the canary spec of target's mode: its earlier text, or the neutral one.
func canarySpecOf(target, mode string) canarySpec {
	if s, ok := earlierCanaries[[2]string{target, mode}]; ok {
		return s
	}
	return canarySpec{text: "catches the known bug of the " + mode + " mode: the canary", labels: Label(mode, "canary")}
}

// specText is a spec's text: neutral, but the token service's as it always read, which LABELS
// focus lines, selftest.md and soaks name.
func specText(target, neutral, tokensvc string) string {
	if target == "tokensvc" {
		return tokensvc
	}
	return neutral
}

// expectNoneOfNever fails the spec when o holds a finding c's bug never produces
// (target.Canary.Never): the canary then failed for another bug than its own.
func expectNoneOfNever(d *framework.Deployment, c framework.CanaryMode, o framework.Outcome) {
	GinkgoHelper()
	if len(c.Never) == 0 {
		return
	}
	By(fmt.Sprintf("expecting none of what %s's bug never does (%s)", c.Mode, check.KindList(c.Never)))
	if never := check.DetectKinds(o.Result, c.Never...); never.Caught > 0 {
		d.Failf(o, "%d of %d customers got a finding %s never produces (%s): another bug than its own",
			never.Caught, o.Result.Customers, c.Mode, check.KindList(c.Never))
	}
}
