package check

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// erin and frank are two tenants' customers under one key, as every plan now has
// them: bursts one after the other.
var (
	erin  = history.Customer{Index: 4, Tenant: "m-9-0", EntityKey: "c-9-4"}
	frank = history.Customer{Index: 5, Tenant: "m-9-1", EntityKey: "c-9-4"}
	rowE  = Row{ID: "0b6c8a52-0000-4000-8000-00000000000e", Tenant: erin.Tenant, Key: erin.EntityKey, CreatedAt: created}
	rowF  = Row{ID: "0b6c8a52-0000-4000-8000-00000000000f", Tenant: frank.Tenant, Key: frank.EntityKey, CreatedAt: created}
)

// tenantsHistory is goodHistory with erin's and frank's bursts: each registered on two pods at
// once, each its own row and token.
func tenantsHistory(t *testing.T) ([]history.Op, []Row) {
	ops, rows := goodHistory(t)
	te, tf := tokenFor(t, rowE, nil), tokenFor(t, rowF, nil)
	return append(ops,
			okCreated(t, erin, 0, 0, "pod-a", 300, 310, te), ok(t, erin, 1, 0, "pod-b", 301, 309, te),
			okCreated(t, frank, 0, 0, "pod-b", 400, 410, tf), ok(t, frank, 1, 0, "pod-a", 401, 409, tf)),
		append(slices.Clone(rows), rowE, rowF)
}

// TestTenantsPass: two tenants' customers under one key, kept apart, break nothing.
func TestTenantsPass(t *testing.T) {
	ops, rows := tenantsHistory(t)
	if res := judge(t, ops, rows, params(), nil); res.Verdict != VerdictPass {
		t.Errorf("verdict %s, want pass", res.Verdict)
	}
}

// TestTenantsFail makes RuleTenants fail on purpose, by the shapes of services that mix two
// tenants' customers up.
func TestTenantsFail(t *testing.T) {
	good, rows := tenantsHistory(t)
	te := tokenFor(t, rowE, nil)
	badToken := sign(t, jwt.SigningMethodEdDSA, otherKey, serviceClaims(rowE, nil))
	for _, tc := range []struct {
		name   string
		ops    []history.Op
		rows   []Row
		counts map[Rule]int
		lines  []string
	}{
		{
			// The tenant-blind-lookup mutant: the lookup on the entity key alone finds erin's row
			// for frank, who gets her token and no row of his own.
			name: "the second tenant's customer gets the first's row and token",
			ops: replace(replace(good, okCreated(t, frank, 0, 0, "pod-b", 400, 410, te)),
				ok(t, frank, 1, 0, "pod-a", 401, 409, te)),
			rows:   slices.DeleteFunc(slices.Clone(rows), func(r Row) bool { return r.ID == rowF.ID }),
			counts: map[Rule]int{RuleOneRow: 1, RuleTokenMatchesRow: 1, RuleFinalToken: 1, RuleTenants: 1},
			// Her id member and subject are one value: one shared identity.
			lines: []string{TenantsCustomerID},
		},
		{
			// Rows kept apart, but frank's answer names erin's row: what a lookup that reads the
			// winner's row by the entity key alone would answer the loser of a race.
			name: "the second tenant's customer is answered with the first's customer id",
			ops: replace(good, op(frank, 1, 0, "pod-a", 401, 409, 200,
				fmt.Sprintf(`{"credential":%q,"widget_id":%q,"created":false}`, tokenFor(t, rowF, nil), rowE.ID))),
			counts: map[Rule]int{RuleTokenMatchesRow: 1, RuleTenants: 1},
			lines:  []string{TenantsCustomerID},
		},
		{
			name: "the second tenant's customer's token names the first's row",
			ops: replace(good, op(frank, 1, 0, "pod-a", 401, 409, 200,
				fmt.Sprintf(`{"credential":%q,"widget_id":%q,"created":false}`, tokenFor(t, rowF, func(c *claims) { c.Subject = rowE.ID }), rowF.ID))),
			counts: map[Rule]int{RuleTokenMatchesRow: 1, RuleOneToken: 1, RuleTenants: 1},
			lines:  []string{TenantsSubject},
		},
		{
			// A token that does not verify has no subject to stand for it: the token itself.
			name: "two tenants' customers answered with one unverifiable token",
			ops: replace(replace(good,
				op(erin, 1, 0, "pod-b", 301, 309, 200, fmt.Sprintf(`{"credential":%q,"widget_id":%q,"created":false}`, badToken, rowE.ID))),
				op(frank, 1, 0, "pod-a", 401, 409, 200, fmt.Sprintf(`{"credential":%q,"widget_id":%q,"created":false}`, badToken, rowF.ID))),
			counts: map[Rule]int{RuleValidToken: 2, RuleOneToken: 2, RuleTenants: 1},
			lines:  []string{TenantsToken},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rows == nil {
				tc.rows = rows
			}
			res := judge(t, tc.ops, tc.rows, params(), tc.counts)
			var lines []string
			for _, v := range res.Violations {
				if v.Rule != RuleTenants {
					continue
				}
				if v.Customer != frank || !slices.ContainsFunc(v.Requests, func(r Request) bool { return strings.HasPrefix(r.ID, "4/") }) {
					t.Errorf("tenants violation of %s with requests %v: want frank's, naming erin's request", v.Customer, v.Requests)
				}
				for _, f := range v.Findings {
					lines = append(lines, f.Line)
				}
			}
			if !slices.Equal(lines, tc.lines) {
				t.Errorf("tenants lines %v, want %v", lines, tc.lines)
			}
		})
	}
}
