package check

import (
	"slices"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
)

const (
	forbidden       = `{"error":"forbidden","message":"the key is another tenant's"}`
	unauthenticated = `{"error":"unauthenticated","message":"missing or unknown API key"}`
)

// dave is a customer of bob's tenant whose requests all carried another tenant's key.
var dave = history.Customer{Index: 3, Tenant: "m-9-1", EntityKey: "c-9-3"}

// withKey is o sent with tenant's key ("" for none).
func withKey(o history.Op, tenant string) history.Op {
	o.KeyTenant = tenant
	return o
}

// withKind is o sent with a key of kind that names no tenant (malformed, unknown).
func withKind(o history.Op, kind history.KeyKind) history.Op {
	o.KeyTenant, o.KeyKind = "", kind
	return o
}

// mixedHistory is goodHistory with the keys of a service that checks them, answered as it
// should: alice's burst also raced a request with bob's tenant's key (403) and one with no key
// (401); bob's had one with alice's tenant's key during the database fault (403 all the same:
// the key is checked first); dave sent only foreign keys, refused or lost, long after the
// fault, and has no row; his lost request was in flight when a pod was killed (daveFault), which
// excuses its missing answer (mixedParams).
// (401) and one with a malformed key (401); bob's had one with alice's tenant's key and one
// with an unknown key during the database fault (403 and 401 all the same: the key is checked
// first); dave sent only foreign keys, refused or lost, long after the
// fault, and has no row.
func mixedHistory(t *testing.T) ([]history.Op, []Row) {
	ops, rows := goodHistory(t)
	return append(ops,
		withKey(op(alice, 3, 0, "pod-b", 1, 4, 403, forbidden), bob.Tenant),
		withKey(op(alice, 4, 0, "pod-a", 2, 3, 401, unauthenticated), ""),
		withKey(op(bob, 3, 0, "pod-b", 101, 103, 403, forbidden), alice.Tenant),
		withKind(op(alice, 5, 0, "pod-a", 2, 4, 401, unauthenticated), history.KeyMalformed),
		withKind(op(bob, 4, 0, "pod-a", 102, 105, 401, unauthenticated), history.KeyUnknown),
		withKey(op(dave, 0, 0, "pod-a", 20_000, 20_002, 403, forbidden), alice.Tenant),
		withKey(op(dave, 1, 0, "pod-b", 20_000, 20_003, 403, forbidden), alice.Tenant),
		withKey(lost(dave, 2, 20_000, 25_000, 0, "context deadline exceeded"), alice.Tenant),
	), rows
}

// daveFault is a pod kill while dave's lost request was in flight, just after his burst began.
var daveFault = history.Event{Kind: history.EventFault, Name: "pod-kill", Target: "pod-b", Start: msec(20_001), End: msec(20_010)}

// mixedParams judge mixedHistory: params, and daveFault.
func mixedParams() Params {
	p := params()
	p.Faults = append(p.Faults, daveFault)
	return p
}

// TestAuthPasses: requests refused their key as they should be trip no rule, neither
// clean-error nor contract (not even atomic's, which allows no error outside a fault) nor
// final-credential for dave, who was refused every time.
func TestAuthPasses(t *testing.T) {
	ops, rows := mixedHistory(t)
	for _, strategy := range []string{modeFailFast, modeAtomic} {
		p := mixedParams()
		p.Contract = contract(t, strategy)
		if strategy == modeAtomic {
			ops = replace(ops, op(alice, 2, 0, "pod-a", 2, 5, 200, ok(t, alice, 2, 0, "pod-a", 2, 5, tokenFor(t, rowA, nil)).Body))
		}
		p.Customers = []history.Customer{alice, bob, dave}
		res := judge(t, ops, rows, p, nil)
		if res.Verdict != VerdictPass || res.Refused != 7 {
			t.Errorf("%s: verdict %s, %d refused; want pass, 7", strategy, res.Verdict, res.Refused)
		}
	}
}

// TestAuthFails makes each clause of the auth rule fail on purpose.
func TestAuthFails(t *testing.T) {
	good, rows := mixedHistory(t)
	ta := tokenFor(t, rowA, nil)
	for _, tc := range []struct {
		name   string
		ops    []history.Op
		rows   []Row
		counts map[Rule]int
		line   string
	}{
		{name: "a cross-tenant token", line: AuthForeignForbidden, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKey(ok(t, alice, 3, 0, "pod-b", 1, 4, ta), bob.Tenant))},
		{name: "another tenant's key unauthenticated", line: AuthForeignForbidden, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKey(op(alice, 3, 0, "pod-b", 1, 4, 401, unauthenticated), bob.Tenant))},
		{name: "a 403 without the forbidden code", line: AuthForeignForbidden, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKey(op(alice, 3, 0, "pod-b", 1, 4, 403, "<html>Forbidden</html>"), bob.Tenant))},
		{name: "another tenant's key in conflict", line: AuthForeignForbidden, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKey(retryLater(op(alice, 3, 0, "pod-b", 1, 4, 409, conflict)), bob.Tenant))},
		{name: "another tenant's key unavailable in a fault", line: AuthForeignForbidden, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKey(retryLater(op(bob, 3, 0, "pod-b", 101, 103, 503, unavailable)), alice.Tenant))},
		{name: "a token without a key", line: AuthNoKeyUnauthenticated, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKey(ok(t, alice, 4, 0, "pod-a", 2, 3, ta), ""))},
		{name: "no key forbidden", line: AuthNoKeyUnauthenticated, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKey(op(alice, 4, 0, "pod-a", 2, 3, 403, forbidden), ""))},
		// The unknown-key-forbidden mutant's shape: a key of no tenant taken for a tenant's.
		{name: "an unknown key forbidden", line: AuthUnknownKeyUnauthenticated, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKind(op(bob, 4, 0, "pod-a", 102, 105, 403, forbidden), history.KeyUnknown))},
		{name: "a token for an unknown key", line: AuthUnknownKeyUnauthenticated, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKind(ok(t, alice, 5, 0, "pod-a", 2, 4, ta), history.KeyUnknown))},
		{name: "a malformed key crashes the handler", line: AuthMalformedKeyUnauthenticated, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKind(op(alice, 5, 0, "pod-a", 2, 4, 500, `{"error":"internal","message":"internal error"}`), history.KeyMalformed))},
		{name: "a token for a malformed key", line: AuthMalformedKeyUnauthenticated, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKind(ok(t, alice, 5, 0, "pod-a", 2, 4, ta), history.KeyMalformed))},
		{name: "a malformed key unavailable in a fault", line: AuthMalformedKeyUnauthenticated, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, withKind(retryLater(op(bob, 4, 0, "pod-a", 102, 105, 503, unavailable)), history.KeyMalformed))},
		{name: "its own key unauthenticated", line: AuthOwnKeyServed, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, op(alice, 1, 0, "pod-b", 1, 9, 401, unauthenticated))},
		{name: "its own key forbidden", line: AuthOwnKeyServed, counts: map[Rule]int{RuleAuth: 1},
			ops: replace(good, op(alice, 1, 0, "pod-b", 1, 9, 403, forbidden))},
		{name: "a row made with foreign keys", line: AuthNoRowWithoutOwnKey, counts: map[Rule]int{RuleAuth: 1},
			ops: good, rows: append(slices.Clone(rows), Row{ID: "dave-row", Tenant: dave.Tenant, Key: dave.EntityKey, CreatedAt: created})},
		{
			// Alice's own requests never got through; the token her foreign request got is no
			// token of hers. Her 409 blames a race that no request with her own key ran
			// (fail-fast's conflict line).
			name: "a foreign token is no final token", line: AuthForeignForbidden, counts: map[Rule]int{RuleAuth: 1, RuleFinalToken: 1, RuleContract: 1},
			ops: append(without(good, alice),
				retryLater(op(alice, 0, 0, "pod-a", 0, 10, 409, conflict)),
				withKey(okCreated(t, alice, 3, 0, "pod-b", 1, 4, ta), bob.Tenant)),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rows == nil {
				tc.rows = rows
			}
			res := judge(t, tc.ops, tc.rows, mixedParams(), tc.counts)
			var lines []string
			for _, v := range res.Violations {
				for _, f := range v.Findings {
					if f.Kind == KindAuthBreach {
						lines = append(lines, f.Line)
					}
				}
			}
			if len(lines) != 1 || lines[0] != tc.line {
				t.Errorf("auth clauses broken %v, want [%s]", lines, tc.line)
			}
		})
	}
}

// TestAuthLeavesAlone: what says nothing about the key is no auth violation, and a customer
// registered before the run may well have its row though this run sent it foreign keys only.
func TestAuthLeavesAlone(t *testing.T) {
	good, rows := mixedHistory(t)
	p := mixedParams()
	p.Registered = []history.Customer{dave}
	judge(t, good, append(slices.Clone(rows), Row{ID: "dave-row", Tenant: dave.Tenant, Key: dave.EntityKey, CreatedAt: created}), p, nil)

	lostOnly := append(without(good, dave), withKey(lost(dave, 0, 20_000, 25_000, 0, "EOF"), alice.Tenant))
	judge(t, lostOnly, rows, mixedParams(), nil)
}

// TestAuthBeforeAPIKeys: a history without keys is one refused-or-breached request after another
// for a service with API keys, and none at all for params saved before it had them.
func TestAuthBeforeAPIKeys(t *testing.T) {
	ta, tb := tokenFor(t, rowA, nil), tokenFor(t, rowB, nil)
	ops := []history.Op{okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta), ok(t, alice, 1, 0, "pod-b", 1, 9, ta),
		okCreated(t, bob, 0, 0, "pod-b", 100, 110, tb), ok(t, bob, 1, 0, "pod-a", 101, 109, tb)}
	for i := range ops {
		ops[i].KeyTenant = ""
	}
	// Keyless customers need no token of their own, but must not have got one, nor a row.
	judge(t, ops, []Row{rowA, rowB}, params(), map[Rule]int{RuleAuth: 2})
	saved := params().Save()
	saved.Version, saved.Audience, saved.TokenTTL = 0, "", 0 // a file from before versions and API keys
	before, err := saved.Params(fixtureAPI)
	if err != nil {
		t.Fatal(err)
	}
	before.Base = base
	judge(t, ops, []Row{rowA, rowB}, before, nil)
}

// TestCoverageCountsOwnKeysOnly: a refusal on another pod at the same time is no race, and a
// customer that sent no request with its own key is not counted for coverage at all.
func TestCoverageCountsOwnKeysOnly(t *testing.T) {
	ops, rows := mixedHistory(t)
	res := judge(t, ops, rows, mixedParams(), nil)
	if c := res.Coverage; c.WithoutOwnKey != 1 || c.Customers != 2 || c.Covered != 2 || !strings.Contains(c.Describe(res.Names), "1 more entities") {
		t.Errorf("coverage %+v: want dave left out, alice and bob covered", c)
	}
	// Alice's own requests all on pod-a; only her refused ones went to pod-b.
	ta := tokenFor(t, rowA, nil)
	onePod := append(without(ops, alice),
		okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta), ok(t, alice, 1, 0, "pod-a", 1, 9, ta),
		withKey(op(alice, 3, 0, "pod-b", 1, 4, 403, forbidden), bob.Tenant),
		withKey(op(alice, 4, 0, "pod-b", 2, 3, 401, unauthenticated), ""))
	res = judge(t, onePod, rows, mixedParams(), nil)
	if c := res.Coverage; c.Covered != 1 {
		t.Errorf("coverage %+v: alice's own requests never met another pod's, yet she counts as covered", c)
	}
}
