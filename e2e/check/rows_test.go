package check

import (
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// withContact returns c sending email and name, as traffic.Customers plans them.
func withContact(c history.Customer) history.Customer {
	c.Email, c.Name = c.EntityKey+"@stampede.test", "Customer "+c.EntityKey
	return c
}

// rowOf is r holding what c sent.
func rowOf(r Row, c history.Customer) Row {
	r.Agree = map[string]*string{"owner_email": nullable(c.Email), "label": nullable(c.Name)}
	return r
}

// contactHistory is goodHistory with alice and bob sending their contact details and their
// rows holding them.
func contactHistory(t *testing.T) ([]history.Op, []Row, Params) {
	ops, rows := goodHistory(t)
	a, b := withContact(alice), withContact(bob)
	for i := range ops {
		switch ops[i].Customer.Key() {
		case alice.Key():
			ops[i].Customer = a
		case bob.Key():
			ops[i].Customer = b
		}
	}
	rows[0], rows[1] = rowOf(rows[0], a), rowOf(rows[1], b)
	p := params()
	p.Customers = []history.Customer{a, b}
	return ops, rows, p
}

func TestRows(t *testing.T) {
	wrong := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		// edit changes the rows and the params of contactHistory.
		edit  func(rows []Row, p *Params) []Row
		kinds []Kind
		lines []string
	}{
		{name: "every row planned and as sent", edit: func(rows []Row, _ *Params) []Row { return rows }},
		{
			// The stray-row mutant's shape: a second row of alice's tenant under a key
			// nobody asked for.
			name: "stray row of a judged tenant",
			edit: func(rows []Row, _ *Params) []Row {
				return append(rows, Row{ID: "stray", Tenant: alice.Tenant, Key: alice.EntityKey + "-shadow", CreatedAt: created})
			},
			kinds: []Kind{KindStrayRow},
		},
		{
			name: "row of an earlier run on the same database is not stray",
			edit: func(rows []Row, p *Params) []Row {
				earlier := history.Customer{Index: 0, Tenant: alice.Tenant, EntityKey: "c-8-0"}
				p.Earlier = []history.Customer{earlier}
				return append(rows, Row{ID: "earlier", Tenant: earlier.Tenant, Key: earlier.EntityKey, CreatedAt: created})
			},
		},
		{
			name: "row of a registered customer is not stray",
			edit: func(rows []Row, p *Params) []Row {
				reg := history.Customer{Index: 5, Tenant: bob.Tenant, EntityKey: "c-8-5"}
				p.Registered = []history.Customer{reg}
				return append(rows, Row{ID: "registered", Tenant: reg.Tenant, Key: reg.EntityKey, CreatedAt: created})
			},
		},
		{
			// The truncated-name mutant's shape.
			name: "wrong name",
			edit: func(rows []Row, _ *Params) []Row {
				rows[0].Agree["label"] = wrong((*rows[0].Agree["label"])[:8])
				return rows
			},
			kinds: []Kind{KindRowMismatch}, lines: []string{"label"},
		},
		{
			name: "wrong email",
			edit: func(rows []Row, _ *Params) []Row {
				rows[1].Agree["owner_email"] = wrong("someone@else.test")
				return rows
			},
			kinds: []Kind{KindRowMismatch}, lines: []string{"owner_email"},
		},
		{
			name: "email stored though none was sent",
			edit: func(rows []Row, p *Params) []Row {
				p.Customers[0].Email = ""
				return rows
			},
			kinds: []Kind{KindRowMismatch}, lines: []string{"owner_email"},
		},
		{
			name: "NULL name though one was sent",
			edit: func(rows []Row, _ *Params) []Row {
				rows[0].Agree["label"] = nil
				return rows
			},
			kinds: []Kind{KindRowMismatch}, lines: []string{"label"},
		},
		{
			// Saved before judge.json had a version: earlier runs unknown, strays not judged.
			name: "stray row in params saved before rows were judged",
			edit: func(rows []Row, p *Params) []Row {
				p.savedBeforeRows = true
				return append(rows, Row{ID: "stray", Tenant: alice.Tenant, Key: "x", CreatedAt: created})
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops, rows, p := contactHistory(t)
			rows = tc.edit(rows, &p)
			res, err := Check(ops, rows, p)
			if err != nil {
				t.Fatal(err)
			}
			var got []Violation
			for _, v := range res.Violations {
				if v.Rule == RuleRows {
					got = append(got, v)
				}
			}
			if len(tc.kinds) == 0 {
				if len(got) != 0 || res.Verdict != VerdictPass {
					t.Fatalf("verdict %s, rows violations %+v; want a pass", res.Verdict, got)
				}
				return
			}
			if res.Verdict != VerdictFail || len(got) != 1 || res.Counts[RuleRows] != 1 || len(res.Violations) != 1 {
				t.Fatalf("verdict %s, counts %v, violations %+v; want one %s violation and no other", res.Verdict, res.Counts, res.Violations, RuleRows)
			}
			if !got[0].HasKind(tc.kinds...) {
				t.Fatalf("findings %+v, want %v", got[0].Findings, tc.kinds)
			}
			for i, l := range tc.lines {
				if got[0].Findings[i].Line != l {
					t.Fatalf("finding %d line %q, want %q", i, got[0].Findings[i].Line, l)
				}
			}
			if got[0].HasKind(KindStrayRow) && got[0].Customer.Index != -1 {
				t.Fatalf("stray row's customer %+v, want index -1", got[0].Customer)
			}
		})
	}
}
