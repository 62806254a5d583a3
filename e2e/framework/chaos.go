package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxyclient "github.com/Shopify/toxiproxy/v2/client"
	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/stampede-e2e/stampede/e2e/chaos"
	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/traffic"
	"github.com/stampede-e2e/stampede/manifests"
	"github.com/stampede-e2e/stampede/manifests/components/toxiproxy"
)

// DeployParams shape a deployment that the plain Deploy does not make.
type DeployParams struct {
	Strategy string
	// Config holds extra TOKENSVC_* settings (manifests.Params.Config).
	Config map[string]string
	// Toxiproxy puts toxiproxy between the token service and PostgreSQL: the service's
	// database host becomes the toxiproxy Service.
	Toxiproxy bool
}

// ChaosDeployment is a Deployment that faults act on.
type ChaosDeployment struct {
	*Deployment
	// Toxiproxy drives the toxiproxy in front of PostgreSQL; nil without one.
	Toxiproxy *toxiproxyclient.Client
}

// ChaosTarget describes the suite's cluster to a fault before anything is deployed: enough for
// Available.
func (e *Env) ChaosTarget() *chaos.Target {
	return &chaos.Target{
		Client:         e.Client,
		Replicas:       e.Config.Replicas,
		Mode:           e.Config.Mode,
		Cluster:        e.Config.ClusterName,
		ToxiproxyImage: e.Config.ToxiproxyImage,
		Logger:         e.Logger,
	}
}

// SkipUnlessAvailable skips the running spec, with the fault's reason, when f cannot run in this
// cluster: a fault is never faked.
func (e *Env) SkipUnlessAvailable(f chaos.Fault) {
	GinkgoHelper()
	if err := f.Available(e.ChaosTarget()); err != nil {
		Skip(err.Error())
	}
}

// DeployChaos is Deploy with the settings of p: extra configuration and, when asked, toxiproxy
// in front of PostgreSQL (deployed, ready, and reachable through a port-forward to its API).
func (e *Env) DeployChaos(ctx context.Context, p DeployParams) *ChaosDeployment {
	GinkgoHelper()
	key, err := NewSigningKey()
	Expect(err).NotTo(HaveOccurred())
	d := &Deployment{
		Env:       e,
		Strategy:  p.Strategy,
		Namespace: "stampede-" + p.Strategy + "-" + randomSuffix(),
		Key:       key,
		Dir:       filepath.Join(e.Config.Artifacts, specDirName()),
	}
	Expect(os.MkdirAll(d.Dir, 0o755)).To(Succeed())
	config := map[string]string{}
	for k, v := range p.Config {
		config[k] = v
	}
	if p.Toxiproxy {
		Expect(e.Config.ToxiproxyImage).NotTo(BeEmpty(), "toxiproxy image")
		config["TOKENSVC_DATABASE_HOST"] = toxiproxy.Name
		config["TOKENSVC_DATABASE_PORT"] = strconv.Itoa(toxiproxy.ProxyPort)
	}
	password := randomSuffix() + randomSuffix()
	objs, err := manifests.Render(manifests.Params{
		Strategy:         p.Strategy,
		Namespace:        d.Namespace,
		TokensvcImage:    e.Config.TokensvcImage,
		PostgresImage:    e.Config.PostgresImage,
		Replicas:         e.Config.Replicas,
		SigningKeyPEM:    key.PrivatePEM,
		PostgresPassword: password,
		Config:           config,
	})
	Expect(err).NotTo(HaveOccurred(), "render manifests")
	if p.Toxiproxy {
		proxy, err := toxiproxy.Render(d.Namespace, e.Config.ToxiproxyImage)
		Expect(err).NotTo(HaveOccurred(), "render toxiproxy")
		// After the Namespace, before the workloads: the service's first connection goes to it.
		objs = append(objs[:1:1], append(proxy, objs[1:]...)...)
	}

	how := ""
	if p.Toxiproxy {
		how = ", database traffic through toxiproxy"
	}
	By(fmt.Sprintf("deploying the %s strategy into %s%s", p.Strategy, d.Namespace, how))
	DeferCleanup(d.delete, NodeTimeout(2*time.Minute))
	DeferCleanup(d.dumpOnFailure, NodeTimeout(2*time.Minute))
	applied := time.Now()
	Expect(e.Applier.Apply(ctx, objs)).To(Succeed())

	cd := &ChaosDeployment{Deployment: d}
	if p.Toxiproxy {
		d.waitReady(ctx, toxiproxy.Name, 1)
		By("opening a port-forward to toxiproxy's API")
		port, stop, err := PortForward(ctx, e.RestConfig, e.Client, d.Namespace, nameLabel+"="+toxiproxy.Name, toxiproxy.APIPort)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(stop)
		cd.Toxiproxy = toxiproxyclient.NewClient(fmt.Sprintf("127.0.0.1:%d", port))
		Eventually(ctx, func() error {
			_, err := cd.Toxiproxy.Proxy(toxiproxy.ProxyName)
			return err
		}).WithTimeout(30*time.Second).WithPolling(time.Second).Should(Succeed(), "toxiproxy's proxy %s", toxiproxy.ProxyName)
	}
	d.waitDatabase(ctx)
	d.waitReady(ctx, tokensvcName, int32(e.Config.Replicas))
	rollout := time.Since(applied)
	d.waitEndpoints(ctx, e.Config.Replicas)
	By("waiting until every ready pod answers through the Service from every node")
	d.WaitServedEverywhere(ctx)
	// One line per deployment that a run's log can be grepped for: issue 8's rollouts took 2 min.
	e.Logger.Info("deployment serving", "namespace", d.Namespace, "strategy", p.Strategy,
		"rollout", rollout.Round(time.Millisecond), "serving", time.Since(applied).Round(time.Millisecond))

	By("opening a port-forward to the database, the ground truth")
	port, stop, err := PortForward(ctx, e.RestConfig, e.Client, d.Namespace, nameLabel+"="+postgresName, 5432)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(stop)
	d.DSN = fmt.Sprintf("postgres://tokensvc:%s@127.0.0.1:%d/tokensvc?sslmode=disable", password, port)
	return cd
}

// Target is what a fault acts on: this deployment in the suite's cluster.
func (d *ChaosDeployment) Target() *chaos.Target {
	t := d.Env.ChaosTarget()
	t.Namespace = d.Namespace
	t.Toxiproxy = d.Toxiproxy
	return t
}

// FaultParams shape a run under a fault.
type FaultParams struct {
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
	return fmt.Sprintf("%-16s during fault %-45s recovery %-10s violations %d  (%s on %s, %s; %d rounds, %d requests, verdict %s)",
		o.Plan.Fault, o.During, rec, len(o.Result.Violations), o.Plan, o.Event.Target, o.Event.Detail, o.Rounds, o.Result.Requests, o.Result.Verdict)
}

type roundResult struct {
	round chaos.Round
	out   *traffic.Outcome
	err   error
}

// StampedeUnderFault sends rounds of new first-registration bursts, one round every RoundEvery,
// fires the fault at the plan's offset, holds it, recovers it, and keeps sending until a round
// launched after the fault's end succeeds whole (or the bound passes). Then every customer
// registers once more, as a client that gave up during the fault would, and it reads the
// database, runs the same checker as every spec over the whole history, measures the success
// ratio during the fault and the recovery time, and writes the report with the fault's event.
// It asserts only that the run was usable; the spec judges the outcome.
func (d *ChaosDeployment) StampedeUnderFault(ctx context.Context, p FaultParams) FaultOutcome {
	GinkgoHelper()
	p.setDefaults()
	log := d.Env.Logger
	target := d.Target()
	// Enough customers for the longest run: offset, hold, recovery waits and the bound.
	maxRounds := int((p.Plan.Offset+p.Plan.Hold+2*chaos.RecoverTimeout+p.RecoveryBound)/p.RoundEvery) + 1
	pool := d.Env.Customers(p.Salt, maxRounds*p.RoundCustomers)

	By(fmt.Sprintf("sending a round of %d customers x %d simultaneous first registrations every %s; fault %s", p.RoundCustomers, p.Burst, p.RoundEvery, p.Plan))
	base := time.Now()
	since := func() time.Duration { return time.Since(base) }
	launchCtx, stopLaunching := context.WithCancel(ctx)
	defer stopLaunching()
	var (
		mu      sync.Mutex
		results []roundResult
		wg      sync.WaitGroup
		done    = make(chan struct{}, maxRounds)
	)
	launcher := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(launcher)
		sem := make(chan struct{}, maxRoundsInFlight)
		tick := time.NewTicker(p.RoundEvery)
		defer tick.Stop()
		for i := 0; i < maxRounds; i++ {
			select {
			case sem <- struct{}{}:
			case <-launchCtx.Done():
				return
			}
			customers := pool[i*p.RoundCustomers : (i+1)*p.RoundCustomers]
			wg.Add(1)
			go func(i int) {
				defer func() { <-sem; wg.Done(); done <- struct{}{} }()
				out, err := traffic.Run(ctx, traffic.Params{
					URL: d.Env.ServiceURL, Customers: customers, Burst: p.Burst, Gap: p.Gap,
					Retry: p.Retry, Logger: quietLogger,
				})
				r := roundResult{out: out, err: err, round: chaos.Round{Index: i}}
				if out != nil {
					r.round.Start = out.Base.Sub(base)
					r.round.Ops = chaos.Shift(out.History, r.round.Start)
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}(i)
			select {
			case <-tick.C:
			case <-launchCtx.Done():
				return
			}
		}
	}()
	rounds := func() []chaos.Round {
		mu.Lock()
		defer mu.Unlock()
		rs := make([]chaos.Round, 0, len(results))
		for _, r := range results {
			rs = append(rs, r.round)
		}
		return rs
	}

	o := FaultOutcome{Plan: p.Plan, Event: history.Event{Kind: history.EventFault, Name: p.Fault.Name()}}
	// Pacing the fault on purpose: it fires at the planned offset into the traffic.
	if err := sleepCtx(ctx, p.Plan.Offset-since()); err == nil {
		o.Event.Start = since()
		log.Info("injecting fault", "fault", p.Fault.Name(), "plan", p.Plan.String())
		var inj *chaos.Injection
		inj, o.InjectErr = p.Fault.Inject(ctx, target, p.Plan)
		if o.InjectErr == nil {
			o.Event.Target, o.Event.Detail = inj.Target, inj.Detail
			log.Info("fault injected", "fault", p.Fault.Name(), "target", inj.Target, "detail", inj.Detail, "held", inj.Held)
			if inj.Held {
				_ = sleepCtx(ctx, p.Plan.Hold) // pacing the fault on purpose: the planned hold
			}
			log.Info("recovering fault", "fault", p.Fault.Name(), "target", inj.Target)
			o.RecoverErr = inj.Recover(context.WithoutCancel(ctx))
		}
		o.Event.End = since()
		log.Info("fault ended", "fault", p.Fault.Name(), "event", o.Event.String(), "recover_err", o.RecoverErr)
	}

	if o.InjectErr == nil && o.RecoverErr == nil {
		By("waiting for a whole round of new bursts to succeed after the fault")
		deadline := time.NewTimer(p.RecoveryBound + 30*time.Second) // the bound, plus a round's retries
		func() {
			defer deadline.Stop()
			for {
				if _, ok := chaos.Recovery(rounds(), o.Event.End); ok {
					return
				}
				select {
				case <-done:
				case <-deadline.C:
					return
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	stopLaunching()
	<-launcher // no wg.Add after this, so that Wait is not racing with it
	wg.Wait()

	mu.Lock()
	var (
		all       []history.Op
		customers []history.Customer
		errs      []error
	)
	slices.SortFunc(results, func(a, b roundResult) int { return a.round.Index - b.round.Index })
	for _, r := range results {
		all = append(all, r.round.Ops...)
		customers = append(customers, pool[r.round.Index*p.RoundCustomers:(r.round.Index+1)*p.RoundCustomers]...)
		if r.err != nil {
			errs = append(errs, fmt.Errorf("round %d: %w", r.round.Index, r.err))
		}
	}
	o.Rounds = len(results)
	mu.Unlock()
	o.Recovery, o.Recovered = chaos.Recovery(rounds(), o.Event.End)

	// The client that gave up during the fault comes back once it is over: one more request
	// for every customer. A customer whose registration was lost has no row to return; one that
	// got a token before must get the same token again (the checker's one-token rule), and
	// every customer must end with a token (its final-token rule).
	By(fmt.Sprintf("registering all %d customers once more after the fault: each must get its one token", len(customers)))
	catchUp, err := traffic.Run(ctx, traffic.Params{
		URL: d.Env.ServiceURL, Customers: customers, Burst: 1, Gap: 10 * time.Millisecond,
		Retry: p.Retry, Logger: d.Env.Logger,
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("catch-up: %w", err))
	}
	if catchUp != nil {
		for _, op := range chaos.Shift(catchUp.History, catchUp.Base.Sub(base)) {
			op.Seq += p.Burst // request ids distinct from the bursts'
			all = append(all, op)
		}
	}
	slices.SortStableFunc(all, func(a, b history.Op) int { return int(a.Call - b.Call) })
	if o.Recovered && o.Recovery > p.RecoveryBound {
		o.Recovered = false
	}
	o.During = chaos.Window(all, o.Event)

	o.Outcome = d.judge(ctx, all, customers, base, p.Coverage)
	d.writeFaultReport(o)
	AddReportEntry("chaos "+p.Fault.Name(), o.Line())
	GinkgoWriter.Println(o.Line())
	appendChaosSummary(d.Env.Config.Artifacts, o.Line())
	Expect(errors.Join(errs...)).NotTo(HaveOccurred(), "traffic rounds")
	return o
}

// judge reads the rows of customers, checks ops against them and writes the report, as
// Stampede does for one traffic run.
func (d *Deployment) judge(ctx context.Context, ops []history.Op, customers []history.Customer, base time.Time, coverage check.CoverageParams) Outcome {
	GinkgoHelper()
	By("reading every customer row from the database")
	merchants := map[string]bool{}
	for _, c := range customers {
		merchants[c.MerchantID] = true
	}
	var ms []string
	for m := range merchants {
		ms = append(ms, m)
	}
	var (
		rows []check.Row
		err  error
	)
	Eventually(ctx, func() error {
		rows, err = ReadRows(ctx, d.DSN, ms)
		if err != nil {
			// A fault may have replaced the database pod or frozen its node, and a port-forward
			// does not survive either: open a new one for the next attempt.
			err = errors.Join(err, d.reforwardDatabase(ctx))
		}
		return err
	}).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Succeed(), "read rows")

	By("checking every customer got exactly one valid, consistent token, faults and all")
	res, err := check.Check(ops, rows, check.Params{
		PublicKey: d.Key.Public,
		Issuer:    Issuer,
		Customers: customers,
		Coverage:  coverage,
	})
	Expect(err).NotTo(HaveOccurred(), "checker params")
	run := report.Run{Repro: d.Env.Repro(), History: ops, Result: res,
		Burst: metricsOf(ops, base, history.PhaseBurst), Retry: metricsOf(ops, base, history.PhaseRetry)}
	Expect(report.Write(d.Dir, run)).To(Succeed())
	GinkgoWriter.Println(mustSummary(run))
	return Outcome{Traffic: &traffic.Outcome{Base: base, History: ops, Metrics: run.Burst, RetryMetrics: run.Retry}, Rows: rows, Result: res}
}

// metricsOf rebuilds vegeta's metrics of one phase from the recorded ops, for the report.
func metricsOf(ops []history.Op, base time.Time, phase history.Phase) vegeta.Metrics {
	var m vegeta.Metrics
	for _, op := range ops {
		if op.Phase != phase {
			continue
		}
		r := vegeta.Result{Code: uint16(op.Status), Timestamp: base.Add(op.Call), Error: op.Error}
		if op.Return > 0 {
			r.Latency = op.Return - op.Call
		}
		m.Add(&r)
	}
	m.Close()
	return m
}

func mustSummary(run report.Run) string {
	var b strings.Builder
	_ = run.WriteSummary(&b)
	return b.String()
}

// writeFaultReport writes the fault's event and figures next to the spec's report.
func (d *ChaosDeployment) writeFaultReport(o FaultOutcome) {
	GinkgoHelper()
	f, err := os.Create(filepath.Join(d.Dir, "events.jsonl"))
	Expect(err).NotTo(HaveOccurred())
	Expect(errors.Join(history.WriteEventsJSONL(f, []history.Event{o.Event}), f.Close())).To(Succeed())
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
	}
	b, err := json.MarshalIndent(figures, "", "  ")
	Expect(err).NotTo(HaveOccurred())
	d.WriteFile("chaos.json", append(b, '\n'))
}

// ChaosSummaryFile collects one line per chaos spec of a run, in the artifacts directory.
const ChaosSummaryFile = "chaos-summary.txt"

// AppendChaosSummary adds a line to the run's ChaosSummaryFile, such as a canary's detection
// rates.
func (e *Env) AppendChaosSummary(line string) { appendChaosSummary(e.Config.Artifacts, line) }

func appendChaosSummary(dir, line string) {
	f, err := os.OpenFile(filepath.Join(dir, ChaosSummaryFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		GinkgoWriter.Printf("chaos summary: %v\n", err)
		return
	}
	_, err = fmt.Fprintln(f, line)
	if err = errors.Join(err, f.Close()); err != nil {
		GinkgoWriter.Printf("chaos summary: %v\n", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Detected counts the customers (one burst each) in which o caught a known-broken strategy:
// for legacy a 2xx token with an empty subject, for return-existing a duplicated customer.
func Detected(strategy string, o Outcome) chaos.Detection {
	det := chaos.Detection{Customers: o.Result.Customers}
	switch strategy {
	case "legacy":
		for _, v := range o.Result.Violations {
			if v.Rule != check.RuleTokenMatchesRow {
				continue
			}
			for _, d := range v.Details {
				if strings.Contains(d, "empty subject") {
					det.Caught++
					break
				}
			}
		}
	case "return-existing":
		det.Caught = o.Result.DuplicateCustomers
	}
	return det
}

// reforwardDatabase opens a new port-forward to the database and points DSN at it.
func (d *Deployment) reforwardDatabase(ctx context.Context) error {
	port, stop, err := PortForward(ctx, d.Env.RestConfig, d.Env.Client, d.Namespace, nameLabel+"="+postgresName, 5432)
	if err != nil {
		return fmt.Errorf("port-forward to the database again: %w", err)
	}
	DeferCleanup(stop)
	u, err := url.Parse(d.DSN)
	if err != nil {
		stop()
		return fmt.Errorf("parse DSN: %w", err)
	}
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	d.DSN = u.String()
	return nil
}

// DetectedAny counts the customers (one burst each) with at least one violation of any rule:
// whether the checker caught the strategy at all, whatever the bug looked like.
func DetectedAny(o Outcome) chaos.Detection {
	caught := map[history.Key]bool{}
	for _, v := range o.Result.Violations {
		caught[v.Customer.Key()] = true
	}
	return chaos.Detection{Customers: o.Result.Customers, Caught: len(caught)}
}
