//go:build e2e

package e2e

import (
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

var _ = Describe("First registration under concurrency", Label("registration"), func() {
	for _, strategy := range []string{"atomic", "fail-fast"} {
		It("gives every customer exactly one valid, consistent token with the "+strategy+" strategy",
			Label(strategy, "invariants"), func(ctx SpecContext) {
				d := env.Deploy(ctx, framework.DeployParams{Strategy: strategy})
				o := d.Stampede(ctx, bursts(1))
				expectRaceExercised(d, o)
				if o.Result.Verdict != check.VerdictPass {
					d.Failf(o, "%s broke the invariants", strategy)
				}
				Expect(o.Result.EmptySubjects).To(BeZero())
				Expect(o.Result.DuplicateCustomers).To(BeZero())
			}, SpecTimeout(cfg.Timeout))
	}

	It("catches the seed's bug in the legacy strategy: the canary", Label("legacy", "canary"), func(ctx SpecContext) {
		d := env.Deploy(ctx, framework.DeployParams{Strategy: "legacy"})
		o := d.Stampede(ctx, bursts(2))
		// The figures a soak pools (make soak): customers caught by their known bug, of all,
		// recorded before any verdict so that a canary that caught nothing still counts.
		caught := check.Detect("legacy", o.Result)
		AddReportEntry("canary.caught", caught.Caught, ReportEntryVisibilityNever)
		AddReportEntry("canary.customers", caught.Customers, ReportEntryVisibilityNever)
		expectRaceExercised(d, o)
		By("expecting null-subject tokens answered with 200: the suite must still see what it exists for")
		if o.Result.EmptySubjects == 0 || o.Result.Counts[check.RuleTokenMatchesRow] == 0 {
			d.Failf(o, "the canary found no null-subject token in %d customers: the suite no longer catches the seed's bug", o.Result.Customers)
		}
		Expect(o.Result.Verdict).To(Equal(check.VerdictFail))
		AddReportEntry("legacy detection", map[string]int{
			"customers":           o.Result.Customers,
			"empty_subject_2xx":   o.Result.EmptySubjects,
			"customers_affected":  o.Result.Counts[check.RuleTokenMatchesRow],
			"duplicate_customers": o.Result.DuplicateCustomers,
		})
	}, SpecTimeout(cfg.Timeout))

	// What was established of return-existing (service/README.md, and this spec's runs): the
	// one-line fix removes the null-subject token, but without a unique constraint two pods
	// still both create the customer under a simultaneous first registration, so customers end
	// with duplicate rows and two different tokens.
	It("shows the return-existing strategy still duplicates customers", Label("return-existing"), func(ctx SpecContext) {
		d := env.Deploy(ctx, framework.DeployParams{Strategy: "return-existing"})
		o := d.Stampede(ctx, bursts(3))
		expectRaceExercised(d, o)
		Expect(o.Result.EmptySubjects).To(BeZero(), "return-existing must never sign an empty subject")
		if o.Result.DuplicateCustomers == 0 {
			d.Failf(o, "no duplicate customer in %d: what was established of return-existing no longer holds", o.Result.Customers)
		}
		Expect(o.Result.Counts[check.RuleOneRow]).To(BeNumerically(">", 0))
		Expect(o.Result.Counts[check.RuleOneToken]).To(BeNumerically(">", 0), "duplicates mean two tokens")
		AddReportEntry("return-existing", map[string]int{
			"customers":           o.Result.Customers,
			"duplicate_customers": o.Result.DuplicateCustomers,
			"two_tokens":          o.Result.Counts[check.RuleOneToken],
		})
	}, SpecTimeout(cfg.Timeout))

	// OWASP API1 under the race: half the customers get every other request of their burst
	// with another tenant's key, so each burst mixes refused and served requests on several
	// pods at once; then customers whose every request carries a foreign key. Each foreign
	// request must be refused 403 (the checker's auth rule), and none may create a customer.
	It("refuses a tenant's key for another tenant's customers under concurrency",
		Label("atomic", "auth"), func(ctx SpecContext) {
			d := env.Deploy(ctx, framework.DeployParams{Strategy: "atomic"})
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

	It("answers concurrent requests for existing customers with the one token they already have",
		Label("atomic", "existing-customers"), func(ctx SpecContext) {
			d := env.Deploy(ctx, framework.DeployParams{Strategy: "atomic"})
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
