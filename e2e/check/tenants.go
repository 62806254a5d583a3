package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// The clauses of RuleTenants, as Finding.Line names them: what two customers were both given.
const (
	// TenantsCustomerID: an entity id in a 2xx body (API.ID).
	TenantsCustomerID = "distinct-customer-id"
	// TenantsSubject: a verified token's sub claim.
	TenantsSubject = "distinct-subject"
	// TenantsToken: a token.
	TenantsToken = "distinct-token"
)

// identity is one value a 2xx gave a customer that no other customer may be given: a
// entity id, a token's subject or a token (line says which it was first), and the first
// request that got it. Values are compared whatever their line: one customer's entity id as
// another's subject is one identity shared.
type identity struct {
	line, value string
	op          *history.Op
}

// addIdentities adds to ids what answer a, got by op, gave its customer, each value once: its
// entity id, its verified token's subject (most often the same value), and its token when no
// subject stands for it (a token that did not verify, or names nobody), since one token is one
// subject.
func addIdentities(ids []identity, a *answer, op *history.Op) []identity {
	if !a.parsed {
		return ids
	}
	add := func(line, value string) {
		// A handful per customer (one answer, usually): a scan beats a map.
		if value == "" || slices.ContainsFunc(ids, func(id identity) bool { return id.value == value }) {
			return
		}
		ids = append(ids, identity{line, value, op})
	}
	add(TenantsCustomerID, a.customerID)
	if a.err == nil && a.v.Subject != "" {
		add(TenantsSubject, a.v.Subject)
	} else {
		add(TenantsToken, a.token)
	}
	return ids
}

// checkTenants applies RuleTenants: each identity belongs to the first customer (in report
// order) that was given it; every later customer given it too gets a violation naming both.
func checkTenants(api *API, g *grouping, judgements []judgement) []Violation {
	type owner struct {
		customer int
		op       *history.Op
	}
	owners := make(map[string]owner, len(judgements))
	var out []Violation
	for i, j := range judgements {
		c := g.customers[i].customer
		var (
			findings []Finding
			ops      []*history.Op
		)
		for _, id := range j.identities {
			o, taken := owners[id.value]
			if !taken {
				owners[id.value] = owner{i, id.op}
				continue
			}
			if o.customer == i {
				continue
			}
			other := g.customers[o.customer].customer
			// The id is named as the API's body names it (API.ID's member).
			what := map[string]string{TenantsCustomerID: strings.ReplaceAll(pointerName(api.ID), "%", "%%") + " %q", TenantsSubject: "token subject %q", TenantsToken: "token %s"}[id.line]
			value := id.value
			if id.line == TenantsToken {
				value = Fingerprint(value)
			}
			findings = append(findings, Finding{Kind: KindSharedIdentity, Request: id.op.ID(), Line: id.line,
				Detail: fmt.Sprintf("%s: "+what+", already given to %s %s (%s): two %s answered as one",
					id.op.ID(), value, api.Nouns().Entity, other, o.op.ID(), api.Nouns().Entities)})
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
