package report

// Synthetic runs for the tests of report.html: a failing spec with violations, a passing spec,
// a chaos spec with a fault window and a spec that did not run; and a run as big as asked.
// Tokens are real EdDSA JWTs (the renderer only decodes them).

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

var fixtureKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

const (
	fixtureIssuer = "stampede-tokensvc"
	// xss is what an unfriendly service could answer: it must show as text, never run.
	xss = `</script><script>alert("owned")</script><img src=x onerror=alert(1)>`
)

var fixtureEpoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// fixtureToken signs the token the service would give: sub is the row id, iat its creation.
func fixtureToken(sub, mid, ext string, iat time.Time) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": "test"})
	p, _ := json.Marshal(map[string]any{"iss": fixtureIssuer, "sub": sub, "mid": mid, "ext": ext, "iat": iat.Unix()})
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	return signing + "." + enc.EncodeToString(ed25519.Sign(fixtureKey, []byte(signing)))
}

func tokenBody(tok, customerID string, created bool) string {
	b, _ := json.Marshal(map[string]any{"token": tok, "customer_id": customerID, "created": created})
	return string(b) + "\n"
}

func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func requestOf(op history.Op) check.Request {
	return check.Request{ID: op.ID(), Seq: op.Seq, Attempt: op.Attempt, Phase: op.Phase, Call: op.Call,
		Return: op.Return, Status: op.Status, Pod: op.Pod, Error: op.Error}
}

// burst is K simultaneous requests of customer c at call, each served by pods[k%len(pods)],
// all answered with the customer's one token (the first says created).
func burst(c history.Customer, seq int, call time.Duration, k int, pods []string, rng *rand.Rand) []history.Op {
	sub := fmt.Sprintf("0b6c8a52-0000-4000-8000-%012d", c.Index)
	tok := fixtureToken(sub, c.Tenant, c.EntityKey, fixtureEpoch.Add(call))
	var ops []history.Op
	for i := range k {
		start := call + time.Duration(rng.IntN(200))*time.Microsecond
		lat := ms(2 + 6*rng.Float64())
		pod := pods[i%len(pods)]
		ops = append(ops, history.Op{
			Customer: c, Seq: seq + i, Phase: history.PhaseBurst, Call: start, Return: start + lat,
			Status: 200, Body: tokenBody(tok, sub, i == 0), Pod: pod,
			ServerStart: start + lat/4, ServerEnd: start + 3*lat/4,
		})
	}
	return ops
}

func customerN(i int) history.Customer {
	return history.Customer{Index: i, Tenant: fmt.Sprintf("m-7-%d", i%5), EntityKey: fmt.Sprintf("c-7-%d", i)}
}

var fixturePods = []string{"tokensvc-6d5f9c7b8-k2x4q", "tokensvc-6d5f9c7b8-p9w7z", "tokensvc-6d5f9c7b8-zt5mn"}

// fixtureRun is a small run with every kind of spec and outcome the page shows.
func fixtureRun(tb testing.TB) RunView {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))

	// A passing spec: 12 customers, bursts of 4 on three pods.
	var okOps []history.Op
	for i := range 12 {
		okOps = append(okOps, burst(customerN(i), 0, ms(float64(i)*3), 4, fixturePods, rng)...)
	}
	okRes := check.Result{
		Verdict: check.VerdictPass, Contract: "atomic", Customers: 12, Requests: len(okOps), Successes: len(okOps),
		Counts: map[check.Rule]int{}, Violations: []check.Violation{},
		Coverage: check.Coverage{Customers: 12, Covered: 12, Fraction: 1, ServerData: true, ServerCovered: 11, ServerFraction: 11.0 / 12,
			Sufficient: true, Pods: map[string]int{fixturePods[0]: 16, fixturePods[1]: 16, fixturePods[2]: 16}},
	}

	// A failing spec: customer 100 got two tokens from two pods, customer 101 a dirty 500 whose
	// body is markup, customer 102 a transport error, customer 103 a 409 and a retry.
	var badOps []history.Op
	for i := range 8 {
		badOps = append(badOps, burst(customerN(100+i), 0, ms(float64(i)*4), 3, fixturePods, rng)...)
	}
	two := badOps[1] // customer 100's second request: another row, another token
	tok2 := fixtureToken("0b6c8a52-0000-4000-8000-999999999999", two.Customer.Tenant, two.Customer.EntityKey, fixtureEpoch)
	two.Body = tokenBody(tok2, "0b6c8a52-0000-4000-8000-999999999999", true)
	badOps[1] = two
	dirty := badOps[4] // customer 101
	dirty.Status, dirty.Body, dirty.Pod = 500, xss, "tokensvc-"+xss
	badOps[4] = dirty
	lost := badOps[7] // customer 102
	lost.Status, lost.Body, lost.Pod, lost.Error = 0, "", "", `Post "http://tokensvc/v1/tokens": read tcp 10.0.0.1:4711: connection reset by peer`
	lost.ServerStart, lost.ServerEnd = 0, 0
	badOps[7] = lost
	conflict := badOps[10] // customer 103: a clean 409, then a retry that succeeds
	conflict.Status, conflict.Body, conflict.RetryAfter = 409, `{"error":"conflict","message":"registration in progress"}`, "1"
	badOps[10] = conflict
	retry := badOps[9]
	retry.Seq, retry.Attempt, retry.Phase = conflict.Seq, 1, history.PhaseRetry
	retry.Call, retry.Return = conflict.Return+ms(1), conflict.Return+ms(4)
	retry.ServerStart, retry.ServerEnd = retry.Call+ms(1), retry.Call+ms(2)
	badOps = append(badOps, retry)
	badRes := check.Result{
		Verdict: check.VerdictFail, Contract: "fail-fast", Customers: 8, Requests: len(badOps), Names: tokensvcNames,
		Successes: len(badOps) - 3, CleanErrors: 1, Unknown: 1, DuplicateCustomers: 1,
		Counts: map[check.Rule]int{check.RuleOneRow: 1, check.RuleOneToken: 1, check.RuleCleanError: 1},
		Violations: []check.Violation{
			{Rule: check.RuleOneRow, Customer: two.Customer, Pods: []string{badOps[0].Pod, two.Pod},
				Requests: []check.Request{requestOf(badOps[0]), requestOf(two)},
				Details:  []string{"2 rows for m-7-0/c-7-100"},
				Findings: []check.Finding{{Kind: check.KindDuplicateRows, Detail: "2 rows for m-7-0/c-7-100 " + xss}}},
			{Rule: check.RuleOneToken, Customer: two.Customer, Pods: []string{badOps[0].Pod, two.Pod},
				Requests: []check.Request{requestOf(badOps[0]), requestOf(two), requestOf(badOps[2])},
				Findings: []check.Finding{{Kind: check.KindTwoTokens, Request: two.ID(), Detail: "token differs from the first 2xx's"}}},
			{Rule: check.RuleCleanError, Customer: dirty.Customer, Pods: []string{dirty.Pod},
				Requests: []check.Request{requestOf(dirty)},
				Findings: []check.Finding{{Kind: check.KindDirtyError, Request: dirty.ID(), Detail: "500 body is not JSON: " + xss}}},
		},
		Coverage: check.Coverage{Customers: 8, Covered: 3, Fraction: 3.0 / 8, ServerData: true, ServerCovered: 2, ServerFraction: 0.25,
			Reasons: []string{"client-side 3 of 8 customers covered, need 50%"}},
	}

	// A chaos spec: a pod is killed 30 ms in and recovers at 60 ms; requests in between get
	// 503s and transport errors.
	var chaosOps []history.Op
	for i := range 30 {
		chaosOps = append(chaosOps, burst(customerN(200+i), 0, ms(float64(i)*3), 3, fixturePods, rng)...)
	}
	fault := history.Event{Kind: history.EventFault, Name: "pod-kill", Target: fixturePods[1], Detail: "grace 0s", Start: ms(30), End: ms(60)}
	failedDuring := 0
	for i := range chaosOps {
		op := &chaosOps[i]
		if fault.Contains(op.Call) && op.Pod == fixturePods[1] {
			failedDuring++
			if i%2 == 0 {
				op.Status, op.Body, op.Pod, op.Error = 0, "", "", "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
				op.Return = op.Call + ms(250)
				op.ServerStart, op.ServerEnd = 0, 0
			} else {
				op.Status, op.Body, op.RetryAfter = 503, `{"error":"unavailable","message":"database unavailable; retry"}`, "1"
			}
		}
	}
	chaosRes := check.Result{
		Verdict: check.VerdictPass, Contract: "atomic", Customers: 30, Requests: len(chaosOps),
		Successes: len(chaosOps) - failedDuring, CleanErrors: failedDuring / 2, Unknown: failedDuring - failedDuring/2,
		Counts: map[check.Rule]int{}, Violations: []check.Violation{},
		Coverage: check.Coverage{Customers: 20, UnderFault: 10, Covered: 20, Fraction: 1, Sufficient: true},
	}
	chaosFigs := map[string]any{
		"fault": "pod-kill", "plan": map[string]any{"fault": "pod-kill", "seed": uint64(42), "offset_ns": ms(30), "hold_ns": ms(30)},
		"event": fault, "during": map[string]int{"requests": 24, "successes": 24 - failedDuring, "errors": failedDuring / 2, "unknown": failedDuring - failedDuring/2},
		"during_ratio": float64(24-failedDuring) / 24, "recovered": true, "recovery_ns": ms(180), "recovery": ms(180).String(),
		"violations": 0, "verdict": "pass", "rounds": 3, "inject_error": "", "recover_error": "",
	}

	return RunView{
		Title: "stampede e2e run 0f055d", RunID: "0f055d", Seed: 1<<63 + 12345, Generated: fixtureEpoch,
		Summary: "4 specs: 1 failed, 2 passed, 1 skipped",
		Specs: []SpecView{
			{Name: "Registration: a stampede of first registrations yields one row per customer", State: "passed",
				Repro: "STAMPEDE_SEED=9223372036854788153 make e2e-reuse LABELS='registration'", Dir: "registration",
				Runtime: 3 * time.Second, Parts: []PartView{{Base: fixtureEpoch, History: okOps, Result: okRes}}},
			{Name: "Selftest: the fail-fast mutant " + xss, State: "failed",
				Failure: "invariants violated: 3 violations over 8 customers " + xss, Repro: "STAMPEDE_SEED=1 make selftest LABELS='fail-fast'",
				Dir: "selftest-fail-fast", Runtime: 5 * time.Second, Notes: []string{"canary: caught 1 of 1 runs"},
				Parts: []PartView{{Name: "burst", Base: fixtureEpoch, History: badOps, Result: badRes}}},
			{Name: "Chaos: pod-kill under bursts", State: "passed", Dir: "chaos-pod-kill", Runtime: 40 * time.Second,
				Notes: []string{"canary db-latency: detected 3 of 4 runs (75%)", "pod-kill   during fault 85.0% (17 of 20 2xx)   recovery 180ms"},
				Parts: []PartView{{Name: "pod-kill", Base: fixtureEpoch, History: chaosOps, Events: []history.Event{fault}, Result: chaosRes, Chaos: chaosFigs}}},
			{Name: "Nightly: soak", State: "skipped"},
		},
	}
}

// bigRun is one failing spec whose one part has n requests: bursts of 8 over three pods, 1% of
// the customers with a duplicate row, a fault window in the middle with errors and timeouts.
func bigRun(tb testing.TB, n int) RunView {
	tb.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	const k = 8
	customers := n / k
	ops := make([]history.Op, 0, n)
	span := time.Duration(customers) * 2 * time.Millisecond // 500 customers a second
	fault := history.Event{Kind: history.EventFault, Name: "db-latency", Target: "toxiproxy/postgres", Detail: "latency=30ms",
		Start: span * 4 / 10, End: span * 6 / 10}
	res := check.Result{Verdict: check.VerdictFail, Contract: "atomic", Customers: customers, Counts: map[check.Rule]int{}, Violations: []check.Violation{}}
	rows := make([]check.Row, 0, customers+customers/100+1)
	for i := range customers {
		c := customerN(i)
		b := burst(c, 0, time.Duration(i)*2*time.Millisecond, k, fixturePods, rng)
		for j := range b {
			op := &b[j]
			if fault.Contains(op.Call) {
				op.Return += ms(30 + 20*rng.Float64())
				if rng.IntN(20) == 0 {
					op.Status, op.Body, op.Pod, op.Error = 0, "", "", "context deadline exceeded"
					op.ServerStart, op.ServerEnd = 0, 0
				} else if rng.IntN(10) == 0 {
					op.Status, op.Body = 503, `{"error":"unavailable","message":"database unavailable; retry"}`
				}
			}
		}
		rows = append(rows, canaryRow(c, b[0].ServerStart+ms(0.5)))
		if i%100 == 37 {
			dup := canaryRow(c, b[1].ServerStart+ms(0.6))
			dup.ID = fmt.Sprintf("0b6c8a52-0000-4000-9000-%012d", c.Index)
			rows = append(rows, dup)
			res.Violations = append(res.Violations, check.Violation{Rule: check.RuleOneRow, Customer: c,
				Pods: []string{b[0].Pod, b[1].Pod}, Requests: []check.Request{requestOf(b[0]), requestOf(b[1])},
				Findings: []check.Finding{{Kind: check.KindDuplicateRows, Detail: "2 rows"}}})
			res.Counts[check.RuleOneRow]++
		}
		ops = append(ops, b...)
	}
	for _, op := range ops {
		switch {
		case op.Succeeded():
			res.Successes++
		case op.Unknown():
			res.Unknown++
		default:
			res.CleanErrors++
		}
	}
	res.Requests = len(ops)
	res.Coverage = check.Coverage{Customers: customers, Covered: customers, Fraction: 1, Sufficient: true}
	return RunView{
		Title: fmt.Sprintf("stampede e2e run big (%d requests)", len(ops)), RunID: "big", Seed: 7, Generated: fixtureEpoch,
		Specs: []SpecView{{Name: "Registration: a big stampede", State: "failed", Failure: "invariants violated",
			Parts: []PartView{{Base: fixtureEpoch, History: ops, Rows: rows, Events: []history.Event{fault}, Result: res}}}},
	}
}

// tokensvcNames are the token service's words (targets/tokensvc/target.yaml's names), which the
// fixture's judged parts read as a run of it does.
var tokensvcNames = check.Names{Entity: "customer", Entities: "customers", Credential: "token"}
