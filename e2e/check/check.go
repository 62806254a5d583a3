// Package check judges a recorded stampede run. Its functions are pure: they
// read a history and the database rows the caller fetched, and return a Result;
// they never do I/O and never assert.
package check

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// Rule names one invariant of a registration.
type Rule string

// The rules, in the order they are reported.
const (
	// RuleOneRow: the database holds exactly one row per customer key (no row
	// after a 2xx is a lost registration; two or more are duplicates).
	RuleOneRow Rule = "one-row"
	// RuleValidToken: every 2xx carries a token signed (EdDSA only) with the key of the
	// published JWKS that its header's kid names, by the expected issuer, for the expected audience, expiring exactly the
	// token TTL after its iat and not expired when the response arrived.
	RuleValidToken Rule = "valid-credential"
	// RuleTokenMatchesRow: the credential names the key's row: a JWT's sub is non-empty and is
	// the row id, the claims API.Claims maps are the request's fields, iat is the row's creation
	// time, and the answer's id (API.ID) is the sub; without a JWT, the answer's id is non-empty
	// and is the row id.
	RuleTokenMatchesRow Rule = "matches-row"
	// RuleOneToken: all 2xx responses of a customer carry the same token.
	RuleOneToken Rule = "one-credential"
	// RuleCleanError: every non-2xx response is a JSON error with one of the
	// API's retryable or refusing statuses and codes (409 conflict, 503
	// unavailable, 503 overloaded, 500 empty_subject); whether the strategy may
	// give it then is RuleContract's.
	RuleCleanError Rule = "clean-error"
	// RuleContract: every clean error is one the strategy's Contract allows at that
	// moment, from that pod (atomic: none but what a fault on then declares it may cause, from
	// the pods it names; fail-fast's 409 only with a concurrent own-key request); every request
	// gets a complete answer, and no token-service container restarts nor pod is replaced,
	// unless a fault declares it may cause that (ContractAnswerArrives, ContractNoRestart).
	RuleContract Rule = "contract"
	// RuleCreated: at most one 2xx of a customer says created=true; exactly one when every
	// request of its first registration got an answer that cannot have created it, and that
	// one names the row; a customer registered before the request was sent is never created.
	RuleCreated Rule = "created"
	// RuleAuth: a request with another tenant's API key is answered 403 forbidden, one
	// without a key, with a malformed key or with a well-formed key of no tenant 401
	// unauthenticated, one with its own tenant's key never 401 or 403; a
	// customer none of whose requests carried its own tenant's key has no row (an unknown
	// outcome says nothing about the key). A 401 or 403 carries no token: no other rule reads
	// it.
	RuleAuth Rule = "auth"
	// RuleFinalToken: the customer ends with a valid token, got with its own tenant's key,
	// after retries; unless none of its requests carried that key or every one that did was
	// refused it (RuleAuth's).
	RuleFinalToken Rule = "final-credential"
	// RuleAPIShape: every answer has the exact status, the Content-Type, the body members and the
	// headers that the API (Params.API, from the target file) promises for its outcome: a
	// success its outcome's (new, existing, replayed), an error its code's; Retry-After is
	// RuleContract's. Headers are judged only where they were recorded
	// (history.Op.HeadersRecorded).
	RuleAPIShape Rule = "api-shape"
	// RuleTenants: no two customers are answered with one customer id, token subject or token:
	// two tenants' customers under one key (the plans put every key under
	// two tenants) are two customers, each with its own row and token. One-row and
	// matches-row judge a customer against its own rows; this judges customers against
	// each other, and names both.
	RuleTenants Rule = "tenants"
	// RuleRows: every row of the judged customers' tenants belongs to a customer the run (or
	// an earlier run on the same database, Params.Earlier) planned, and every column the request
	// wrote holds what the request sent: its tenant and key, and each member API.Agree names
	// (NULL when not sent). RuleOneRow counts the rows of a planned key; this one judges the
	// rows no planned key accounts for and what each row says, which no answer shows.
	RuleRows Rule = "rows"
)

// Rules lists every Rule in report order.
var Rules = []Rule{RuleOneRow, RuleValidToken, RuleTokenMatchesRow, RuleOneToken, RuleCleanError, RuleContract, RuleAuth, RuleCreated, RuleFinalToken, RuleRows, RuleMetrics,
	RuleAPIShape, RuleJWKS, RuleTenants}

// Names are the target's words for what the checker counts (target.Names), which only its
// prose reads.
type Names = target.Names

// AppliedRules are the rules that can judge a run by p, in report order: Rules but RuleJWKS
// when the credentials are not JWTs (VerifierEqual), which have no published keys to judge. A
// report lists these, so that a rule that cannot apply does not read as a pass.
func (p *Params) AppliedRules() []Rule {
	if cmp.Or(p.Verifier, p.API.Verifier) != VerifierEqual {
		return Rules
	}
	return slices.DeleteFunc(slices.Clone(Rules), func(r Rule) bool { return r == RuleJWKS })
}

// Row is one row of the truth, as the caller read it with the target's truth query: the
// entity's id, its identity (tenant and key), when it was created, and the columns the request
// wrote beyond its identity.
type Row struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
	// Agree are the columns the request wrote beyond its identity, by the request member that
	// wrote each (API.Agree); nil for NULL.
	Agree map[string]*string `json:"agree,omitempty"`
}

// rowKey is the identity of r, as a customer's (history.Customer.Key).
func rowKey(r *Row) history.Key { return history.Key{Tenant: r.Tenant, EntityKey: r.Key} }

// Params configure Check.
type Params struct {
	// API is the target's create API, which every rule reads (APIFromTarget); required.
	API API
	// PublicKey is the key the suite configured the service with; required by VerifierJWT. The published JWKS
	// must hold it (RuleJWKS); tokens are verified with the JWKS's keys, as a client does.
	PublicKey ed25519.PublicKey
	// JWKS are the fetches of the service's JWKS, through the Service and from
	// each pod, after the traffic (RuleJWKS); required, unless the params were saved before the
	// suite fetched it (then tokens are verified with PublicKey whatever their kid).
	JWKS []JWKSFetch
	// Issuer is the expected iss claim; required.
	Issuer string
	// Audience is the expected aud claim, the audience the service was configured to sign
	// for; required.
	Audience string
	// TokenTTL is the token lifetime the service was configured with, whole seconds: every
	// token's exp must be its iat plus TokenTTL exactly; required.
	TokenTTL time.Duration
	// Verifier selects how the credential of a 2xx answer is verified; the zero value is the
	// API's. VerifierJWT reads PublicKey, JWKS, Issuer, Audience, TokenTTL and Claims;
	// VerifierEqual none of them: the credential must merely be one per key.
	Verifier VerifierKind
	// Claims are the JWT claims held to the request's fields; nil is the API's.
	Claims []ClaimField
	// Base is the history's time base (history.Clock.Base), which its Call and Return count
	// from: a token is judged expired or not at the instant its response arrived, Base plus
	// Return, so that a re-check a day later judges alike; required.
	Base time.Time
	// Contract is what the mode under test promises (API.Contract); required, so that no
	// caller judges a fixed mode by the looser promises of a broken one.
	Contract Contract
	// Faults are the fault windows of the run (history.Event start and end) and what each
	// declares it may cause; the contract lines that hold only during a fault read them.
	Faults []history.Event
	// Registered are customers registered before this history began: every 2xx to them must
	// say created=false (RuleCreated).
	Registered []history.Customer
	// Customers are the planned customers. Those absent from the history are
	// checked too (and break RuleFinalToken); customers in the history are
	// always checked.
	Customers []history.Customer
	// Earlier are the customers that earlier runs on the same database planned: their rows are
	// theirs, not strays (RuleRows); they are not judged here. Registered customers need not
	// be repeated.
	Earlier []history.Customer
	// Coverage decides when a run exercised the race.
	Coverage CoverageParams
	// Metrics is what the pods counted during the history (RuleMetrics); nil skips that rule,
	// for a service without the counters or a history saved before the suite scraped them.
	// Check derives it from Scrapes when they are given.
	Metrics *MetricsWitness
	// Restarts are the token-service pods' restarts and replacements between the looks before
	// and after the traffic (RuleContract's ContractNoRestart); nil when the caller did not
	// look, as in histories saved before the suite did.
	Restarts []Restart
	// Scrapes are the pods' raw metrics before and after the history; when set, Check parses
	// them into Metrics, and cannot judge when one does not parse.
	Scrapes *MetricsScrapes

	// savedBeforeAuth says the params were saved before the service had API keys, audiences
	// and expiring tokens (a judge.json without audience and token TTL; SavedParams.Params):
	// then, and only then, aud and exp are not required and RuleAuth does not apply.
	savedBeforeAuth bool
	// savedBeforeJWKS says the params were saved before the suite fetched the JWKS (a judge.json
	// without jwks): then, and only then, RuleJWKS does not apply and kid is not read.
	savedBeforeJWKS bool
	// savedBeforeRows says the params were saved before judge.json had a format version (and
	// Earlier): the customers of earlier runs are unknown, so RuleRows does not judge stray
	// rows, as the checker did not then.
	savedBeforeRows bool
}

// Verdict is the outcome of Check.
type Verdict string

// The verdicts.
const (
	VerdictPass Verdict = "pass"
	// VerdictFail means at least one violation; it wins over inconclusive, as
	// a violation found is real whatever the coverage.
	VerdictFail Verdict = "fail"
	// VerdictInconclusive means no violation, but too few bursts reached two
	// pods at once for the absence of violations to mean anything.
	VerdictInconclusive Verdict = "inconclusive"
)

// Errors returned by Result.Err, to test with errors.Is.
var (
	ErrViolations   = errors.New("invariants violated")
	ErrInconclusive = errors.New("inconclusive: race not exercised")
)

// Request identifies one Op in a Violation.
type Request struct {
	ID      string        `json:"id"`
	Seq     int           `json:"seq"`
	Attempt int           `json:"attempt"`
	Phase   history.Phase `json:"phase"`
	// KeyTenant is the tenant whose API key the request carried, "" for none. Files written
	// before it was key_tenant name it history.KeyTenantMemberBefore (UnmarshalJSON).
	KeyTenant string `json:"key_tenant,omitempty"`
	// KeyKind is the kind of key it carried (history.Op.SentKey).
	KeyKind history.KeyKind `json:"key_kind,omitempty"`
	Call    time.Duration   `json:"call_ns"`
	Return  time.Duration   `json:"return_ns"`
	Status  int             `json:"status"`
	Pod     string          `json:"pod,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// UnmarshalJSON reads a request as Request's tags name its members, and its key tenant also
// under the name violations.json gave it before (history.KeyTenantMemberBefore), so that an
// older run's result loads and a re-check compares it with a fresh one.
func (r *Request) UnmarshalJSON(b []byte) error {
	type plain Request // without this method, so that decoding it does not recurse
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	if r.KeyTenant != "" || !bytes.Contains(b, []byte(history.KeyTenantMemberBefore)) {
		return nil
	}
	var before map[string]json.RawMessage
	if err := json.Unmarshal(b, &before); err != nil {
		return err
	}
	if raw, ok := before[history.KeyTenantMemberBefore]; ok {
		return json.Unmarshal(raw, &r.KeyTenant)
	}
	return nil
}

func requestOf(op history.Op) Request {
	return Request{ID: op.ID(), Seq: op.Seq, Attempt: op.Attempt, Phase: op.Phase, KeyTenant: op.KeyTenant, KeyKind: op.SentKey(), Call: op.Call,
		Return: op.Return, Status: op.Status, Pod: op.Pod, Error: op.Error}
}

// Violation is one rule broken by one customer: the requests involved, the pods
// that served them, and what was wrong, typed (Findings) and in prose (Details,
// one per finding).
type Violation struct {
	Rule     Rule             `json:"rule"`
	Customer history.Customer `json:"customer"`
	Pods     []string         `json:"pods"`
	Requests []Request        `json:"requests"`
	Details  []string         `json:"details"`
	Findings []Finding        `json:"findings"`
}

// Result is the judgement of a run.
type Result struct {
	Verdict Verdict `json:"verdict"`
	// Contract is the strategy whose contract judged the run.
	Contract    string `json:"contract"`
	Customers   int    `json:"customers"`
	Requests    int    `json:"requests"`
	Successes   int    `json:"successes"`
	CleanErrors int    `json:"clean_errors"`
	// Unknown counts transport errors and timeouts: never a success.
	Unknown int `json:"unknown"`
	// Refused counts the requests refused their key as RuleAuth wants: 403 to another
	// tenant's key, 401 to none, a malformed or an unknown one.
	Refused int `json:"refused,omitempty"`
	// HeadersUnrecorded counts the answers whose headers the history does not hold (recorded
	// before the recorder kept them, history.Op.HeadersRecorded): RuleAPIShape judged them
	// without Content-Type, Cache-Control and WWW-Authenticate.
	HeadersUnrecorded int `json:"headers_unrecorded,omitempty"`
	// EmptySubjects counts 2xx answers carrying a valid signature over an empty subject: the
	// null-customer token of the seed's bug.
	EmptySubjects int `json:"empty_subjects"`
	// DuplicateCustomers counts customers with two or more database rows.
	DuplicateCustomers int          `json:"duplicate_customers"`
	Counts             map[Rule]int `json:"counts"`
	Violations         []Violation  `json:"violations"`
	Coverage           Coverage     `json:"coverage"`
	// FaultTails are the faults' tails as the run measured them (Params.Faults), in order.
	FaultTails []FaultTail `json:"fault_tails,omitempty"`

	// Names and Rules are the target's words and the rules that applied (Params.AppliedRules),
	// which the prose reads; not saved, as a re-check compares the saved judgement with its
	// own: Check sets them, and so does whoever loads a saved Result beside its Params.
	Names Names  `json:"-"`
	Rules []Rule `json:"-"`
}

// AppliedRules are r.Rules, or every rule for a Result that was not told which applied.
func (r Result) AppliedRules() []Rule {
	if r.Rules == nil {
		return Rules
	}
	return r.Rules
}

// Err returns nil for a pass, an error wrapping ErrViolations for a fail and
// one wrapping ErrInconclusive for an inconclusive run, with the figures.
func (r Result) Err() error {
	switch r.Verdict {
	case VerdictPass:
		return nil
	case VerdictFail:
		return fmt.Errorf("%w: %d violations over %d %s %v", ErrViolations, len(r.Violations), r.Customers, r.Names.WithDefaults().Entities, r.Counts)
	default:
		return fmt.Errorf("%w: %s", ErrInconclusive, r.Coverage.Describe(r.Names))
	}
}

// Check judges ops against the database rows. It returns an error only when it
// cannot judge (missing key, JWKS fetch, issuer, audience, token TTL, time base or contract); a broken
// invariant is a Violation. Customers are judged in parallel, GOMAXPROCS at a time; the result
// does not depend on it.
func Check(ops []history.Op, rows []Row, p Params) (Result, error) {
	if err := p.complete(ops); err != nil {
		return Result{}, err
	}
	env, jwksViolations, err := newJudgeEnv(ops, p)
	if err != nil {
		return Result{}, err
	}
	g := groupByCustomer(ops, rows, p.Customers)
	judgements, pods := env.judgeAll(g)

	res := Result{Contract: p.Contract.Strategy, Customers: len(g.customers), Requests: len(ops), Counts: map[Rule]int{}, Violations: []Violation{},
		Names: p.API.Nouns(), Rules: p.AppliedRules()}
	if len(p.Faults) > 0 {
		res.FaultTails = env.faults.tails()
	}
	cov := newCoverage(p.Coverage, len(g.customers))
	for _, m := range pods {
		for pod, n := range m {
			cov.Pods[pod] += n
		}
	}
	for _, j := range judgements {
		res.add(j, &cov)
	}
	for _, v := range slices.Concat(checkTenants(&p.API, g, judgements), checkRows(&p.API, g, append(slices.Clip(p.Earlier), p.Registered...), !p.savedBeforeRows),
		env.checkRestarts(), checkMetrics(&p.API, ops, p.Metrics), jwksViolations) {
		res.Counts[v.Rule]++
		res.Violations = append(res.Violations, v)
	}
	cov.Customers -= cov.UnderFault + cov.WithoutOwnKey
	cov.scan(ops, env.skew)
	res.Coverage = cov.finish(res.Names)

	switch {
	case len(res.Violations) > 0:
		res.Verdict = VerdictFail
	case !res.Coverage.Sufficient:
		res.Verdict = VerdictInconclusive
	default:
		res.Verdict = VerdictPass
	}
	return res, nil
}

// complete says why p cannot judge ops, or fills in what Check derives: the metrics witness
// from the scrapes, the default fault tail.
func (p *Params) complete(ops []history.Op) error {
	if err := p.API.check(); err != nil {
		return err
	}
	if p.Verifier == "" {
		p.Verifier = p.API.Verifier
	}
	switch p.Verifier {
	case "", VerifierJWT:
		if err := jwtNeeds(p); err != nil {
			return err
		}
	case VerifierEqual:
	default:
		return fmt.Errorf("check params: verifier %q, want %q or %q", p.Verifier, VerifierJWT, VerifierEqual)
	}
	if p.Base.IsZero() {
		return errors.New("check params: no time base (history.Clock.Base) to tell when each response arrived")
	}
	if p.Contract.Strategy == "" {
		return errors.New("check params: no contract (pass the mode's, API.Contract)")
	}
	// Without an outcome counter in the API the scrapes say nothing the rules can read.
	if p.Scrapes != nil && p.API.Counter != nil {
		w, err := p.Scrapes.Witness(ops, p.API.Counter)
		if err != nil {
			return fmt.Errorf("check params: metrics witness: %w", err)
		}
		p.Metrics = w
	}
	if p.Contract.FaultTail <= 0 {
		p.Contract.FaultTail = DefaultFaultTail
	}
	if p.usesJWKS() && len(p.JWKS) == 0 {
		return errors.New("check params: no fetch of the JWKS to verify the tokens with, as a client would")
	}
	return nil
}

// usesJWKS says the tokens are verified with the published JWKS, which RuleJWKS judges: JWT
// tokens, unless the params were saved before the suite fetched it.
func (p *Params) usesJWKS() bool { return p.Verifier != VerifierEqual && !p.savedBeforeJWKS }

// newJudgeEnv returns what every customer's judgement reads, and RuleJWKS's violations.
func newJudgeEnv(ops []history.Op, p Params) (*judgeEnv, []Violation, error) {
	claims, err := resolveClaims(&p.API, p.Claims)
	if err != nil {
		return nil, nil, fmt.Errorf("check params: %w", err)
	}
	registered := make(map[history.Key]bool, len(p.Registered))
	for _, c := range p.Registered {
		registered[c.Key()] = true
	}
	env := &judgeEnv{p: p, ops: ops, faults: newFaultWindows(p.Faults, ops, p.Contract.FaultTail), registered: registered,
		skew: EstimateSkew(ops), untrusted: map[string]bool{}}
	for _, pod := range env.skew.Inconsistent {
		env.untrusted[pod] = true
	}
	if p.Verifier == VerifierEqual {
		return env, nil, nil
	}
	env.rules = tokenRules{key: p.PublicKey, ed: edKeyFor(p.PublicKey), issuer: p.Issuer, audience: p.Audience, ttl: p.TokenTTL, claims: claims, credential: p.API.Credential}
	if name, ok := strings.CutPrefix(p.API.Credential, "/"); ok && !strings.ContainsAny(name, "/~") {
		env.rules.needle = `"` + name + `":"`
	}
	var jwksViolations []Violation
	if p.usesJWKS() {
		var published map[string]ed25519.PublicKey
		jwksViolations, published = judgeJWKS(p.JWKS, p.PublicKey)
		env.rules.byKid = make(map[string]*edKey, len(published))
		for kid, pub := range published {
			env.rules.byKid[kid] = edKeyFor(pub)
		}
	}
	return env, jwksViolations, nil
}

// worker is what one of Check's workers keeps from one customer to the next: its verifier, how
// many requests each pod served, and the customer view judgeCustomer reuses.
type worker struct {
	verifier Verifier
	pods     map[string]int
	// cv is the view of the customer being judged; it lives no longer than its judgement
	// (violations copy what they keep), so that its slices serve the next customer.
	cv customerView
}

// view resets w's customer view for c, with n requests (ops and reqs to fill) and rows.
func (w *worker) view(c history.Customer, n int, rows []Row, registered bool) *customerView {
	v := &w.cv
	reqs := slices.Grow(v.reqs[:0], n)[:n]
	clear(reqs)
	*v = customerView{c: c, ops: slices.Grow(v.ops[:0], n)[:n], reqs: reqs, rows: rows, registered: registered,
		answers: v.answers[:0], successes: v.successes[:0], unknowns: v.unknowns[:0], trueOps: v.trueOps[:0],
		own: v.own[:0], firstOK: -1}
	return v
}

// judgeAll judges every customer of g, GOMAXPROCS workers taking judgeBatch customers at a
// time, and returns their judgements in g's order and the pods' counts of each worker.
func (e *judgeEnv) judgeAll(g *grouping) ([]judgement, []map[string]int) {
	judgements := make([]judgement, len(g.customers))
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		workers = min(runtime.GOMAXPROCS(0), max(1, len(g.customers)/judgeBatch))
		pods    = make([]map[string]int, workers)
	)
	for n := range workers {
		pods[n] = map[string]int{}
		wg.Go(func() {
			var batch []int32
			w := &worker{verifier: newVerifier(e.p, &e.rules), pods: pods[n]}
			for {
				start := int(next.Add(judgeBatch)) - judgeBatch
				if start >= len(g.customers) {
					return
				}
				end := min(start+judgeBatch, len(g.customers))
				// The batch's credentials are verified together: a key's tokens share its
				// tables and a field inversion.
				batch = batch[:0]
				for i := start; i < end; i++ {
					batch = append(batch, g.ops(i)...)
				}
				w.verifier.Prepare(e.ops, batch)
				for i := start; i < end; i++ {
					c := g.customers[i].customer
					judgements[i] = e.judgeCustomer(c, g.ops(i), g.rowsOf(i), e.registered[c.Key()], w)
				}
			}
		})
	}
	wg.Wait()
	return judgements, pods
}

// add counts one customer's judgement in r and cov, and appends its violations.
func (r *Result) add(j judgement, cov *Coverage) {
	r.Successes += j.successes
	r.CleanErrors += j.cleanErrors
	r.Unknown += j.unknown
	r.Refused += j.refused
	r.HeadersUnrecorded += j.headersUnrecorded
	r.EmptySubjects += j.emptySubjects
	if j.duplicate {
		r.DuplicateCustomers++
	}
	switch {
	case j.underFault:
		cov.UnderFault++
	case j.withoutOwnKey:
		cov.WithoutOwnKey++
	case j.covered && j.serverCovered:
		cov.Covered++
		cov.ServerCovered++
	case j.covered:
		cov.Covered++
	case j.serverCovered:
		cov.ServerCovered++
	}
	for _, v := range j.violations {
		r.Counts[v.Rule]++
		r.Violations = append(r.Violations, v)
	}
}

// newViolation builds a Violation over ops, with their pods sorted and one
// detail per finding.
func newViolation(rule Rule, c history.Customer, ops []*history.Op, findings []Finding) Violation {
	v := Violation{Rule: rule, Customer: c, Pods: []string{}, Requests: make([]Request, 0, len(ops)),
		Details: make([]string, len(findings)), Findings: findings}
	for i, f := range findings {
		v.Details[i] = f.Detail
	}
	for _, op := range ops {
		v.Requests = append(v.Requests, requestOf(*op))
		if op.Pod != "" && !slices.Contains(v.Pods, op.Pod) {
			v.Pods = append(v.Pods, op.Pod)
		}
	}
	slices.Sort(v.Pods)
	return v
}
