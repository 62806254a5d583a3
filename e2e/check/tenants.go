package check

import (
	"fmt"
	"slices"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// The clauses of RuleTenants, as Finding.Line names them: what two customers were both given.
const (
	// TenantsCustomerID: a customer_id in a 2xx body.
	TenantsCustomerID = "distinct-customer-id"
	// TenantsSubject: a verified token's sub claim.
	TenantsSubject = "distinct-subject"
	// TenantsToken: a token.
	TenantsToken = "distinct-token"
)

// identity is one thing a 2xx gave a customer that no other customer may be given: its
// customer_id, its token's subject or its token (line says which), and the first request that
// got it.
type identity struct {
	line, value string
	op          *history.Op
}

// identities returns what the distinct 2xx answers of one customer gave it, each once.
func identities(answers []answer, first func(ai int) *history.Op) []identity {
	var out []identity
	add := func(line, value string, op *history.Op) {
		// A handful per customer (one answer, usually): a scan beats a map.
		if value == "" || slices.ContainsFunc(out, func(id identity) bool { return id.line == line && id.value == value }) {
			return
		}
		out = append(out, identity{line, value, op})
	}
	for ai := range answers {
		a := &answers[ai]
		if !a.parsed {
			continue
		}
		op := first(ai)
		add(TenantsCustomerID, a.customerID, op)
		if a.err == nil {
			add(TenantsSubject, a.claims.Subject, op)
		}
		add(TenantsToken, a.token, op)
	}
	return out
}

// checkTenants applies RuleTenants: each identity belongs to the first customer (in report
// order) that was given it; every later customer given it too gets a violation naming both.
func checkTenants(g *grouping, judgements []judgement) []Violation {
	type owner struct {
		customer int
		op       *history.Op
	}
	owners := map[identity]owner{}
	var out []Violation
	for i, j := range judgements {
		c := g.customers[i].customer
		var (
			findings []Finding
			ops      []*history.Op
		)
		for _, id := range j.identities {
			k := identity{line: id.line, value: id.value}
			o, taken := owners[k]
			if !taken {
				owners[k] = owner{i, id.op}
				continue
			}
			if o.customer == i {
				continue
			}
			other := g.customers[o.customer].customer
			what := map[string]string{TenantsCustomerID: "customer_id %q", TenantsSubject: "token subject %q", TenantsToken: "token %s"}[id.line]
			value := id.value
			if id.line == TenantsToken {
				value = Fingerprint(value)
			}
			findings = append(findings, Finding{Kind: KindSharedIdentity, Request: id.op.ID(), Line: id.line,
				Detail: fmt.Sprintf("%s: "+what+", already given to customer %s (%s): two customers answered as one",
					id.op.ID(), value, other, o.op.ID())})
			for _, op := range []*history.Op{o.op, id.op} {
				if !slices.Contains(ops, op) {
					ops = append(ops, op)
				}
			}
		}
		if len(findings) > 0 {
			out = append(out, newViolation(RuleTenants, c, ops, findings))
		}
	}
	return out
}
