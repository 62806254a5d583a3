package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/chaos"
	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// FaultParams shape a run under a fault.
type FaultParams struct {
	// Name, when set, puts this run's report in a subdirectory of the spec's artifacts (a spec
	// that runs the fault several times).
	Name  string
	Fault chaos.Fault
	Plan  chaos.Plan
	// Salt derives this spec's customers from the suite's seed.
	Salt uint64
	// RoundCustomers are the new customers of each round (4 if zero), each hit by Burst
	// simultaneous requests, one burst every Gap (150 ms if zero).
	RoundCustomers, Burst int
	Gap                   time.Duration
	// RoundEvery is how often a round is launched (1 s if zero), whatever the rounds before it
	// are doing: so the resolution of the recovery time does not depend on retries.
	RoundEvery time.Duration
	// Retry is how a client retries each round's failures.
	Retry    traffic.RetryParams
	Coverage check.CoverageParams
	// RecoveryBound is how long after the fault ends a round must succeed whole (2 min if zero).
	RecoveryBound time.Duration
}

func (p *FaultParams) setDefaults() {
	if p.RoundCustomers <= 0 {
		p.RoundCustomers = 4
	}
	if p.Gap <= 0 {
		p.Gap = 150 * time.Millisecond
	}
	if p.RoundEvery <= 0 {
		p.RoundEvery = time.Second
	}
	if p.RecoveryBound <= 0 {
		p.RecoveryBound = 2 * time.Minute
	}
}

// quietLogger takes the logs of the rounds' traffic: one line per round would bury the fault's.
var quietLogger = slog.New(slog.DiscardHandler)

// maxRoundsInFlight bounds the rounds that run at once, retries included: a fault that makes
// every request time out must not pile up unbounded load.
const maxRoundsInFlight = 8

// FaultOutcome is a judged run under a fault, with the fault's figures.
type FaultOutcome struct {
	Outcome
	Plan  chaos.Plan
	Event history.Event
	// During are the requests sent while the fault was on.
	During chaos.WindowStats
	// Recovered says whether a whole round of new bursts succeeded within the bound after the
	// fault ended, and Recovery how long after its end that round had returned.
	Recovered bool
	Recovery  time.Duration
	Rounds    int
	// InjectErr and RecoverErr are the fault's own failures.
	InjectErr, RecoverErr error
}

// Line is the fault's figures in one line: what the closing note of a chaos run lists.
func (o FaultOutcome) Line() string {
	rec := "not within the bound"
	if o.Recovered {
		rec = o.Recovery.Round(10 * time.Millisecond).String()
	}
	tail := "-"
	for _, t := range o.Result.FaultTails {
		tail = t.Tail.Round(10 * time.Millisecond).String()
		if !t.Measured {
			tail += " (constant)"
		}
	}
	return fmt.Sprintf("%-16s during fault %-45s recovery %-10s tail %-10s violations %d  (%s on %s, %s; %d rounds, %d requests, verdict %s)",
		o.Plan.Fault, o.During, rec, tail, len(o.Result.Violations), o.Plan, o.Event.Target, o.Event.Detail, o.Rounds, o.Result.Requests, o.Result.Verdict)
}

// StampedeUnderFault sends rounds of new first-registration bursts, one round every RoundEvery,
// fires the fault at the plan's offset, holds it, recovers it, and keeps sending until a round
// launched after the fault's end succeeds whole (or the bound passes). Then every customer
// registers once more, as a client that gave up during the fault would, and it reads the
// database, runs the same checker as every spec over the whole history, measures the success
// ratio during the fault and the recovery time, and writes the report with the fault's event.
// The steps are chaos's fault runner (LaunchRounds, Apply, AwaitRecovery, Stop); every traffic
// run records on the spec's clock, and comes from this host or, with -e2e.traffic=cluster, from
// attacker pods that take rounds inside the cluster (roundSender). It asserts only that the run
// was usable; the spec judges.
func (d *Deployment) StampedeUnderFault(ctx context.Context, p FaultParams) FaultOutcome {
	GinkgoHelper()
	p.setDefaults()
	send := d.roundSender(ctx)
	// Enough customers for the longest run: offset, hold, recovery waits and the bound.
	maxRounds := int((p.Plan.Offset+p.Plan.Hold+2*chaos.RecoverTimeout+p.RecoveryBound)/p.RoundEvery) + 1
	pool := d.Env.Customers(p.Salt, maxRounds*p.RoundCustomers)
	customersOf := func(i int) []history.Customer { return pool[i*p.RoundCustomers : (i+1)*p.RoundCustomers] }

	byDesign := d.rivalAnswer()
	o, all, err := d.roundsUnderFault(ctx, p, send, maxRounds, customersOf, byDesign)
	var (
		ops       []history.Op
		customers []history.Customer
		errs      = []error{err}
	)
	for _, r := range all {
		ops = append(ops, r.Ops...)
		customers = append(customers, customersOf(r.Index)...)
	}
	o.Rounds = len(all)
	o.Recovery, o.Recovered = chaos.Recovery(all, o.Event.End, byDesign)

	catchUp, err := d.registerAgain(ctx, p, send, customers)
	errs = append(errs, err)
	ops = append(ops, catchUp...) // on the spec's clock, with request ids of their own
	slices.SortStableFunc(ops, func(a, b history.Op) int { return int(a.Call - b.Call) })
	if o.Recovered && o.Recovery > p.RecoveryBound {
		o.Recovered = false
	}
	o.During = chaos.Window(ops, o.Event)

	dir := d.Dir
	if p.Name != "" {
		dir = filepath.Join(d.Dir, p.Name)
	}
	writeTrafficErrors(dir, errors.Join(errs...), d.Env.Config.Target.Nouns().Credential)
	o.Outcome = d.judge(ctx, judged{ops: ops, customers: customers, faults: []history.Event{o.Event}, coverage: p.Coverage, dir: dir})
	d.writeFaultReport(dir, o)
	AddReportEntry("chaos "+p.Fault.Name(), o.Line())
	d.reportFaultFigures(p.Fault.Name(), o)
	GinkgoWriter.Println(o.Line())
	appendChaosSummary(d.Env.Config.Artifacts, o.Line())
	Expect(errors.Join(errs...)).NotTo(HaveOccurred(), "traffic rounds")
	return o
}

// roundsUnderFault launches the rounds, applies the fault over them, waits for a round that
// succeeds whole after it when the fault ran, and stops the rounds: chaos's fault runner, with
// this spec's traffic; byDesign is the recovery's (chaos.Recovery). The outcome holds the plan
// and what the fault did.
func (d *Deployment) roundsUnderFault(ctx context.Context, p FaultParams, send attack.Sender, maxRounds int,
	customersOf func(int) []history.Customer, byDesign func(history.Op) bool) (FaultOutcome, []chaos.Round, error) {
	GinkgoHelper()
	nouns := d.Env.Config.Target.Nouns()
	By(fmt.Sprintf("sending a round of %d %s x %d simultaneous first registrations every %s from %s; fault %s",
		p.RoundCustomers, nouns.Entities, p.Burst, p.RoundEvery, d.Env.Config.TrafficSource(), p.Plan))
	trafficStart := d.Clock.Since()
	rounds := chaos.LaunchRounds(ctx, chaos.RoundsParams{
		Every: p.RoundEvery, Max: maxRounds, MaxInFlight: maxRoundsInFlight, Since: d.Clock.Since,
		Run: func(ctx context.Context, i int) ([]history.Op, error) {
			return send.Send(ctx, d.batch(customersOf(i), p.Burst, p.Gap, p.Retry, traffic.ForeignKeys{}, quietLogger))
		},
	})
	applied := chaos.Apply(ctx, p.Fault, d.Target(), p.Plan, trafficStart, d.Clock.Since, d.Env.Logger)
	o := FaultOutcome{Plan: p.Plan, Event: applied.Event, InjectErr: applied.InjectErr, RecoverErr: applied.RecoverErr}
	if applied.Ok() {
		By("waiting for a whole round of new bursts to succeed after the fault")
		rounds.AwaitRecovery(ctx, o.Event.End, p.RecoveryBound+30*time.Second, byDesign) // the bound, plus a round's retries
	}
	all, err := rounds.Stop()
	return o, all, err
}

// registerAgain sends one more request for every customer once the fault is over. The client
// that gave up during the fault comes back: a customer whose registration was lost has no row
// to return; one that got a token before must get the same token again (the checker's
// one-credential rule), and every customer must end with a token (its final-credential rule).
func (d *Deployment) registerAgain(ctx context.Context, p FaultParams, send attack.Sender, customers []history.Customer) ([]history.Op, error) {
	GinkgoHelper()
	nouns := d.Env.Config.Target.Nouns()
	By(fmt.Sprintf("registering all %d %s once more after the fault: each must get its one %s", len(customers), nouns.Entities, nouns.Credential))
	catchUp, err := send.Send(ctx, d.batch(customers, 1, 10*time.Millisecond, p.Retry, traffic.ForeignKeys{}, d.Env.Logger))
	if err != nil {
		return catchUp, fmt.Errorf("catch-up: %w", err)
	}
	return catchUp, nil
}

// writeTrafficErrors writes err, when there is one, beside the judgement in dir. The spec fails
// on it afterwards; until then the judgement is written as usual, and this says beside it that
// violations may come from requests missing from the history.
func writeTrafficErrors(dir string, err error, credential string) {
	GinkgoHelper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("the traffic of this run failed, so its history is incomplete: requests that rounds sent may be "+
		"missing from it, and the judgement beside this file may count their rows or %ss as violations.\n\n%v\n", credential, err)
	Expect(report.WriteTextFile(dir, report.TrafficErrorsFile, msg)).To(Succeed())
}

// reportFaultFigures adds the figures of o, an outcome of the fault named fault, as report
// entries, one each: JUnit properties, results.json, the CI summary and the trend read them.
func (d *Deployment) reportFaultFigures(fault string, o FaultOutcome) {
	recovery := -1.0
	if o.Recovered {
		recovery = o.Recovery.Seconds()
	}
	tail := -1.0 // not measured: the constant tail applied
	for _, t := range o.Result.FaultTails {
		if t.Measured {
			tail = t.Tail.Seconds()
		}
	}
	for name, v := range map[string]any{
		"traffic.source":                   d.Env.Config.TrafficSource(),
		report.FigureFault:                 fault,
		"chaos.success_ratio_during_fault": o.During.Ratio(),
		"chaos.requests_during_fault":      o.During.Requests,
		"chaos.recovery_seconds":           recovery,
		"chaos.fault_tail_seconds":         tail,
		"chaos.violations":                 len(o.Result.Violations),
	} {
		AddReportEntry(name, v, ReportEntryVisibilityNever)
	}
}

// writeFaultReport writes the fault's event and figures next to the spec's report.
func (d *Deployment) writeFaultReport(dir string, o FaultOutcome) {
	GinkgoHelper()
	figures := map[string]any{
		"fault":          o.Plan.Fault,
		"plan":           o.Plan,
		"event":          o.Event,
		"during":         o.During,
		"during_ratio":   o.During.Ratio(),
		"recovered":      o.Recovered,
		"recovery_ns":    o.Recovery,
		"recovery":       o.Recovery.String(),
		"violations":     len(o.Result.Violations),
		"verdict":        o.Result.Verdict,
		"rounds":         o.Rounds,
		"inject_error":   errString(o.InjectErr),
		"recover_error":  errString(o.RecoverErr),
		"coverage":       o.Result.Coverage,
		"empty_subjects": o.Result.EmptySubjects,
		"fault_tails":    o.Result.FaultTails,
	}
	Expect(report.WriteJSONFile(dir, report.ChaosFile, figures)).To(Succeed())
}

// AppendChaosSummary adds a line to the run's report.ChaosSummaryFile, such as a canary's
// detection rates.
func (e *Env) AppendChaosSummary(line string) { appendChaosSummary(e.Config.Artifacts, line) }

func appendChaosSummary(dir, line string) {
	if err := report.AppendLine(dir, report.ChaosSummaryFile, line); err != nil {
		GinkgoWriter.Printf("chaos summary: %v\n", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// rivalAnswer is the mode's answers to a race's losers by contract (check.Contract.RivalAnswer),
// which a fault's recovery counts as the service working.
func (d *Deployment) rivalAnswer() func(history.Op) bool {
	GinkgoHelper()
	api, err := check.APIFromTarget(d.Env.Config.Target)
	Expect(err).NotTo(HaveOccurred(), "the target's API")
	contract, err := api.Contract(d.Strategy)
	Expect(err).NotTo(HaveOccurred(), "the contract of mode %s", d.Strategy)
	return contract.RivalAnswer(&api)
}
