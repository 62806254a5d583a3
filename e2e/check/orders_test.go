package check

import (
	"fmt"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// ordersTarget is the part of a target file the checker reads, for an API unlike the token
// service's: 201 for a new order and 200 for a replay (no created flag), an opaque receipt
// that must merely be one per key, and application/problem+json errors whose code is a type
// URI beside a title and a numeric status.
const ordersTarget = `
name: orders
create:
  method: POST
  path: /orders
  headers: {Idempotency-Key: "{{key}}"}
  body: {shop: "{{tenant}}", email: "{{email}}"}
identity: {key: {header: Idempotency-Key}, tenant: {field: shop}}
response:
  id: /order_id
  credential: /receipt
  verifier: {type: equal}
  outcomes:
    new: {status: 201, contentType: application/json, members: [order_id, receipt, "total:number"]}
    existing: {status: 200, contentType: application/json, members: [order_id, receipt, "total:number"]}
    replayed: {status: 200, contentType: application/json, members: [order_id, receipt, "total:number"]}
errors:
  codePointer: /type
  contentType: application/problem+json
  members: [type, title, "status:number"]
  answers:
    - {status: 401, code: "https://orders.test/unauthenticated", class: unauthenticated, retryAfter: false, headers: {WWW-Authenticate: Bearer}}
    - {status: 403, code: "https://orders.test/forbidden", class: forbidden, retryAfter: false}
    - {status: 403, code: "https://orders.test/tenant-mismatch", class: forbidden, retryAfter: false}
    - {status: 409, code: "https://orders.test/in-progress", class: in-progress, retryAfter: true}
truth:
  query: SELECT id, shop, idem_key, email, created_at FROM orders WHERE shop = ANY($1)
  columns: {id: id, key: idem_key, tenant: shop, createdAt: created_at, agree: {email: email}}
modes:
  - name: locked
    contract: {exactlyOnce: true, rivalOnly: [in-progress]}
`

// ordersAPI reads ordersTarget as the checker would from its file (target.Load adds the
// validation of the sections the checker does not read).
func ordersAPI(t *testing.T) API {
	t.Helper()
	var tg target.Target
	if err := yaml.Unmarshal([]byte(ordersTarget), &tg); err != nil {
		t.Fatal(err)
	}
	api, err := APIFromTarget(&tg)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// ordersHistory is two customers of two shops, each raced on two pods: one 201, one 200 replay
// with the same body; and one request with another shop's key refused 403 problem+json.
func ordersHistory() ([]history.Op, []Row, []history.Customer) {
	created := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	var (
		ops       []history.Op
		rows      []Row
		customers []history.Customer
	)
	for i := range 2 {
		c := history.Customer{Index: i, Tenant: fmt.Sprintf("shop-%d", i), EntityKey: fmt.Sprintf("idem-%d", i), Email: fmt.Sprintf("buyer%d@orders.test", i)}
		id := fmt.Sprintf("ord-%d", i)
		email := c.Email
		rows = append(rows, Row{ID: id, Tenant: c.Tenant, Key: c.EntityKey, CreatedAt: created, Agree: map[string]*string{"email": &email}})
		customers = append(customers, c)
		body := fmt.Sprintf(`{"order_id":%q,"receipt":"rcpt-%d","total":42}`, id, i)
		for seq, status := range []int{201, 200} {
			at := time.Duration(i*100) * time.Millisecond
			ops = append(ops, history.Op{Customer: c, Seq: seq, Phase: history.PhaseBurst, KeyTenant: c.Tenant,
				Call: at, Return: at + 10*time.Millisecond, Status: status, Body: body, Pod: []string{"pod-a", "pod-b"}[seq],
				ServerStart: at + time.Millisecond, ServerEnd: at + 9*time.Millisecond,
				HeadersRecorded: true, ContentType: "application/json"})
		}
	}
	ops = append(ops, history.Op{Customer: customers[0], Seq: 2, Phase: history.PhaseBurst, KeyTenant: customers[1].Tenant,
		Call: time.Millisecond, Return: 3 * time.Millisecond, Status: 403, Pod: "pod-a",
		Body:            `{"type":"https://orders.test/forbidden","title":"another shop's key","status":403}`,
		HeadersRecorded: true, ContentType: "application/problem+json"})
	return ops, rows, customers
}

// TestOrdersAPI: a target unlike the token service is judged by its API alone: a good history
// passes; a key with two orders, and a 200 whose body lacks the order id, fail.
func TestOrdersAPI(t *testing.T) {
	api := ordersAPI(t)
	contract, err := api.Contract("locked")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		edit func(ops []history.Op, rows []Row) ([]history.Op, []Row)
		want map[Rule]int
		line string
	}{
		{name: "good", edit: func(ops []history.Op, rows []Row) ([]history.Op, []Row) { return ops, rows }, want: map[Rule]int{}},
		{
			name: "two ids for one key",
			edit: func(ops []history.Op, rows []Row) ([]history.Op, []Row) {
				ops[1].Body = `{"order_id":"ord-0b","receipt":"rcpt-0b","total":42}`
				ops[1].Status = 201
				return ops, append(rows, Row{ID: "ord-0b", Tenant: rows[0].Tenant, Key: rows[0].Key, CreatedAt: rows[0].CreatedAt, Agree: rows[0].Agree})
			},
			want: map[Rule]int{RuleOneRow: 1, RuleOneToken: 1, RuleCreated: 1},
		},
		{
			name: "a 200 without the id",
			edit: func(ops []history.Op, rows []Row) ([]history.Op, []Row) {
				ops[1].Body = `{"receipt":"rcpt-0","total":42}`
				return ops, rows
			},
			want: map[Rule]int{RuleTokenMatchesRow: 1, RuleAPIShape: 1, RuleOneToken: 0},
		},
		{
			// A refusal may say why: any code of the forbidden class will do.
			name: "another shop's key refused with another forbidden code",
			edit: func(ops []history.Op, rows []Row) ([]history.Op, []Row) {
				last := &ops[len(ops)-1]
				last.Body = `{"type":"https://orders.test/tenant-mismatch","title":"another shop's key","status":403}`
				return ops, rows
			},
			want: map[Rule]int{},
		},
		{
			name: "another shop's key refused 403 with a code of another class",
			edit: func(ops []history.Op, rows []Row) ([]history.Op, []Row) {
				last := &ops[len(ops)-1]
				last.Body = `{"type":"https://orders.test/unauthenticated","title":"another shop's key","status":403}`
				return ops, rows
			},
			want: map[Rule]int{RuleAuth: 1},
		},
		{
			name: "a 409 in-progress to a rival",
			edit: func(ops []history.Op, rows []Row) ([]history.Op, []Row) {
				return append(ops, inProgress(ops[0].Customer, 2*time.Millisecond)), rows
			},
			want: map[Rule]int{},
		},
		{
			name: "a 409 in-progress to nobody's rival",
			edit: func(ops []history.Op, rows []Row) ([]history.Op, []Row) {
				return append(ops, inProgress(ops[0].Customer, 500*time.Millisecond)), rows
			},
			want: map[Rule]int{RuleContract: 1},
			// The line's name derived from its code and when the mode may give it.
			line: "https://orders.test/in-progress-to-a-rival",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops, rows, customers := ordersHistory()
			ops, rows = tc.edit(ops, rows)
			p := Params{API: api, Base: base, Contract: contract, Customers: customers,
				Coverage: CoverageParams{MinCovered: 1, MinFraction: 0.5}}
			res, err := Check(ops, rows, p)
			if err != nil {
				t.Fatal(err)
			}
			for rule, n := range tc.want {
				if res.Counts[rule] != n {
					t.Errorf("%s: %d violations, want %d: %v", rule, res.Counts[rule], n, res.Violations)
				}
			}
			wantVerdict := VerdictFail
			if len(tc.want) == 0 {
				wantVerdict = VerdictPass
			}
			if res.Verdict != wantVerdict || (wantVerdict == VerdictPass && len(res.Violations) > 0) {
				t.Errorf("verdict %s %v, want %s: %+v", res.Verdict, res.Counts, wantVerdict, res.Violations)
			}
			if _, misrefused := tc.want[RuleAuth]; !misrefused && res.Refused != 1 {
				t.Errorf("refused %d, want the other shop's key's 403", res.Refused)
			}
			if tc.line != "" && (len(res.Violations) != 1 || len(res.Violations[0].Findings) != 1 || res.Violations[0].Findings[0].Line != tc.line) {
				t.Errorf("violations %+v, want one finding of line %s", res.Violations, tc.line)
			}
		})
	}
}

// inProgress is c's request at call refused 409 in-progress, with Retry-After.
func inProgress(c history.Customer, call time.Duration) history.Op {
	return history.Op{Customer: c, Seq: 3, Phase: history.PhaseBurst, KeyTenant: c.Tenant, Call: call, Return: call + 3*time.Millisecond,
		Status: 409, Pod: "pod-b", RetryAfter: "1", HeadersRecorded: true, ContentType: "application/problem+json",
		Body: `{"type":"https://orders.test/in-progress","title":"another request is creating it","status":409}`}
}
