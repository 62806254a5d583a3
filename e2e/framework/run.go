package framework

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// BurstParams shape one spec's traffic.
type BurstParams struct {
	// Name, when set, puts this run's report in a subdirectory of the spec's artifacts (a spec
	// with several runs).
	Name string
	// Customers are hit by Burst simultaneous first-registration requests each.
	Customers []history.Customer
	Burst     int
	// Retry is how a real client retries 409/503 and transport errors afterwards.
	Retry traffic.RetryParams
	// Coverage is the coverage guard's threshold.
	Coverage check.CoverageParams
	// Registered are customers that registered before this run (the checker's created rule:
	// every 2xx to them says created=false).
	Registered []history.Customer
	// Foreign sends some customers' requests with another tenant's API key (the checker's
	// auth rule: each must be refused 403, and no such request may create the customer).
	Foreign traffic.ForeignKeys
}

// Outcome is a judged run: the history and the checker's result.
type Outcome struct {
	Traffic *traffic.Outcome
	Rows    []check.Row
	Result  check.Result
	// API is the target's API the run was judged by: what a success's body carries.
	API *check.API
	// Summary is the report's summary of the run.
	Summary string
}

// DefaultRetry is the client behaviour the specs assume: a handful of retries of 409/503 and
// transport errors, honouring Retry-After up to 2 s.
var DefaultRetry = traffic.RetryParams{MaxAttempts: 5, MaxWait: 2 * time.Second}

// Customers derives n customers of this run from the suite's seed and a per-spec salt, so that
// a printed seed replays the same customers. They are spread over one tenant per ten
// customers, at least two (so that every two consecutive customers are two tenants' under
// one key: traffic.Customers' colliding tenants) and never more than
// traffic.MaxTenants: the tenants that have API keys.
func (e *Env) Customers(salt uint64, n int) []history.Customer {
	return traffic.Customers(e.Config.Seed^salt, n, min(traffic.MaxTenants, max(2, n/10)))
}

// Stampede sends the bursts, reads the database, runs the checker and writes the report into the
// spec's artifacts directory. It asserts nothing about the verdict: the spec does.
func (d *Deployment) Stampede(ctx context.Context, p BurstParams) Outcome {
	GinkgoHelper()
	dir := d.Dir
	if p.Name != "" {
		dir = filepath.Join(d.Dir, p.Name)
	}
	var sender attack.Sender
	nouns := d.Env.Config.Target.Nouns()
	switch d.Env.Config.Traffic {
	case TrafficCluster:
		By(fmt.Sprintf("sending %d %s x %d simultaneous first registrations to %s from %d attacker pods inside the cluster",
			len(p.Customers), nouns.Entities, p.Burst, d.clusterURL(), d.Env.Config.Attackers))
		sender = d.jobSender(dir)
	default:
		By(fmt.Sprintf("sending %d %s x %d simultaneous first registrations to %s", len(p.Customers), nouns.Entities, p.Burst, d.Env.ServiceURL))
		sender = d.hostSender()
	}
	ops, err := sender.Send(ctx, d.batch(p.Customers, p.Burst, d.Env.Config.Gap, p.Retry, p.Foreign, nil))
	Expect(err).NotTo(HaveOccurred(), "traffic")
	d.noteClocks(sender)
	o := d.judge(ctx, judged{ops: ops, customers: p.Customers, registered: p.Registered, coverage: p.Coverage, dir: dir})
	suffix := ""
	if p.Name != "" {
		suffix = "[" + p.Name + "]"
	}
	spread := report.BurstSpread(ops)
	AddReportEntry("traffic.source"+suffix, d.Env.Config.TrafficSource(), ReportEntryVisibilityNever)
	AddReportEntry("traffic.spread_p50_ms"+suffix, spread.P50.Seconds()*1000, ReportEntryVisibilityNever)
	AddReportEntry("traffic.spread_p99_ms"+suffix, spread.P99.Seconds()*1000, ReportEntryVisibilityNever)
	AddReportEntry("traffic.rate"+suffix, spread.Rate, ReportEntryVisibilityNever)
	AddReportEntry("summary "+d.Strategy, o.Summary)
	return o
}

// wrongKeys is the auth surface of every spec's bursts (traffic.DefaultWrongKeys): some
// customers' bursts carry no key, a malformed, an unknown and another tenant's key among
// their own, each judged by the checker's auth rule. A deployment without API keys gets none,
// and so does a run of single requests (a registration one request at a time, a chaos spec's
// catch-up), which races nothing and must reach every customer with its own key.
func wrongKeys(keys map[string]string, burst int) traffic.WrongKeys {
	if len(keys) == 0 || burst < 2 {
		return traffic.WrongKeys{}
	}
	return traffic.DefaultWrongKeys
}

// judged is what judge reads: the history of a spec's traffic and what it must be judged by.
type judged struct {
	ops        []history.Op
	customers  []history.Customer
	registered []history.Customer
	faults     []history.Event
	coverage   check.CoverageParams
	dir        string
}

// judge reads the rows of the customers, checks the history against them by the strategy's
// contract and writes the report: the one read / check / report path of every spec, under a
// fault or not.
func (d *Deployment) judge(ctx context.Context, j judged) Outcome {
	GinkgoHelper()
	api, err := check.APIFromTarget(d.Env.Config.Target)
	Expect(err).NotTo(HaveOccurred(), "the target's API")
	contract, err := api.Contract(d.Strategy)
	Expect(err).NotTo(HaveOccurred(), "the contract of mode %s", d.Strategy)
	rows := d.readRowsEventually(ctx, j.customers)
	j.coverage = d.completeCoverage(ctx, j)
	params := d.checkParams(ctx, api, contract, j)
	d.planned = append(d.planned, j.customers...)
	res, err := check.Check(j.ops, rows, params)
	Expect(err).NotTo(HaveOccurred(), "checker params")
	// A live answer without its headers was recorded by an older recorder (a stale attacker
	// image): api-shape would pass it unjudged.
	Expect(res.HeadersUnrecorded).To(BeZero(), "answers recorded without their headers (Content-Type, Cache-Control, WWW-Authenticate): the recorder predates them; rebuild the attacker image")
	run := report.Run{Repro: d.Env.Repro(), Base: d.Clock.Base(), History: j.ops, Result: res, Params: params, Rows: rows}
	writeAndRecheck(j.dir, run, api)
	summary := d.reportVerdict(j.dir, run, j.ops)
	return Outcome{Traffic: &traffic.Outcome{Clock: d.Clock, History: j.ops}, Rows: rows, Result: res, API: &api, Summary: summary}
}

// readRowsEventually reads the rows of the customers' tenants from the database, the ground
// truth, retrying through a new port-forward when a fault broke the last one.
func (d *Deployment) readRowsEventually(ctx context.Context, customers []history.Customer) []check.Row {
	GinkgoHelper()
	By(fmt.Sprintf("reading every %s row from the database", d.Env.Config.Target.Nouns().Entity))
	tenants := map[string]bool{}
	for _, c := range customers {
		tenants[c.Tenant] = true
	}
	ms := slices.Sorted(maps.Keys(tenants))
	var rows []check.Row
	Eventually(ctx, func() (err error) {
		rows, err = ReadRows(ctx, d.DSN, d.Env.Config.Target.Truth, ms)
		if err != nil {
			// A fault may have replaced the database pod or frozen its node, and a port-forward
			// does not survive either: open a new one for the next attempt.
			err = errors.Join(err, d.reforwardDatabase(ctx))
		}
		return err
	}).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(Succeed(), "read rows")
	return rows
}

// completeCoverage fills in what j's coverage leaves to the run: the replicas that served it,
// the clocks' disagreement on a cluster not made here, and the suite's client-only allowance.
func (d *Deployment) completeCoverage(ctx context.Context, j judged) check.CoverageParams {
	GinkgoHelper()
	cov := j.coverage
	if len(j.faults) == 0 && len(cov.ReadyPods) == 0 {
		// Without a fault the replicas are those that served the run; a fault may replace pods.
		var err error
		cov.ReadyPods, err = readyPodsFromSlices(ctx, d.Env.Client, d.Namespace, d.Env.Config.serviceName())
		Expect(err).NotTo(HaveOccurred(), "read the target's ready replicas")
	}
	if d.Env.Config.Mode == "existing" && cov.ClockSkewBound == 0 {
		// Nodes of a cluster not made here may disagree on the time: an overlap of two handlers
		// counts only beyond what the clocks' disagreement could explain, and so does one
		// attacker's call after another's return (RuleCreated). The attackers' clocks were
		// corrected onto this host's up to attackerClocks.
		cov.ClockSkewBound = max(check.EstimateSkew(j.ops).Bound, d.attackerClocks)
	}
	cov.AllowClientOnly = cov.AllowClientOnly || d.Env.Config.AllowClientOnlyCoverage
	return cov
}

// checkParams reads the witnesses beside the history (the replicas' outcome counters, the
// JWKS, the pods' restarts), moving the counters' and the pods' bases on to the next
// judgement, and gathers them with j into the checker's parameters.
func (d *Deployment) checkParams(ctx context.Context, api check.API, contract check.Contract, j judged) check.Params {
	GinkgoHelper()
	By("reading every replica's outcome counters, the second witness of what was answered")
	after := d.scrapeRegistrationsEventually(ctx)
	scrapes := &check.MetricsScrapes{Before: d.metricsBase, After: after}
	d.metricsBase = after
	var jwks []check.JWKSFetch
	if d.Env.Config.jwksPath() != "" { // a target that publishes no keys has none to fetch
		By("fetching the JWKS through the Service and from every replica, as the clients that verify the tokens do")
		jwks = d.fetchJWKSEventually(ctx)
	}
	By("reading the target's pods: a restart or a replacement that no fault excuses breaks the contract")
	pods := d.lookAtPodsEventually(ctx)
	restarts := PodChanges(d.podsBase, pods, d.Clock.Base())
	d.podsBase = pods
	nouns := d.Env.Config.Target.Nouns()
	By(fmt.Sprintf("checking every %s got exactly one valid, consistent %s, by the %s contract", nouns.Entity, nouns.Credential, contract.Strategy))
	return check.Params{
		API:        api,
		PublicKey:  d.Key.Public,
		JWKS:       jwks,
		Issuer:     d.verifier.Issuer,
		Audience:   d.verifier.Audience,
		TokenTTL:   d.verifier.TTL,
		Base:       d.Clock.Base(),
		Contract:   contract,
		Faults:     j.faults,
		Registered: j.registered,
		Customers:  j.customers,
		Earlier:    slices.Clip(d.planned),
		Coverage:   j.coverage,
		Restarts:   restarts,
		Scrapes:    scrapes,
	}
}

// writeAndRecheck writes run's report into dir and judges it again from the files alone: what
// was saved must judge the same offline (stampede check), checked here while the live verdict
// is at hand.
func writeAndRecheck(dir string, run report.Run, api check.API) {
	GinkgoHelper()
	Expect(report.Write(dir, run)).To(Succeed())
	again, err := report.RecheckDir(dir, api)
	Expect(err).NotTo(HaveOccurred(), "re-judge the saved artifacts")
	res := run.Result
	Expect(again.Same).To(BeTrue(), "re-judging %s from its artifacts gave %s %v, the live run %s %v",
		dir, again.Fresh.Verdict, again.Fresh.Counts, res.Verdict, res.Counts)
}

// reportVerdict adds run's verdict, coverage and the latency of ops as report entries
// (suffixed with dir's name when dir is a subdirectory of the spec's), prints its summary and
// returns it.
func (d *Deployment) reportVerdict(dir string, run report.Run, ops []history.Op) string {
	GinkgoHelper()
	res := run.Result
	suffix := ""
	if dir != d.Dir {
		suffix = "[" + filepath.Base(dir) + "]"
	}
	AddReportEntry("verdict"+suffix, string(res.Verdict), ReportEntryVisibilityNever)
	AddReportEntry("coverage.client"+suffix, res.Coverage.Fraction, ReportEntryVisibilityNever)
	AddReportEntry("coverage.server"+suffix, res.Coverage.ServerFraction, ReportEntryVisibilityNever)
	// What the trend across runs draws beside the verdict (stampede trend): the latency and the
	// unknown outcomes that report.html shows for this part.
	p50, p99, _ := report.AnsweredLatency(ops)
	AddReportEntry(report.FigureLatencyP50+suffix, p50.Seconds()*1000, ReportEntryVisibilityNever)
	AddReportEntry(report.FigureLatencyP99+suffix, p99.Seconds()*1000, ReportEntryVisibilityNever)
	AddReportEntry(report.FigureRequests+suffix, res.Requests, ReportEntryVisibilityNever)
	AddReportEntry(report.FigureUnknown+suffix, res.Unknown, ReportEntryVisibilityNever)
	var summary strings.Builder
	Expect(run.WriteSummary(&summary)).To(Succeed())
	GinkgoWriter.Println(summary.String())
	return summary.String()
}

// Repro is the command that replays the running spec with the same seed: on the run's cluster
// when it is kept, or with make pre-release on the same existing cluster.
func (e *Env) Repro() string {
	return ReproLine(&e.Config, CurrentSpecReport().FullText())
}

// ReproLine is the command, ready to paste into a shell, that replays the spec named text with
// c's seed. In existing mode it is make pre-release with the same kubeconfig, context, images
// and manifests; otherwise make e2e-reuse, on the kept cluster when there is one (KEEP=true, or
// reuse mode), else reuse mode's own. LABELS=all lifts the default label filter, which leaves
// the chaos specs out. The focus is the text as a regular expression that matches only itself.
func ReproLine(c *Config, text string) string {
	var b strings.Builder
	if c.Mode == "existing" {
		b.WriteString("make pre-release")
		for _, v := range [][2]string{
			{"KUBECONFIG", c.Kubeconfig}, {"CONTEXT", c.Context},
			{"IMAGE", c.Image}, {"POSTGRES_IMAGE", c.PostgresImage},
			{"ATTACKER_IMAGE", c.AttackerImage}, {"TOXIPROXY_IMAGE", c.ToxiproxyImage}, {"MANIFESTS", c.Manifests},
		} {
			if v[1] != "" {
				b.WriteString(" " + v[0] + "=" + shellQuote(v[1]))
			}
		}
	} else {
		b.WriteString("make e2e-reuse")
		if cluster := c.KeptCluster(); cluster != "" {
			b.WriteString(" CLUSTER=" + shellQuote(cluster))
		}
	}
	if ref := c.TargetRef(); ref != nil && ref.File != c.DefaultTarget {
		b.WriteString(" TARGET=" + shellQuote(ref.File))
	}
	// make puts ARGS into a shell command line as it is: the focus is double-quoted there.
	focus := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(regexp.QuoteMeta(text))
	fmt.Fprintf(&b, " SEED=%d LABELS=all ARGS=%s", c.Seed, shellQuote(`--focus="`+focus+`"`))
	return b.String()
}

// shellQuote quotes s for a POSIX shell: as it is when it needs no quoting, else in single
// quotes, where each single quote of its own closes the quoting, is escaped, and reopens it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Failf fails the spec with the violation table and the repro line: what a reader needs first.
func (d *Deployment) Failf(o Outcome, format string, args ...any) {
	GinkgoHelper()
	var b strings.Builder
	_ = o.Result.WriteText(&b)
	Fail(fmt.Sprintf(format, args...) + "\n" + b.String() + "\nartifacts: " + d.Dir + "\nrepro: " + d.Env.Repro())
}

// WriteFile writes an extra artifact of the spec.
func (d *Deployment) WriteFile(name string, data []byte) {
	GinkgoHelper()
	Expect(report.WriteTextFile(d.Dir, name, string(data))).To(Succeed())
}

// tokensByCustomer collects the credentials of every 2xx answer per customer.
func tokensByCustomer(api *check.API, o Outcome) map[history.Key]map[string]bool {
	out := map[history.Key]map[string]bool{}
	for _, op := range o.Traffic.History {
		if !op.Succeeded() {
			continue
		}
		token, ok := api.CredentialOf(op.Body)
		if !ok {
			continue
		}
		k := op.Customer.Key()
		if out[k] == nil {
			out[k] = map[string]bool{}
		}
		out[k][token] = true
	}
	return out
}

// SameTokens reports every customer of later whose 2xx tokens are not exactly the one token the
// customer got in earlier, read by earlier's API.
func SameTokens(earlier, later Outcome) error {
	if earlier.API == nil {
		return errors.New("same tokens: the earlier outcome has no API to read credentials by")
	}
	before := tokensByCustomer(earlier.API, earlier)
	var errs []error
	for k, toks := range tokensByCustomer(earlier.API, later) {
		if len(before[k]) != 1 {
			errs = append(errs, fmt.Errorf("%s/%s had %d %ss before", k.Tenant, k.EntityKey, len(before[k]), earlier.API.Nouns().Credential))
			continue
		}
		for t := range toks {
			if !before[k][t] {
				errs = append(errs, fmt.Errorf("%s/%s got a %s it did not have before", k.Tenant, k.EntityKey, earlier.API.Nouns().Credential))
			}
		}
	}
	return errors.Join(errs...)
}

// ForeignKeyRequests counts the requests of o that carried another tenant's API key than their
// customer's: those the service must refuse 403. A run meant to test authorization that sent
// none proves nothing about it.
func ForeignKeyRequests(o Outcome) int {
	n := 0
	for _, op := range o.Traffic.History {
		if op.KeyTenant != "" && op.KeyTenant != op.Customer.Tenant {
			n++
		}
	}
	return n
}

// UnauthenticatedRequests counts the requests of o whose key named no tenant (none, malformed,
// unknown): those the service must refuse 401. A run meant to test authentication that sent
// none proves nothing about it.
func UnauthenticatedRequests(o Outcome) int {
	n := 0
	for _, op := range o.Traffic.History {
		switch op.SentKey() {
		case history.KeyNone, history.KeyMalformed, history.KeyUnknown:
			n++
		}
	}
	return n
}

// CollidingTenants counts the keys that o's requests sent under two tenants or more
// (traffic.Tenants): a run meant to test that tenants are kept apart that had none proves
// nothing about it.
func CollidingTenants(o Outcome) int {
	seen := map[history.Customer]bool{}
	var cs []history.Customer
	for _, op := range o.Traffic.History {
		if !seen[op.Customer] {
			seen[op.Customer] = true
			cs = append(cs, op.Customer)
		}
	}
	return len(traffic.Tenants(cs))
}
