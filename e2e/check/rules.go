package check

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// tokenClaims are the claims of a JWT credential: the registered ones the verifier reads, and
// the others as strings (a claim mapped to a request field, API.Claims). iat and exp stay
// numbers as written, so that only whole seconds compare equal.
type tokenClaims struct {
	Issuer   string          `json:"iss"`
	Subject  string          `json:"sub"`
	Audience json.RawMessage `json:"aud"`
	IssuedAt json.Number     `json:"iat"`
	// ExpiresAt is exp; NotBefore nbf, which a token carrying it is held to, as a JWT library
	// would.
	ExpiresAt json.Number `json:"exp"`
	NotBefore json.Number `json:"nbf"`
	// others are the string claims beyond the registered ones: in inline (n of them) when
	// plainClaims read them, which a token's few fit without allocating; in others when
	// encoding/json did.
	inline [4]member
	n      int
	others []member

	// expires and notBefore are exp and nbf as instants, zero when absent (verifyToken).
	expires, notBefore time.Time
}

// other returns the string claim name, "" when absent or not a string.
func (cl *tokenClaims) other(name string) string {
	for _, m := range cl.inline[:cl.n] {
		if m.name == name {
			return m.raw
		}
	}
	for _, m := range cl.others {
		if m.name == name {
			return m.raw
		}
	}
	return ""
}

// judgeEnv is what every customer's judgement reads; it is shared by the
// workers and never written.
type judgeEnv struct {
	p      Params
	ops    []history.Op
	faults faultWindows
	// rules are the JWT verifier's (Params.Verifier), shared by the workers' verifiers.
	rules tokenRules
	// registered are the keys of Params.Registered.
	registered map[history.Key]bool
	skew       Skew
	// untrusted are the pods whose clock samples contradict each other
	// (Skew.Inconsistent): their requests do not count for coverage.
	untrusted map[string]bool
}

// judgement is what one customer contributes to the Result.
type judgement struct {
	successes, cleanErrors, unknown int
	// refused counts the requests refused their key as RuleAuth wants (401, 403).
	refused int
	// headersUnrecorded counts the answers whose headers the history does not hold.
	headersUnrecorded int
	// emptySubjects counts 2xx answers whose token verified but names nobody: the seed's bug.
	emptySubjects int
	// duplicate says the customer has two or more rows; covered, that the race was exercised
	// by the clients' clocks, serverCovered by the pods' handler intervals.
	duplicate, covered, serverCovered bool
	// underFault says the customer's burst met a fault window or its tail.
	underFault bool
	// withoutOwnKey says no request of the customer carried its own tenant's key.
	withoutOwnKey bool
	// identities are what the customer's 2xx answers gave it (RuleTenants').
	identities []identity
	violations []Violation
}

// answer is one distinct 2xx body of a customer, judged once: bodies repeat
// (every replica signs the same token), so a customer costs one parse and one verification
// per distinct body.
type answer struct {
	body string
	// members is what is wrong with the body's members, held to promise (the promise of the first
	// answer with the body); "" for nothing.
	members    string
	promise    *Promise
	parsed     bool
	token      string
	customerID string
	created    *bool
	// err says why the body carries no valid token: none, or one the verifier refused (v.Err).
	err error
	// v is what the verifier found about the token (when the body carries one).
	v Verification
}

// findingOps is a finding and the requests it involves.
type findingOps struct {
	f   Finding
	ops []*history.Op
}

// opClass is what a request of a customer is, decided once for every rule.
type opClass uint8

const (
	// opRefused: an answer RuleAuth judges alone (a refusal of its key, right or wrong): a 401
	// or 403 carries no token, and no other rule reads it.
	opRefused opClass = iota
	// opUnknown: a transport error or timeout, which may or may not have registered the
	// customer; never a success.
	opUnknown
	// opSuccess: a 2xx.
	opSuccess
	// opError: any other answer.
	opError
)

// request is one request of a customer, classified.
type request struct {
	class opClass
	// auth is RuleAuth's finding about the key the request carried, nil for none.
	auth *findingOps
	// answer indexes the customer's distinct 2xx bodies (opSuccess), -1 for none.
	answer int
	// arrival says why the answer's valid token was not valid when it arrived (opSuccess): per
	// request, not per token, as one token may arrive valid and, later, expired.
	arrival error
	// code is an opError's error code, or dirty why the answer is no clean error; breached, that
	// the strategy's contract does not allow it then (line and why say how).
	code     string
	dirty    error
	breached bool
	line     ContractLine
	why      string
}

// customerView is one customer's requests (ops, and reqs in step) and rows, classified once:
// what every rule of the customer reads.
type customerView struct {
	c          history.Customer
	ops        []*history.Op
	reqs       []request
	rows       []Row
	registered bool
	answers    []answer
	// successes are the 2xx, unknowns the requests without an answer, trueOps the 2xx saying
	// created=true; firstOK is when the first 2xx returned, -1 for none.
	successes, unknowns, trueOps []*history.Op
	firstOK                      time.Duration
	// mayHaveCreated says a request may have created the customer without a 2xx saying so: an
	// unknown outcome, or a 5xx whose statement may have committed before the answer failed.
	mayHaveCreated bool
	// own are the requests that carried the customer's own tenant's key; unrefused says
	// whether any of them was not refused it (or keys are not judged).
	own       []*history.Op
	unrefused bool
}

// customerRules are the rules judged per customer, in report order; each returns its findings
// in request order, as a customer's violations list them.
var customerRules = []struct {
	rule  Rule
	judge func(*judgeEnv, *customerView) []findingOps
}{
	{RuleOneRow, judgeOneRow},
	{RuleValidToken, judgeValidToken},
	{RuleTokenMatchesRow, judgeTokenMatchesRow},
	{RuleOneToken, judgeOneToken},
	{RuleCleanError, judgeCleanError},
	{RuleContract, judgeContract},
	{RuleAuth, judgeAuthRule},
	{RuleCreated, judgeCreated},
	{RuleFinalToken, judgeFinalToken},
	{RuleAPIShape, judgeAPIShape},
}

// judgeCustomer applies every rule to one customer's ops (indexes into e.ops) and rows, and
// adds the pods that served it to w's.
func (e *judgeEnv) judgeCustomer(c history.Customer, idx []int32, rows []Row, registered bool, w *worker) judgement {
	v := w.view(c, len(idx), rows, registered)
	for k, i := range idx {
		v.ops[k] = &e.ops[i]
	}
	j := e.classify(v, w)
	for _, r := range customerRules {
		if fos := r.judge(e, v); len(fos) > 0 {
			j.violations = append(j.violations, violationOf(r.rule, c, fos))
		}
	}
	return j
}

// violationOf is the violation of rule by c that fos, findings in order, make up.
func violationOf(rule Rule, c history.Customer, fos []findingOps) Violation {
	var (
		involved []*history.Op
		findings = make([]Finding, len(fos))
	)
	for i, fo := range fos {
		findings[i] = fo.f
		involved = append(involved, fo.ops...)
	}
	return newViolation(rule, c, involved, findings)
}

// classify classifies each request of v once, judging each distinct 2xx body with w's
// verifier, and returns what the customer counts for in the Result and its coverage.
func (e *judgeEnv) classify(v *customerView, w *worker) judgement {
	var j judgement
	for k, op := range v.ops {
		if op.Pod != "" {
			w.pods[op.Pod]++
		}
		if op.Responded() && !op.HeadersRecorded {
			j.headersUnrecorded++
		}
		r := &v.reqs[k]
		r.answer = -1
		if e.authChecked() {
			f, judged := judgeAuth(&e.p.API, v.c, op)
			r.auth = f
			if judged {
				if f == nil {
					j.refused++
				}
				r.class = opRefused
				continue
			}
		}
		switch {
		case op.Unknown():
			r.class = opUnknown
			v.unknowns = append(v.unknowns, op)
			v.mayHaveCreated = true
		case op.Succeeded():
			r.class = opSuccess
			e.classifySuccess(v, r, op, w, &j)
		default:
			r.class = opError
			e.classifyError(v, r, op, &j)
		}
	}
	j.successes, j.unknown = len(v.successes), len(v.unknowns)
	j.duplicate = len(v.rows) > 1
	e.coverCustomer(v, &j)
	return j
}

// classifySuccess classifies the 2xx op: its distinct body, judged once, and whether its token
// was valid when it arrived.
func (e *judgeEnv) classifySuccess(v *customerView, r *request, op *history.Op, w *worker, j *judgement) {
	v.successes = append(v.successes, op)
	if v.firstOK < 0 || op.Return < v.firstOK {
		v.firstOK = op.Return
	}
	ai := slices.IndexFunc(v.answers, func(a answer) bool { return a.body == op.Body })
	if ai < 0 {
		ai = len(v.answers)
		v.answers = append(v.answers, judgeAnswer(&e.p.API, op, v.c, v.rows, w.verifier))
		j.identities = addIdentities(j.identities, &v.answers[ai], op)
	}
	r.answer = ai
	a := &v.answers[ai]
	if created := a.createdBy(&e.p.API, op); a.parsed && created != nil && *created {
		v.trueOps = append(v.trueOps, op)
	}
	if a.err != nil {
		return
	}
	if r.arrival = a.v.ValidAt(e.p.Base.Add(op.Return)); r.arrival == nil && a.v.EmptySubject {
		j.emptySubjects++
	}
}

// classifyError classifies the non-2xx answer op: its error code if it is a clean one, and
// whether the strategy's contract allows it then.
func (e *judgeEnv) classifyError(v *customerView, r *request, op *history.Op, j *judgement) {
	if op.Status >= 500 {
		// The statement may have committed before the answer failed.
		v.mayHaveCreated = true
	}
	if r.code, r.dirty = cleanError(&e.p.API, op); r.dirty != nil {
		return
	}
	var ok bool
	if r.line, r.why, ok = e.p.Contract.judge(op, r.code, e.faults, func(o *history.Op) bool { return e.rival(v, o) }); ok {
		j.cleanErrors++
	}
	r.breached = !ok
}

// rival reports whether another request of v's customer, with its own tenant's key, was in
// flight while op was: the concurrent registration fail-fast's 409 blames. On any pod, op's own
// too: a replica serves requests at once, and the unique index refuses the loser alike.
func (e *judgeEnv) rival(v *customerView, op *history.Op) bool {
	return slices.ContainsFunc(v.ops, func(o *history.Op) bool {
		return o != op && e.entitled(v.c, o) && op.Overlaps(*o)
	})
}

// coverCustomer finds the requests that carried the customer's own key, and whether its race
// was exercised: only requests that could register it race to create it, so two refusals on
// two pods at once are no race, nor are retries sent once the row existed.
func (e *judgeEnv) coverCustomer(v *customerView, j *judgement) {
	v.unrefused = !e.authChecked()
	for _, op := range v.ops {
		if e.entitled(v.c, op) {
			v.own = append(v.own, op)
			v.unrefused = v.unrefused || !refusedByAuth(op)
		}
	}
	first := firstRegistrations(v.own, v.firstOK, e.untrusted)
	j.covered = crossPodOverlap(first)
	j.serverCovered = crossPodServerOverlap(first, e.p.Coverage.ClockSkewBound)
	j.underFault = e.burstUnderFault(v.ops)
	j.withoutOwnKey = len(v.ops) > 0 && len(v.own) == 0
}

// judgeOneRow applies RuleOneRow: two or more rows are duplicates; none after a 2xx is a lost
// registration.
func judgeOneRow(e *judgeEnv, v *customerView) []findingOps {
	switch {
	case len(v.rows) >= 2:
		ids := make([]string, len(v.rows))
		for i, r := range v.rows {
			ids[i] = r.ID
		}
		return []findingOps{{Finding{Kind: KindDuplicateRows,
			Detail: fmt.Sprintf("%d rows for one %s: %s", len(v.rows), e.p.API.Nouns().Entity, strings.Join(ids, ", "))}, v.ops}}
	case len(v.rows) == 0 && len(v.successes) > 0:
		return []findingOps{{Finding{Kind: KindLostRegistration,
			Detail: fmt.Sprintf("lost registration: %d 2xx responses but no row", len(v.successes))}, v.successes}}
	}
	return nil
}

// judgeValidToken applies RuleValidToken to each 2xx: a token, valid, and valid when it arrived.
func judgeValidToken(_ *judgeEnv, v *customerView) []findingOps {
	var out []findingOps
	for k, op := range v.ops {
		r := &v.reqs[k]
		if r.class != opSuccess {
			continue
		}
		if a := &v.answers[r.answer]; a.err != nil {
			kind, line := KindInvalidToken, kidLine(a.err)
			if line != "" {
				kind = KindUnknownKid
			}
			out = append(out, findingOps{Finding{Kind: kind, Request: op.ID(), Line: line,
				Detail: fmt.Sprintf("%s: %v", op.ID(), a.err)}, []*history.Op{op}})
		} else if r.arrival != nil {
			out = append(out, findingOps{Finding{Kind: KindInvalidToken, Request: op.ID(),
				Detail: fmt.Sprintf("%s: token %s %v", op.ID(), Fingerprint(a.token), r.arrival)}, []*history.Op{op}})
		}
	}
	return out
}

// judgeTokenMatchesRow applies RuleTokenMatchesRow to each 2xx whose token was valid when it
// arrived.
func judgeTokenMatchesRow(_ *judgeEnv, v *customerView) []findingOps {
	var out []findingOps
	for k, op := range v.ops {
		r := &v.reqs[k]
		if !v.validOnArrival(r) || len(v.answers[r.answer].v.Problems) == 0 {
			continue
		}
		a := &v.answers[r.answer]
		kind := KindTokenMismatch
		switch {
		case a.v.EmptySubject:
			kind = KindEmptySubject
		case a.v.LostWrite:
			kind = KindLostWrite
		}
		out = append(out, findingOps{Finding{Kind: kind, Request: op.ID(),
			Detail: fmt.Sprintf("%s: %s", op.ID(), strings.Join(a.v.Problems, "; "))}, []*history.Op{op}})
	}
	return out
}

// validOnArrival says r is a 2xx whose token was valid, and valid when it arrived.
func (v *customerView) validOnArrival(r *request) bool {
	return r.class == opSuccess && v.answers[r.answer].err == nil && r.arrival == nil
}

// judgeOneToken applies RuleOneToken: one finding per 2xx when the customer's 2xx carry more
// than one token, so that the table shows which pod gave which token.
func judgeOneToken(e *judgeEnv, v *customerView) []findingOps {
	answers := v.answers
	if !slices.ContainsFunc(answers, func(a answer) bool { return a.token != "" && a.token != answers[0].token }) {
		return nil
	}
	groups := map[string][]*history.Op{}
	for k, op := range v.ops {
		if ai := v.reqs[k].answer; ai >= 0 && answers[ai].token != "" {
			groups[answers[ai].token] = append(groups[answers[ai].token], op)
		}
	}
	if len(groups) < 2 {
		return nil
	}
	var out []findingOps
	for gi, tok := range slices.Sorted(maps.Keys(groups)) {
		for _, op := range groups[tok] {
			out = append(out, findingOps{Finding{Kind: KindTwoTokens, Request: op.ID(),
				Detail: fmt.Sprintf("%s %s (%d of %d distinct)", e.p.API.Nouns().Credential, Fingerprint(tok), gi+1, len(groups))}, []*history.Op{op}})
		}
	}
	return out
}

// judgeCleanError applies RuleCleanError to each non-2xx answer no other rule took.
func judgeCleanError(_ *judgeEnv, v *customerView) []findingOps {
	var out []findingOps
	for k, op := range v.ops {
		if r := &v.reqs[k]; r.class == opError && r.dirty != nil {
			out = append(out, findingOps{Finding{Kind: KindDirtyError, Request: op.ID(),
				Detail: fmt.Sprintf("%s: %v", op.ID(), r.dirty)}, []*history.Op{op}})
		}
	}
	return out
}

// judgeContract applies RuleContract to each request: a clean error the contract does not allow
// then, and an answer owed that did not arrive. A request that never returned (Return zero) the
// client never sent, or never saw end: no answer was owed, or none could be recorded.
func judgeContract(e *judgeEnv, v *customerView) []findingOps {
	var out []findingOps
	for k, op := range v.ops {
		switch r := &v.reqs[k]; {
		case r.class == opUnknown && op.Return > 0 && !e.unknownExcused(op):
			out = append(out, e.noAnswer(op))
		case r.class == opError && r.breached:
			out = append(out, findingOps{Finding{Kind: KindContractBreach, Request: op.ID(), Line: r.line.ID,
				Detail: fmt.Sprintf("%s: %d %s breaks %s contract line %s (%s): %s", op.ID(), op.Status, r.code, e.p.Contract.Strategy, r.line.ID, r.line.Doc, r.why)},
				[]*history.Op{op}})
		}
	}
	return out
}

// judgeAuthRule applies RuleAuth: each request's answer to the key it carried, and a row that
// none of the customer's requests could have created.
func judgeAuthRule(e *judgeEnv, v *customerView) []findingOps {
	var out []findingOps
	for k := range v.reqs {
		if f := v.reqs[k].auth; f != nil {
			out = append(out, *f)
		}
	}
	if e.authChecked() && len(v.ops) > 0 && len(v.own) == 0 && !v.registered && len(v.rows) > 0 {
		out = append(out, findingOps{Finding{Kind: KindAuthBreach, Line: AuthNoRowWithoutOwnKey,
			Detail: fmt.Sprintf("%d row(s), yet none of the %d requests carried tenant %s's own key: another tenant's key, or none, created the %s",
				len(v.rows), len(v.ops), v.c.Tenant, e.p.API.Nouns().Entity)}, v.ops})
	}
	return out
}

// judgeCreated applies RuleCreated: each 2xx has a created flag, and the flags tell the truth
// (createdBreaches).
func judgeCreated(e *judgeEnv, v *customerView) []findingOps {
	var out []findingOps
	for k, op := range v.ops {
		if r := &v.reqs[k]; e.p.API.Created != "" && r.class == opSuccess && v.answers[r.answer].parsed && v.answers[r.answer].created == nil {
			out = append(out, findingOps{Finding{Kind: KindCreatedBreach, Request: op.ID(), Line: CreatedFlagMissing,
				Detail: fmt.Sprintf("%s: 2xx without a created flag", op.ID())}, []*history.Op{op}})
		}
	}
	if !e.p.API.tellsCreated() {
		return out
	}
	return append(out, createdBreaches(v.c, v.rows, v.registered, v.trueOps, v.successes, v.mayHaveCreated, v.firstOK, e.p.Coverage.ClockSkewBound,
		func(op *history.Op) *answer { return &v.answers[v.reqs[slices.Index(v.ops, op)].answer] }, e.p.API.Nouns().Entity)...)
}

// judgeFinalToken applies RuleFinalToken: the customer ends with a valid token got with its own
// tenant's key (a token got with another tenant's key, or none, is no token of the
// customer's), unless none of its requests carried that key or each that did was refused it.
func judgeFinalToken(e *judgeEnv, v *customerView) []findingOps {
	for k, op := range v.ops {
		if r := &v.reqs[k]; v.validOnArrival(r) && len(v.answers[r.answer].v.Problems) == 0 && e.entitled(v.c, op) {
			return nil
		}
	}
	if len(v.ops) > 0 && !v.unrefused {
		return nil
	}
	nouns := e.p.API.Nouns()
	detail := fmt.Sprintf("no valid %s after %d requests (%d 2xx, %d unknown)", nouns.Credential, len(v.ops), len(v.successes), len(v.unknowns))
	if len(v.ops) == 0 {
		detail = "no request recorded for a planned " + nouns.Entity
	}
	return []findingOps{{Finding{Kind: KindNoFinalToken, Detail: detail}, v.ops}}
}

// judgeAPIShape applies RuleAPIShape to each answer: an error's shape (a refused key's
// included), and a 2xx's with its body's, judged once per distinct body.
func judgeAPIShape(e *judgeEnv, v *customerView) []findingOps {
	var out []findingOps
	for k, op := range v.ops {
		switch r := &v.reqs[k]; {
		case op.Responded() && !op.Succeeded():
			out = append(out, judgeErrorShape(&e.p.API, op)...)
		case r.class == opSuccess:
			out = append(out, judgeSuccessShape(&e.p.API, op, &v.answers[r.answer])...)
		}
	}
	return out
}

// burstUnderFault reports whether the customer's burst began (its first request's call) inside a
// fault window or its tail: then a replica may rightly have been out of service, and the
// customer does not count for coverage either way. A burst sent just before a fault raced
// before it could matter, and counts.
func (e *judgeEnv) burstUnderFault(ops []*history.Op) bool {
	if len(e.faults.windows) == 0 || len(ops) == 0 {
		return false
	}
	first := ops[0].Call
	for _, op := range ops[1:] {
		first = min(first, op.Call)
	}
	return e.faults.contains(first)
}

// createdBreaches applies RuleCreated's clauses to the 2xx that said
// created=true (trueOps) of one customer. skew is how far the clocks that timed the
// requests may disagree (Coverage.ClockSkewBound; 0 when one clock timed them all): a
// created=true sent less than that after another request's 2xx returned may have been sent
// before it. entity is the target's word for one (Names.Entity), which the details read.
func createdBreaches(c history.Customer, rows []Row, registered bool, trueOps, successes []*history.Op, mayHaveCreated bool,
	firstOK, skew time.Duration, answerOf func(*history.Op) *answer, entity string) []findingOps {
	var out []findingOps
	one := func(op *history.Op, line, detail string) {
		out = append(out, findingOps{Finding{Kind: KindCreatedBreach, Request: op.ID(), Line: line, Detail: detail}, []*history.Op{op}})
	}
	switch {
	case registered:
		for _, op := range trueOps {
			one(op, CreatedNotWhenExisting, fmt.Sprintf("%s: created=true for %s registered before this run", op.ID(), Names{Entity: entity}.AnEntity()))
		}
	case len(trueOps) > 1:
		for _, op := range trueOps {
			one(op, CreatedAtMostOne, fmt.Sprintf("%s: created=true, one of %d for one %s", op.ID(), len(trueOps), entity))
		}
	case len(trueOps) == 1:
		op := trueOps[0]
		switch id := answerOf(op).customerID; {
		case op.Call > firstOK+skew:
			one(op, CreatedNotAfterRegister, fmt.Sprintf("%s: created=true, sent at %s after a 2xx had returned at %s (clocks within %s)",
				op.ID(), ms(op.Call), ms(firstOK), skew))
		case len(rows) == 1 && id != rows[0].ID:
			one(op, CreatedIsTheRow, fmt.Sprintf("%s: created=true names %s %q, the row is %q", op.ID(), entity, id, rows[0].ID))
		}
	case len(successes) > 0 && !mayHaveCreated:
		out = append(out, findingOps{Finding{Kind: KindCreatedBreach, Line: CreatedExactlyOne,
			Detail: fmt.Sprintf("none of %d 2xx said created=true, yet no request of %s was lost or failed on the server", len(successes), c)}, successes})
	}
	return out
}

// judgeAnswer reads the 2xx body of op by api and has verifier judge its credential against
// the request and the rows.
func judgeAnswer(api *API, op *history.Op, c history.Customer, rows []Row, verifier Verifier) answer {
	body := op.Body
	a := answer{body: body}
	var buf [8]member
	o, err := readObject(body, buf[:0])
	if err != nil {
		a.members = fmt.Sprintf("body is not a JSON object: %v (body %q)", err, excerpt(body))
		a.err = fmt.Errorf("2xx body is not a token response: %w (body %q)", err, excerpt(body))
		return a
	}
	id, _, okID := o.stringAt(body, api.ID)
	var created *bool
	if api.Created != "" {
		if raw, found := o.lookup(body, api.Created); found && raw != "null" {
			b, ok := boolValue(raw)
			if !ok {
				okID = false
			}
			created = &b
		}
	}
	tok, _, okTok := "", false, true
	if api.Credential != "" {
		tok, _, okTok = o.stringAt(body, api.Credential)
	}
	a.created = created
	a.promise = api.success(op.Status, a.createdBy(api, op))
	a.members = membersProblem(o, a.promise)
	if !okID || !okTok {
		a.err = fmt.Errorf("2xx body is not a token response: a member of the wrong type (body %q)", excerpt(body))
		return a
	}
	a.parsed, a.token, a.customerID = true, tok, id
	if api.Credential != "" && tok == "" {
		a.err = fmt.Errorf("2xx body has no token (body %q)", excerpt(body))
		return a
	}
	a.v = verifier.Verify(tok, c, id, rows)
	a.err = a.v.Err
	return a
}

// createdBy is the created flag of op, whose body is a's: the body's flag when the API has one,
// else whether its status is the new outcome's when that tells it (API.tellsCreated), else nil.
func (a *answer) createdBy(api *API, op *history.Op) *bool {
	switch {
	case api.Created != "":
		return a.created
	case api.statusTellsCreated():
		return new(op.Status == api.New.Status)
	}
	return nil
}

// cleanError returns the error code of a non-2xx response, or why it is not one of the API's
// clean errors (API.Errors' Clean).
func cleanError(api *API, op *history.Op) (string, error) {
	var buf [8]member
	o, err := readObject(op.Body, buf[:0])
	if err != nil {
		return "", fmt.Errorf("status %d with a body that is not JSON: %q", op.Status, excerpt(op.Body))
	}
	code, _, ok := o.stringAt(op.Body, api.ErrorCode)
	if !ok || code == "" {
		return "", fmt.Errorf("status %d without an error code: %q", op.Status, excerpt(op.Body))
	}
	if p := api.errorPromise(code, op.Status); p == nil || p.Status != op.Status || !p.Clean {
		return "", fmt.Errorf("unexpected status %d with error %q", op.Status, code)
	}
	return code, nil
}
