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

// tokenResponse is the 200 body of POST /v1/tokens.
type tokenResponse struct {
	Token      string `json:"token"`
	CustomerID string `json:"customer_id"`
	Created    *bool  `json:"created"`
}

// errorResponse is the body of every error response.
type errorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// tokenClaims are the claims the service signs (service/internal/token.Claims).
// iat and exp stay numbers as written, so that only whole seconds compare equal.
type tokenClaims struct {
	Issuer     string          `json:"iss"`
	Subject    string          `json:"sub"`
	Audience   json.RawMessage `json:"aud"`
	MerchantID string          `json:"mid"`
	ExternalID string          `json:"ext"`
	IssuedAt   json.Number     `json:"iat"`
	ExpiresAt  json.Number     `json:"exp"`
	// NotBefore is not the service's, but a token carrying it is held to it, as a JWT library
	// would.
	NotBefore json.Number `json:"nbf"`

	// expires and notBefore are exp and nbf as instants, zero when absent (verifyToken).
	expires, notBefore time.Time
}

// apiError is a (status, code) pair of the API's error table.
type apiError struct {
	status int
	code   string
}

// apiErrors are the clean errors of the API for a valid request: the
// fail-fast loser's 409, 503 while the database is unreachable, 503 from a
// replica shedding load, and the 500 of a service that refused to sign an empty
// subject. Which of them a strategy may give, and when, is its Contract's.
var apiErrors = []apiError{{409, "conflict"}, {503, "unavailable"}, {503, "overloaded"}, {500, "empty_subject"}}

// judgeEnv is what every customer's judgement reads; it is shared by the
// workers and never written.
type judgeEnv struct {
	p      Params
	ops    []history.Op
	faults faultWindows
	rules  tokenRules
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
	// withoutOwnKey says no request of the customer carried its own merchant's key.
	withoutOwnKey bool
	// identities are what the customer's 2xx answers gave it (RuleTenants').
	identities []identity
	violations []Violation
}

// verified is one distinct token of a customer, verified once.
type verified struct {
	token  string
	claims tokenClaims
	err    error
}

// answer is one distinct 2xx body of a customer, judged once: bodies repeat
// (every replica signs the same token), so a customer costs one parse per
// distinct body and one signature check per distinct token.
type answer struct {
	body string
	// members is what is wrong with the body's members, held to the token Promise; "" for nothing.
	members    string
	parsed     bool
	token      string
	customerID string
	created    *bool
	// err says why the body carries no valid token.
	err          error
	emptySubject bool
	// lostWrite: the answer is consistent (its customer_id is its token's subject, whose
	// merchant and external ids are the request's), yet the database has no row with that id:
	// the registration it acknowledged was lost.
	lostWrite bool
	// problems are how the verified token disagrees with its request or row.
	problems []string
	// claims are the verified token's (when err is nil), for validAt.
	claims tokenClaims
}

// findingOps is a finding and the requests it involves.
type findingOps struct {
	f   Finding
	ops []*history.Op
}

// judgeCustomer applies every rule to one customer's ops (indexes into e.ops)
// and rows, and adds the pods that served it to pods.
func (e *judgeEnv) judgeCustomer(c history.Customer, idx []int32, rows []Row, registered bool, pods map[string]int, tc *tokenCache) judgement {
	var (
		j                                      judgement
		ops                                    = make([]*history.Op, len(idx))
		opAnswer                               = make([]int, len(idx))
		answers                                []answer
		tokens                                 []verified
		successes, unknowns                    []*history.Op
		badTokens, mismatched, dirty, breaches []findingOps
		created, auth, shape                   []findingOps
		trueOps                                []*history.Op
		valid                                  int
		mayHaveCreated                         bool
		firstOK                                = time.Duration(-1)
	)
	// A customer's answers and tokens live no longer than its judgement: the worker's are reused.
	answers, tokens = tc.answers[:0], tc.tokens[:0]
	defer func() { tc.answers, tc.tokens = answers[:0], tokens[:0] }()
	for k, i := range idx {
		ops[k], opAnswer[k] = &e.ops[i], -1
	}
	// rival reports whether another request of c, with its own merchant's key, was in flight
	// while op was: the concurrent registration fail-fast's 409 blames. On any pod, op's own
	// too: a replica serves requests at once, and the unique index refuses the loser alike.
	rival := func(op *history.Op) bool {
		return slices.ContainsFunc(ops, func(o *history.Op) bool {
			return o != op && e.entitled(c, o) && op.Overlaps(*o)
		})
	}
	for k, op := range ops {
		if op.Pod != "" {
			pods[op.Pod]++
		}
		if op.Responded() && !op.HeadersRecorded {
			j.headersUnrecorded++
		}
		// A 2xx's shape is judged below, with its body's, once per distinct body.
		if op.Responded() && !op.Succeeded() {
			shape = append(shape, judgeErrorShape(op)...)
		}
		if e.authChecked() {
			f, judged := judgeAuth(c, op)
			if f != nil {
				auth = append(auth, *f)
			} else if judged {
				j.refused++
			}
			if judged {
				continue
			}
		}
		switch {
		case op.Unknown():
			// A transport error or timeout may or may not have registered the
			// customer; it is never a success, and RuleOneRow still applies. The
			// strategy owes an answer all the same: only a fault excuses its absence. A
			// request that never returned (Return zero) the client never sent, or never saw
			// end: no answer was owed, or none could be recorded.
			unknowns = append(unknowns, op)
			mayHaveCreated = true
			if op.Return > 0 && !e.unknownExcused(op) {
				breaches = append(breaches, e.noAnswer(op))
			}
		case op.Succeeded():
			successes = append(successes, op)
			if firstOK < 0 || op.Return < firstOK {
				firstOK = op.Return
			}
			ai := slices.IndexFunc(answers, func(a answer) bool { return a.body == op.Body })
			if ai < 0 {
				ai = len(answers)
				answers = append(answers, e.judgeAnswer(op.Body, c, rows, &tokens, tc))
				j.identities = addIdentities(j.identities, &answers[ai], op)
			}
			opAnswer[k] = ai
			a := &answers[ai]
			shape = append(shape, judgeTokenShape(op, a.members)...)
			if a.parsed {
				switch {
				case a.created == nil:
					created = append(created, findingOps{Finding{Kind: KindCreatedBreach, Request: op.ID(), Line: CreatedFlagMissing,
						Detail: fmt.Sprintf("%s: 2xx without a created flag", op.ID())}, []*history.Op{op}})
				case *a.created:
					trueOps = append(trueOps, op)
				}
			}
			if a.err != nil {
				kind, line := KindInvalidToken, kidLine(a.err)
				if line != "" {
					kind = KindUnknownKid
				}
				badTokens = append(badTokens, findingOps{Finding{Kind: kind, Request: op.ID(), Line: line,
					Detail: fmt.Sprintf("%s: %v", op.ID(), a.err)}, []*history.Op{op}})
				continue
			}
			// Per request, not per token: one token may arrive valid and, later, expired.
			if err := a.claims.validAt(e.p.Base.Add(op.Return)); err != nil {
				badTokens = append(badTokens, findingOps{Finding{Kind: KindInvalidToken, Request: op.ID(),
					Detail: fmt.Sprintf("%s: token %s %v", op.ID(), Fingerprint(a.token), err)}, []*history.Op{op}})
				continue
			}
			if a.emptySubject {
				j.emptySubjects++
			}
			if len(a.problems) > 0 {
				kind := KindTokenMismatch
				switch {
				case a.emptySubject:
					kind = KindEmptySubject
				case a.lostWrite:
					kind = KindLostWrite
				}
				mismatched = append(mismatched, findingOps{Finding{Kind: kind, Request: op.ID(),
					Detail: fmt.Sprintf("%s: %s", op.ID(), strings.Join(a.problems, "; "))}, []*history.Op{op}})
				continue
			}
			// A token got with another merchant's key, or none, is no token of the customer's.
			if e.entitled(c, op) {
				valid++
			}
		default:
			if op.Status >= 500 {
				// The statement may have committed before the answer failed.
				mayHaveCreated = true
			}
			code, err := cleanError(op)
			if err != nil {
				dirty = append(dirty, findingOps{Finding{Kind: KindDirtyError, Request: op.ID(),
					Detail: fmt.Sprintf("%s: %v", op.ID(), err)}, []*history.Op{op}})
				continue
			}
			if line, why, ok := e.p.Contract.judge(op, code, e.faults, rival); !ok {
				breaches = append(breaches, findingOps{Finding{Kind: KindContractBreach, Request: op.ID(), Line: line.ID,
					Detail: fmt.Sprintf("%s: %d %s breaks %s contract line %s (%s): %s", op.ID(), op.Status, code, e.p.Contract.Strategy, line.ID, line.Doc, why)},
					[]*history.Op{op}})
				continue
			}
			j.cleanErrors++
		}
	}
	j.successes, j.unknown = len(successes), len(unknowns)
	j.duplicate = len(rows) > 1
	// Whether any request could have registered the customer, and any that was not refused its
	// key: a customer sent only others' keys, or refused every time, needs no token.
	var own []*history.Op
	unrefused := !e.authChecked()
	for _, op := range ops {
		if e.entitled(c, op) {
			own = append(own, op)
			unrefused = unrefused || !refusedByAuth(op)
		}
	}
	entitled := len(own) > 0
	// Only requests that could register the customer race to create it: two refusals on two
	// pods at once are no race, nor are retries sent once the row existed.
	first := firstRegistrations(own, firstOK, e.untrusted)
	j.covered = crossPodOverlap(first)
	j.serverCovered = crossPodServerOverlap(first, e.p.Coverage.ClockSkewBound)
	j.underFault = e.burstUnderFault(ops)
	j.withoutOwnKey = len(ops) > 0 && !entitled
	if e.authChecked() && len(ops) > 0 && !entitled && !registered && len(rows) > 0 {
		auth = append(auth, findingOps{Finding{Kind: KindAuthBreach, Line: AuthNoRowWithoutOwnKey,
			Detail: fmt.Sprintf("%d row(s), yet none of the %d requests carried merchant %s's own key: another merchant's key, or none, created the customer",
				len(rows), len(ops), c.MerchantID)}, ops})
	}
	add := func(rule Rule, fos []findingOps) {
		if len(fos) == 0 {
			return
		}
		var (
			involved []*history.Op
			findings = make([]Finding, len(fos))
		)
		for i, fo := range fos {
			findings[i] = fo.f
			involved = append(involved, fo.ops...)
		}
		j.violations = append(j.violations, newViolation(rule, c, involved, findings))
	}

	switch {
	case len(rows) >= 2:
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		add(RuleOneRow, []findingOps{{Finding{Kind: KindDuplicateRows,
			Detail: fmt.Sprintf("%d rows for one customer: %s", len(rows), strings.Join(ids, ", "))}, ops}})
	case len(rows) == 0 && len(successes) > 0:
		add(RuleOneRow, []findingOps{{Finding{Kind: KindLostRegistration,
			Detail: fmt.Sprintf("lost registration: %d 2xx responses but no row", len(successes))}, successes}})
	}
	add(RuleValidToken, badTokens)
	add(RuleTokenMatchesRow, mismatched)
	add(RuleOneToken, twoTokens(opAnswer, ops, answers))
	add(RuleCleanError, dirty)
	add(RuleContract, breaches)
	add(RuleAuth, auth)
	add(RuleCreated, append(created, createdBreaches(c, rows, registered, trueOps, successes, mayHaveCreated, firstOK, e.p.Coverage.ClockSkewBound, func(op *history.Op) *answer {
		return &answers[opAnswer[slices.Index(ops, op)]]
	})...))
	if valid == 0 && (len(ops) == 0 || unrefused) {
		detail := fmt.Sprintf("no valid token after %d requests (%d 2xx, %d unknown)", len(ops), len(successes), len(unknowns))
		if len(ops) == 0 {
			detail = "no request recorded for a planned customer"
		}
		add(RuleFinalToken, []findingOps{{Finding{Kind: KindNoFinalToken, Detail: detail}, ops}})
	}
	add(RuleAPIShape, shape)
	return j
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

// twoTokens returns one finding per 2xx when a customer's 2xx answers carry
// more than one token, so that the table shows which pod gave which token.
func twoTokens(opAnswer []int, ops []*history.Op, answers []answer) []findingOps {
	if !slices.ContainsFunc(answers, func(a answer) bool { return a.token != "" && a.token != answers[0].token }) {
		return nil
	}
	groups := map[string][]*history.Op{}
	for k, op := range ops {
		if ai := opAnswer[k]; ai >= 0 && answers[ai].token != "" {
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
				Detail: fmt.Sprintf("token %s (%d of %d distinct)", Fingerprint(tok), gi+1, len(groups))}, []*history.Op{op}})
		}
	}
	return out
}

// createdBreaches applies RuleCreated's clauses to the 2xx that said
// created=true (trueOps) of one customer. skew is how far the clocks that timed the
// requests may disagree (Coverage.ClockSkewBound; 0 when one clock timed them all): a
// created=true sent less than that after another request's 2xx returned may have been sent
// before it.
func createdBreaches(c history.Customer, rows []Row, registered bool, trueOps, successes []*history.Op, mayHaveCreated bool,
	firstOK, skew time.Duration, answerOf func(*history.Op) *answer) []findingOps {
	var out []findingOps
	one := func(op *history.Op, line, detail string) {
		out = append(out, findingOps{Finding{Kind: KindCreatedBreach, Request: op.ID(), Line: line, Detail: detail}, []*history.Op{op}})
	}
	switch {
	case registered:
		for _, op := range trueOps {
			one(op, CreatedNotWhenExisting, fmt.Sprintf("%s: created=true for a customer registered before this run", op.ID()))
		}
	case len(trueOps) > 1:
		for _, op := range trueOps {
			one(op, CreatedAtMostOne, fmt.Sprintf("%s: created=true, one of %d for one customer", op.ID(), len(trueOps)))
		}
	case len(trueOps) == 1:
		op := trueOps[0]
		switch id := answerOf(op).customerID; {
		case op.Call > firstOK+skew:
			one(op, CreatedNotAfterRegister, fmt.Sprintf("%s: created=true, sent at %s after a 2xx had returned at %s (clocks within %s)",
				op.ID(), ms(op.Call), ms(firstOK), skew))
		case len(rows) == 1 && id != rows[0].ID:
			one(op, CreatedIsTheRow, fmt.Sprintf("%s: created=true names customer %q, the row is %q", op.ID(), id, rows[0].ID))
		}
	case len(successes) > 0 && !mayHaveCreated:
		out = append(out, findingOps{Finding{Kind: KindCreatedBreach, Line: CreatedExactlyOne,
			Detail: fmt.Sprintf("none of %d 2xx said created=true, yet no request of %s was lost or failed on the server", len(successes), c)}, successes})
	}
	return out
}

// judgeAnswer parses a 2xx body and judges its token against the request and
// the rows, verifying the token only if tokens does not hold it yet (with what tc knows of it).
func (e *judgeEnv) judgeAnswer(body string, c history.Customer, rows []Row, tokens *[]verified, tc *tokenCache) answer {
	a := answer{body: body, members: tokenMembersProblem(body)}
	resp, err := parseTokenResponse(body)
	if err != nil {
		a.err = fmt.Errorf("2xx body is not a token response: %w (body %q)", err, excerpt(body))
		return a
	}
	a.parsed, a.token, a.customerID, a.created = true, resp.Token, resp.CustomerID, resp.Created
	if resp.Token == "" {
		a.err = fmt.Errorf("2xx body has no token (body %q)", excerpt(body))
		return a
	}
	ti := slices.IndexFunc(*tokens, func(v verified) bool { return v.token == resp.Token })
	if ti < 0 {
		cl, err := verifyTokenWith(resp.Token, e.rules, tc)
		ti = len(*tokens)
		*tokens = append(*tokens, verified{token: resp.Token, claims: cl, err: err})
	}
	v := &(*tokens)[ti]
	if v.err != nil {
		a.err = v.err
		return a
	}
	a.claims = v.claims
	a.emptySubject = v.claims.Subject == ""
	a.problems = matchRow(c, a.customerID, &v.claims, rows)
	a.lostWrite = !a.emptySubject && a.customerID == v.claims.Subject &&
		v.claims.MerchantID == c.MerchantID && v.claims.ExternalID == c.ExternalID &&
		!slices.ContainsFunc(rows, func(r Row) bool { return r.ID == v.claims.Subject })
	return a
}

// cleanError returns the error code of a non-2xx response, or why it is not
// one of the API's clean errors.
func cleanError(op *history.Op) (string, error) {
	var e errorResponse
	if err := json.Unmarshal([]byte(op.Body), &e); err != nil {
		return "", fmt.Errorf("status %d with a body that is not JSON: %q", op.Status, excerpt(op.Body))
	}
	if e.Error == "" {
		return "", fmt.Errorf("status %d without an error code: %q", op.Status, excerpt(op.Body))
	}
	if !slices.Contains(apiErrors, apiError{op.Status, e.Error}) {
		return "", fmt.Errorf("unexpected status %d with error %q", op.Status, e.Error)
	}
	return e.Error, nil
}
