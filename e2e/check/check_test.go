package check

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/e2e/history"
)

const (
	issuer   = "widgets-issuer"
	audience = "widgets-clients"
	tokenTTL = 24 * time.Hour
)

var (
	suiteKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	otherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))

	alice = history.Customer{Index: 0, Tenant: "m-9-0", EntityKey: "c-9-0"}
	bob   = history.Customer{Index: 1, Tenant: "m-9-1", EntityKey: "c-9-1"}
	carol = history.Customer{Index: 2, Tenant: "m-9-0", EntityKey: "c-9-2"}

	created = time.Date(2026, 5, 1, 12, 0, 0, 500_000_000, time.UTC)
	// base is the fixtures' time base: their calls and returns count from it.
	base = created.Add(-time.Second)
	rowA = Row{ID: "0b6c8a52-0000-4000-8000-00000000000a", Tenant: alice.Tenant, Key: alice.EntityKey, CreatedAt: created}
	rowB = Row{ID: "0b6c8a52-0000-4000-8000-00000000000b", Tenant: bob.Tenant, Key: bob.EntityKey, CreatedAt: created}
)

// claims are the claims the service signs, as the fixtures build them.
type claims struct {
	jwt.RegisteredClaims
	// Aud is aud as the service writes it, a plain string (jwt's ClaimStrings would write a
	// list); a fixture may set a list.
	Aud       any    `json:"aud,omitempty"`
	Tenant    string `json:"ten"`
	EntityKey string `json:"ref"`
}

// serviceClaims are the claims the service should sign for row, changed by edit. exp is iat
// plus the TTL unless edit sets it: an edit that moves iat moves exp with it.
func serviceClaims(row Row, edit func(*claims)) *claims {
	iat := jwt.NewNumericDate(row.CreatedAt.Truncate(time.Second))
	exp := jwt.NewNumericDate(iat.Add(tokenTTL))
	cl := &claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: row.ID, IssuedAt: iat, ExpiresAt: exp},
		Aud:              audience,
		Tenant:           row.Tenant,
		EntityKey:        row.Key,
	}
	if edit != nil {
		edit(cl)
	}
	if cl.ExpiresAt == exp && cl.IssuedAt != nil {
		cl.ExpiresAt = jwt.NewNumericDate(cl.IssuedAt.Add(tokenTTL))
	}
	return cl
}

// tokenFor signs the token the service should give for row, changed by edit.
func tokenFor(t *testing.T, row Row, edit func(*claims)) string {
	t.Helper()
	return sign(t, jwt.SigningMethodEdDSA, suiteKey, serviceClaims(row, edit))
}

// withHeader is tokenFor(row) with header field name set to value (deleted when nil).
func withHeader(t *testing.T, row Row, name string, value any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, serviceClaims(row, nil))
	tok.Header["kid"] = testKid
	if value == nil {
		delete(tok.Header, name)
	} else {
		tok.Header[name] = value
	}
	s, err := tok.SignedString(suiteKey)
	if err != nil {
		t.Fatalf("sign test token: %v", err)
	}
	return s
}

func sign(t *testing.T, m jwt.SigningMethod, key any, cl jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, cl)
	tok.Header["kid"] = testKid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign test token: %v", err)
	}
	return s
}

// testKid is the kid of the fixtures' tokens and of the suite key in their JWKS.
const testKid = "test"

// jwksBody is a JWKS as the service writes it.
func jwksBody(keys map[string]ed25519.PublicKey) string { return JWKSOf(keys) }

// fetched is body fetched through the Service (served by pod-a) and from pod-a and pod-b, as the
// framework fetches the JWKS.
func fetched(body string) []JWKSFetch {
	return []JWKSFetch{
		{Via: "service", Pod: "pod-a", Status: 200, Body: body},
		{Via: "pod/pod-a", Pod: "pod-a", Status: 200, Body: body},
		{Via: "pod/pod-b", Pod: "pod-b", Status: 200, Body: body},
	}
}

// suiteJWKS is the fixtures' service's JWKS, fetched: the suite key under testKid.
func suiteJWKS() []JWKSFetch {
	return fetched(jwksBody(map[string]ed25519.PublicKey{testKid: suiteKey.Public().(ed25519.PublicKey)}))
}

func msec(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// ok is a 200 with token whose id member is the token's sub, created=false.
func ok(t *testing.T, c history.Customer, seq, attempt int, pod string, call, ret int, token string) history.Op {
	t.Helper()
	return answered(t, c, seq, attempt, pod, call, ret, token, false)
}

// okCreated is ok saying created=true: the request that registered the customer.
func okCreated(t *testing.T, c history.Customer, seq, attempt int, pod string, call, ret int, token string) history.Op {
	t.Helper()
	return answered(t, c, seq, attempt, pod, call, ret, token, true)
}

func answered(t *testing.T, c history.Customer, seq, attempt int, pod string, call, ret int, token string, created bool) history.Op {
	t.Helper()
	cl := &claims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, cl); err != nil {
		t.Fatalf("fixture token: %v", err)
	}
	body, _ := json.Marshal(tokenResponse{Token: token, CustomerID: cl.Subject, Created: &created})
	return op(c, seq, attempt, pod, call, ret, 200, string(body))
}

// retryLater is op with a Retry-After header, as the service sends 409 and 503.
func retryLater(o history.Op) history.Op {
	o.RetryAfter = "1"
	return o
}

// op is a request of c with its own tenant's key (withKey sends another).
func op(c history.Customer, seq, attempt int, pod string, call, ret, status int, body string) history.Op {
	phase := history.PhaseBurst
	if attempt > 0 {
		phase = history.PhaseRetry
	}
	return history.Op{Customer: c, Seq: seq, Attempt: attempt, Phase: phase, Call: msec(call), Return: msec(ret),
		Status: status, Body: body, Pod: pod, KeyTenant: c.Tenant}
}

func lost(c history.Customer, seq int, call, ret int, status int, err string) history.Op {
	o := op(c, seq, 0, "", call, ret, status, "")
	o.Error = err
	return o
}

const (
	conflict     = `{"error":"conflict","message":"registration in progress"}`
	emptySubject = `{"error":"empty_subject","message":"refusing to sign"}`
	unavailable  = `{"error":"unavailable","message":"database unavailable; retry"}`
	overloaded   = `{"error":"overloaded","message":"too many registrations in flight; retry"}`
)

// dbFault is a fault that began just after bob's burst was sent in goodHistory, while it was in
// flight.
var dbFault = history.Event{Kind: history.EventFault, Name: "db-cut", Start: msec(100) + usec(500), End: msec(200)}

// goodHistory is a fail-fast stampede in which the race happened and the
// service held: both customers were served by two pods at once, the loser of
// alice's race got a 409 and retried, bob's second request got a 503 during a
// database fault and his third was lost in transit.
func goodHistory(t *testing.T) ([]history.Op, []Row) {
	ta, tb := tokenFor(t, rowA, nil), tokenFor(t, rowB, nil)
	return []history.Op{
		okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta),
		ok(t, alice, 1, 0, "pod-b", 1, 9, ta),
		retryLater(op(alice, 2, 0, "pod-a", 2, 5, 409, conflict)),
		ok(t, alice, 2, 1, "pod-b", 1005, 1010, ta),
		okCreated(t, bob, 0, 0, "pod-b", 100, 110, tb),
		retryLater(op(bob, 1, 0, "pod-a", 101, 104, 503, unavailable)),
		lost(bob, 2, 101, 5000, 0, "context deadline exceeded"),
	}, []Row{rowA, rowB, {ID: "other-run", Tenant: "m-1-0", Key: "c-1-0", CreatedAt: created}}
}

// The token service's modes, as its target file names them.
const (
	modeLegacy         = "legacy"
	modeReturnExisting = "return-existing"
	modeFailFast       = "fail-fast"
	modeAtomic         = "atomic"
)

// contract returns the contract of the token service's mode.
func contract(t testing.TB, mode string) Contract {
	t.Helper()
	c, err := fixtureAPI.Contract(mode)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// params judge goodHistory: fail-fast, during dbFault. Its histories carry no handler
// intervals unless a test adds them, so client-side coverage alone is allowed;
// TestServerCoverage judges the default.
func params() Params {
	c, err := fixtureAPI.Contract(modeFailFast)
	if err != nil {
		panic(err)
	}
	return Params{API: fixtureAPI, PublicKey: suiteKey.Public().(ed25519.PublicKey), JWKS: suiteJWKS(), Issuer: issuer, Audience: audience, TokenTTL: tokenTTL,
		Base: base, Contract: c, Faults: []history.Event{dbFault}, Coverage: CoverageParams{MinCovered: 1, MinFraction: 0.5, AllowClientOnly: true}}
}

// replace returns ops with the op of c, seq and attempt swapped for with.
func replace(ops []history.Op, with history.Op) []history.Op {
	out := append([]history.Op(nil), ops...)
	for i, o := range out {
		if o.ID() == with.ID() {
			out[i] = with
			return out
		}
	}
	panic("no op " + with.ID())
}

func without(ops []history.Op, c history.Customer) []history.Op {
	var out []history.Op
	for _, o := range ops {
		if o.Customer != c {
			out = append(out, o)
		}
	}
	return out
}

func TestCheck(t *testing.T) {
	good, rows := goodHistory(t)
	ta := tokenFor(t, rowA, nil)
	onePod := func(ops []history.Op) []history.Op {
		out := append([]history.Op(nil), ops...)
		for i := range out {
			if out[i].Pod != "" {
				out[i].Pod = "pod-a"
			}
		}
		return out
	}

	for _, tc := range []struct {
		name    string
		ops     []history.Op
		rows    []Row
		planned []history.Customer
		verdict Verdict
		counts  map[Rule]int
	}{
		{name: "good history passes", ops: good, rows: rows, verdict: VerdictPass},
		{
			// The motivating bug: pod B found pod A's row on its re-check, got
			// null back and signed it.
			name: "null subject token",
			ops:  replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, tokenFor(t, rowA, func(c *claims) { c.Subject = "" }))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleTokenMatchesRow: 1, RuleOneToken: 1},
		},
		{
			name: "duplicate rows", ops: good, verdict: VerdictFail,
			rows:   append(append([]Row(nil), rows...), Row{ID: "dup", Tenant: alice.Tenant, Key: alice.EntityKey, CreatedAt: created}),
			counts: map[Rule]int{RuleOneRow: 1},
		},
		{
			name: "lost registration", ops: good, rows: []Row{rowA}, verdict: VerdictFail,
			counts: map[Rule]int{RuleOneRow: 1},
		},
		{
			name: "sub is another row's id",
			ops:  replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, tokenFor(t, rowA, func(c *claims) { c.Subject = rowB.ID }))),
			rows: rows, verdict: VerdictFail,
			// bob's id as alice's subject: bob, judged after alice, shares it (RuleTenants).
			counts: map[Rule]int{RuleTokenMatchesRow: 1, RuleOneToken: 1, RuleTenants: 1},
		},
		{
			name: "token signed by another key",
			ops: replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, sign(t, jwt.SigningMethodEdDSA, otherKey, &claims{
				RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: rowA.ID}, Tenant: alice.Tenant, EntityKey: alice.EntityKey}))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleValidToken: 1, RuleOneToken: 1},
		},
		{
			name: "unsigned alg none token",
			ops: replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, &claims{
				RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: rowA.ID}, Tenant: alice.Tenant, EntityKey: alice.EntityKey}))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleValidToken: 1, RuleOneToken: 1},
		},
		{
			// Algorithm confusion: HMAC keyed with the public key bytes.
			name: "HS256 token keyed with the public key",
			ops: replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, sign(t, jwt.SigningMethodHS256, []byte(suiteKey.Public().(ed25519.PublicKey)), &claims{
				RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: rowA.ID}, Tenant: alice.Tenant, EntityKey: alice.EntityKey}))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleValidToken: 1, RuleOneToken: 1},
		},
		{
			name: "wrong issuer",
			ops:  replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, tokenFor(t, rowA, func(c *claims) { c.Issuer = "someone-else" }))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleValidToken: 1, RuleOneToken: 1},
		},
		{
			name: "2xx without a token",
			ops:  replace(good, op(alice, 1, 0, "pod-b", 1, 9, 200, `{"credential":null,"widget_id":null,"created":false}`)),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleValidToken: 1},
		},
		{
			name: "mid mismatch",
			ops:  replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, tokenFor(t, rowA, func(c *claims) { c.Tenant = "m-9-1" }))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleTokenMatchesRow: 1, RuleOneToken: 1},
		},
		{
			name: "ext mismatch",
			ops:  replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, tokenFor(t, rowA, func(c *claims) { c.EntityKey = "c-9-1" }))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleTokenMatchesRow: 1, RuleOneToken: 1},
		},
		{
			name: "iat is not the row's creation time",
			ops:  replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, tokenFor(t, rowA, func(c *claims) { c.IssuedAt = jwt.NewNumericDate(created.Add(time.Hour)) }))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleTokenMatchesRow: 1, RuleOneToken: 1},
		},
		{
			name: "the id member is not the sub",
			ops:  replace(good, op(alice, 1, 0, "pod-b", 1, 9, 200, fmt.Sprintf(`{"credential":%q,"widget_id":%q,"created":false}`, ta, rowB.ID))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleTokenMatchesRow: 1, RuleTenants: 1},
		},
		{
			// Both verify and match the row (they differ in the header's typ),
			// yet the replicas disagree.
			name: "two different valid tokens",
			ops:  replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, withHeader(t, rowA, "typ", "at+jwt"))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleOneToken: 1},
		},
		{
			name: "non-JSON 500", ops: replace(good, op(bob, 1, 0, "pod-a", 101, 104, 500, "<html>Internal Server Error</html>")),
			rows: rows, verdict: VerdictFail, counts: map[Rule]int{RuleCleanError: 1},
		},
		{
			name: "bare 500 with an unexpected code", ops: replace(good, op(bob, 1, 0, "pod-a", 101, 104, 500, `{"error":"internal","message":"internal error"}`)),
			rows: rows, verdict: VerdictFail, counts: map[Rule]int{RuleCleanError: 1},
		},
		{
			name: "409 without an error code", ops: replace(good, op(alice, 2, 0, "pod-a", 2, 5, 409, `{"message":"busy"}`)),
			rows: rows, verdict: VerdictFail, counts: map[Rule]int{RuleCleanError: 1},
		},
		{
			// A clean error, the service's load shedding, but outside every fault: no strategy
			// promises it there.
			name: "503 overloaded", ops: replace(good, retryLater(op(alice, 2, 0, "pod-a", 2, 5, 503, `{"error":"overloaded","message":"retry"}`))),
			rows: rows, verdict: VerdictFail, counts: map[Rule]int{RuleContract: 1},
		},
		{
			name: "unexpected 400", ops: replace(good, op(alice, 2, 0, "pod-a", 2, 5, 400, `{"error":"bad_request"}`)),
			rows: rows, verdict: VerdictFail, counts: map[Rule]int{RuleCleanError: 1},
		},
		{
			// A 200 status whose body was cut off is unknown, not a success:
			// bob has no token.
			name: "transport errors are unknown, not success",
			ops: append(without(good, bob),
				lost(bob, 0, 100, 110, 200, "unexpected EOF"),
				lost(bob, 1, 100, 5000, 0, "context deadline exceeded")),
			rows: []Row{rowA}, verdict: VerdictFail,
			counts: map[Rule]int{RuleFinalToken: 1},
		},
		{
			name:    "unknown outcomes must not leave two rows",
			ops:     append(without(good, bob), lost(bob, 0, 100, 5000, 0, "connection reset by peer")),
			rows:    []Row{rowA, rowB, {ID: "dup", Tenant: bob.Tenant, Key: bob.EntityKey, CreatedAt: created}},
			verdict: VerdictFail,
			counts:  map[Rule]int{RuleOneRow: 1, RuleFinalToken: 1},
		},
		{
			name: "customer without a final token",
			ops: append(without(good, alice),
				retryLater(op(alice, 0, 0, "pod-a", 96, 106, 409, conflict)),
				retryLater(op(alice, 1, 0, "pod-b", 97, 105, 503, `{"error":"unavailable","message":"retry"}`)),
				retryLater(op(alice, 1, 1, "pod-b", 1000, 1009, 503, `{"error":"unavailable","message":"retry"}`))),
			rows: rows, verdict: VerdictFail,
			counts: map[Rule]int{RuleFinalToken: 1},
		},
		{
			name: "planned customer never sent", ops: good, rows: rows, planned: []history.Customer{alice, bob, carol},
			verdict: VerdictFail, counts: map[Rule]int{RuleFinalToken: 1},
		},
		{name: "all requests hit one pod", ops: onePod(good), rows: rows, verdict: VerdictInconclusive},
		{
			name: "two pods but never at once",
			ops: append(without(good, bob),
				okCreated(t, bob, 0, 0, "pod-b", 100, 110, tokenFor(t, rowB, nil)),
				retryLater(op(bob, 1, 0, "pod-a", 110, 114, 503, unavailable))),
			rows:    rows,
			verdict: VerdictPass, // alice alone is half the customers
		},
		{
			name: "too few customers covered",
			ops: append(onePod(without(good, bob)),
				okCreated(t, bob, 0, 0, "pod-b", 100, 110, tokenFor(t, rowB, nil)),
				retryLater(op(bob, 1, 0, "pod-a", 110, 114, 503, unavailable))),
			rows: rows, verdict: VerdictInconclusive,
		},
		{
			name: "a request without a pod does not count",
			ops: append(onePod(without(good, bob)),
				ok(t, bob, 0, 0, "pod-b", 100, 110, tokenFor(t, rowB, nil)),
				lost(bob, 1, 100, 5000, 0, "connection reset by peer")),
			rows: rows, verdict: VerdictInconclusive,
		},
		{
			name: "a violation fails even when coverage is short",
			ops:  onePod(replace(good, op(bob, 1, 0, "pod-a", 101, 104, 500, "oops"))),
			rows: rows, verdict: VerdictFail, counts: map[Rule]int{RuleCleanError: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.Customers = tc.planned
			res, err := Check(tc.ops, tc.rows, p)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tc.counts == nil {
				tc.counts = map[Rule]int{}
			}
			if res.Verdict != tc.verdict || !maps.Equal(res.Counts, tc.counts) {
				var b strings.Builder
				_ = res.WriteText(&b)
				t.Errorf("verdict %s, counts %v; want %s, %v\n%s", res.Verdict, res.Counts, tc.verdict, tc.counts, b.String())
			}
			if got := res.Err(); (got == nil) != (tc.verdict == VerdictPass) ||
				(tc.verdict == VerdictFail && !errors.Is(got, ErrViolations)) ||
				(tc.verdict == VerdictInconclusive && !errors.Is(got, ErrInconclusive)) {
				t.Errorf("Err() = %v for verdict %s", got, res.Verdict)
			}
		})
	}
}

func TestCheckCountsOutcomes(t *testing.T) {
	ops, rows := goodHistory(t)
	res, err := Check(ops, rows, params())
	if err != nil {
		t.Fatal(err)
	}
	if res.Customers != 2 || res.Requests != 7 || res.Successes != 4 || res.CleanErrors != 2 || res.Unknown != 1 {
		t.Errorf("figures %+v", res)
	}
	if res.Coverage.Covered != 2 || res.Coverage.Pods["pod-a"] != 3 || res.Coverage.Pods["pod-b"] != 3 {
		t.Errorf("coverage %+v", res.Coverage)
	}
}

func TestCountsDuplicateCustomers(t *testing.T) {
	good, rows := goodHistory(t)
	rows = append(rows, Row{ID: "dup", Tenant: alice.Tenant, Key: alice.EntityKey, CreatedAt: rows[0].CreatedAt})
	res, err := Check(good, rows, params())
	if err != nil {
		t.Fatal(err)
	}
	if res.DuplicateCustomers != 1 || res.EmptySubjects != 0 {
		t.Errorf("DuplicateCustomers %d, EmptySubjects %d; want 1, 0", res.DuplicateCustomers, res.EmptySubjects)
	}
	res, err = Check(good, rows[:len(rows)-1], params())
	if err != nil {
		t.Fatal(err)
	}
	if res.DuplicateCustomers != 0 {
		t.Errorf("good history: DuplicateCustomers %d", res.DuplicateCustomers)
	}
}

func TestViolationNamesCustomerPodsAndRequests(t *testing.T) {
	good, rows := goodHistory(t)
	ops := replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, tokenFor(t, rowA, func(c *claims) { c.Subject = "" })))
	res, err := Check(ops, rows, params())
	if err != nil {
		t.Fatal(err)
	}
	var v Violation
	for _, x := range res.Violations {
		if x.Rule == RuleTokenMatchesRow {
			v = x
		}
	}
	if v.Customer != alice || len(v.Requests) != 1 || v.Requests[0].ID != "0/1/0" || v.Requests[0].Call != msec(1) ||
		fmt.Sprint(v.Pods) != "[pod-b]" || !strings.Contains(strings.Join(v.Details, ";"), "empty subject") {
		t.Errorf("violation %+v", v)
	}
	if res.EmptySubjects != 1 || res.DuplicateCustomers != 0 {
		t.Errorf("EmptySubjects %d, DuplicateCustomers %d; want 1, 0", res.EmptySubjects, res.DuplicateCustomers)
	}

	var text, js bytes.Buffer
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"verdict: fail", "matches-row", "#0 m-9-0/c-9-0", "0/1/0", "pod-b", "empty subject", "1.000ms"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Verdict != VerdictFail || len(back.Violations) != len(res.Violations) || back.Counts[RuleOneToken] != 1 {
		t.Errorf("JSON round trip: %+v", back)
	}
}

func TestCheckRefusesToJudgeWithoutKeyOrIssuer(t *testing.T) {
	ops, rows := goodHistory(t)
	for _, p := range []Params{{Issuer: issuer}, {PublicKey: suiteKey.Public().(ed25519.PublicKey)}} {
		if _, err := Check(ops, rows, p); err == nil {
			t.Errorf("Check with %+v: no error", p)
		}
	}
}

// TestRequestKeyTenant: a request writes its key tenant as key_tenant and reads it back; a
// request of a violations.json written before (history.KeyTenantMemberBefore) loads with the
// same key tenant, and re-written it is the request a fresh check writes, so that a re-check of
// an older run compares equal.
func TestRequestKeyTenant(t *testing.T) {
	fresh := Request{ID: "0/1/0", Seq: 1, Phase: history.PhaseBurst, KeyTenant: "m-9-1", KeyKind: history.KeyForeign,
		Call: msec(1), Return: msec(9), Status: 403, Pod: "pod-b"}
	b, err := json.Marshal(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"key_tenant":"m-9-1"`) || strings.Contains(string(b), history.KeyTenantMemberBefore) {
		t.Errorf("written %s: want key_tenant alone", b)
	}
	old := `{"id":"0/1/0","seq":1,"attempt":0,"phase":"burst","` + history.KeyTenantMemberBefore +
		`":"m-9-1","key_kind":"foreign","call_ns":1000000,"return_ns":9000000,"status":403,"pod":"pod-b"}`
	for name, line := range map[string]string{"written now": string(b), "written before": old} {
		var back Request
		if err := json.Unmarshal([]byte(line), &back); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if back != fresh {
			t.Errorf("%s: read %+v, want %+v", name, back, fresh)
		}
		again, _ := json.Marshal(back)
		if !bytes.Equal(again, b) {
			t.Errorf("%s: re-written %s, want %s", name, again, b)
		}
	}
	var none Request
	if err := json.Unmarshal([]byte(`{"id":"0/0/0","phase":"burst"}`), &none); err != nil || none.KeyTenant != "" {
		t.Errorf("no key: %+v, %v", none, err)
	}
	if err := json.Unmarshal([]byte(`{"id":"0/0/0","`+history.KeyTenantMemberBefore+`":7}`), &none); err == nil {
		t.Errorf("a key tenant that is no string: no error")
	}
}
