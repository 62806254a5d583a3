package check

import (
	"fmt"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// checkRows applies RuleRows to the rows the grouping holds: a row of one of the judged
// customers' tenants that belongs to no judged customer and to none of earlier is a stray
// (KindStrayRow), and a judged customer's row whose email or name is not what its requests sent
// is a mismatch (KindRowMismatch). Rows of other tenants are another run's, not ours. The
// violations come in row order, stray rows first, so that the result does not depend on how
// the customers were judged.
func checkRows(api *API, g *grouping, earlier []history.Customer, judgeStrays bool) []Violation {
	var out []Violation
	if judgeStrays {
		out = append(out, strayRows(g, earlier, api.Nouns().Entity)...)
	}
	for _, pc := range g.customers {
		var findings []Finding
		// The rows' indexes, not rowsOf's copy: this pass runs over every customer of a
		// million-request history.
		for _, r := range g.rowIdx[g.rowStart[pc.slot]:g.rowStart[pc.slot+1]] {
			findings = append(findings, rowMismatches(api, pc.customer, &g.allRows[r])...)
		}
		if len(findings) > 0 {
			out = append(out, newViolation(RuleRows, pc.customer, nil, findings))
		}
	}
	return out
}

// strayRows returns one violation per key of the rows no judged or earlier customer owns, among
// the tenants of the judged customers; entity is the target's word for one (Names.Entity).
func strayRows(g *grouping, earlier []history.Customer, entity string) []Violation {
	tenants := map[string]bool{}
	for _, pc := range g.customers {
		tenants[pc.customer.Tenant] = true
	}
	owned := make(map[history.Key]bool, len(earlier))
	for _, c := range earlier {
		owned[c.Key()] = true
	}
	var (
		out  []Violation
		seen = map[history.Key]int{}
	)
	for _, r := range g.allRows {
		k := rowKey(&r)
		if _, judged := g.slots[k]; judged || !tenants[r.Tenant] || owned[k] {
			continue
		}
		f := Finding{Kind: KindStrayRow, Detail: fmt.Sprintf("row %s (%s/%s, created %s) belongs to no %s the run planned: no request asked for it",
			r.ID, r.Tenant, r.Key, r.CreatedAt.Format("15:04:05.000000"), entity)}
		if i, ok := seen[k]; ok {
			out[i].Findings = append(out[i].Findings, f)
			out[i].Details = append(out[i].Details, f.Detail)
			continue
		}
		seen[k] = len(out)
		// Index -1: no planned customer has this key.
		out = append(out, newViolation(RuleRows, history.Customer{Index: -1, Tenant: r.Tenant, EntityKey: r.Key}, nil, []Finding{f}))
	}
	return out
}

// rowMismatches compares the columns of r that the request wrote with what c's requests sent:
// the key (grouping guarantees it) and each member the API says the row keeps (API.Agree), NULL
// when none was sent.
func rowMismatches(api *API, c history.Customer, r *Row) []Finding {
	var out []Finding
	for _, field := range api.Agree {
		value, ok := api.fieldValue(field)
		if !ok {
			continue
		}
		got := r.Agree[field]
		if want := nullable(value(c)); !equalNullable(want, got) {
			out = append(out, Finding{Kind: KindRowMismatch, Line: field,
				Detail: fmt.Sprintf("row %s: %s is %s, its requests sent %s", r.ID, field, showNullable(got), showNullable(want))})
		}
	}
	return out
}

// nullable is s as the service stores it: NULL (nil) for an empty string.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func equalNullable(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func showNullable(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}
