package report

// The legacy canary's race for the close-up's tests: pod A creates the customer's row while pod
// B's handler, begun a moment earlier, finds it only after and answers 200 with a credential
// whose subject is empty.

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

// canaryCustomer is the customer of canaryRun that got the empty subject; canaryPods its pods
// A and B.
var (
	canaryCustomer = customerN(300)
	canaryPods     = fixturePods[:2]
)

// canaryRow is the one row customer c has.
func canaryRow(c history.Customer, at time.Duration) check.Row {
	return check.Row{ID: fmt.Sprintf("0b6c8a52-0000-4000-8000-%012d", c.Index), Tenant: c.Tenant, Key: c.EntityKey,
		CreatedAt: fixtureEpoch.Add(at)}
}

// canaryRun is a run of the legacy canary: eight customers whose bursts pass, and
// canaryCustomer, whose burst of four on pods A and B got one answer with an empty subject.
func canaryRun(tb testing.TB) RunView {
	tb.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	var ops []history.Op
	var rows []check.Row
	for i := range 8 {
		c := customerN(310 + i)
		b := burst(c, 0, ms(float64(i)*40), 4, canaryPods, rng)
		ops = append(ops, b...)
		rows = append(rows, canaryRow(c, b[0].ServerStart+ms(0.5)))
	}
	c, at := canaryCustomer, ms(200)
	row := canaryRow(c, at+ms(2))
	rows = append(rows, row)
	good := fixtureToken(row.ID, c.Tenant, c.EntityKey, row.CreatedAt)
	empty := fixtureToken("", c.Tenant, c.EntityKey, row.CreatedAt)
	A, B := canaryPods[0], canaryPods[1]
	op := func(seq int, pod string, call, start, end, ret float64, body string) history.Op {
		return history.Op{Customer: c, Seq: seq, Phase: history.PhaseBurst, Call: at + ms(call), Return: at + ms(ret),
			Status: 200, Body: body, Pod: pod, ServerStart: at + ms(start), ServerEnd: at + ms(end)}
	}
	race := []history.Op{
		// A inserts the row at +2 ms and says so.
		op(0, A, 0, 0.4, 2.6, 3.0, tokenBody(good, row.ID, true)),
		// B's handler began at +0.5 ms, before the row existed; it answered 200 naming nobody.
		op(1, B, 0.1, 0.5, 3.2, 3.6, tokenBody(empty, "", false)),
		op(2, A, 0.2, 2.7, 3.4, 3.9, tokenBody(good, row.ID, false)),
		op(3, B, 0.3, 3.3, 4.0, 4.4, tokenBody(good, row.ID, false)),
	}
	ops = append(ops, race...)
	res := check.Result{
		Verdict: check.VerdictFail, Contract: "legacy", Customers: 9, Requests: len(ops), Successes: len(ops), EmptySubjects: 1,
		Counts: map[check.Rule]int{check.RuleTokenMatchesRow: 1, check.RuleOneToken: 1},
		Violations: []check.Violation{
			{Rule: check.RuleTokenMatchesRow, Customer: c, Pods: []string{B}, Requests: []check.Request{requestOf(race[1])},
				Findings: []check.Finding{{Kind: check.KindEmptySubject, Request: race[1].ID(), Detail: race[1].ID() + ": empty subject"}}},
			{Rule: check.RuleOneToken, Customer: c, Pods: []string{A, B}, Requests: []check.Request{requestOf(race[0]), requestOf(race[1])},
				Findings: []check.Finding{{Kind: check.KindTwoTokens, Request: race[1].ID(), Detail: "token differs from the first 2xx's"}}},
		},
		Coverage: check.Coverage{Customers: 9, Covered: 9, Fraction: 1, Sufficient: true},
	}
	return RunView{
		Title: "stampede e2e run canary", RunID: "canary", Seed: 11, Generated: fixtureEpoch,
		Target: &TargetRef{Name: "tokensvc", File: "targets/tokensvc/target.yaml", Digest: "sha256:0"},
		Specs: []SpecView{{Name: "Registration: the legacy canary", State: "passed",
			Parts: []PartView{{Base: fixtureEpoch, History: ops, Rows: rows, Result: res}}}},
	}
}
