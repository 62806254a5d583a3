package check

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// nullSubjectRun is legacy's bug in goodHistory: alice's second request got a token of nobody.
func nullSubjectRun(t *testing.T) Result {
	good, rows := goodHistory(t)
	ops := replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, tokenFor(t, rowA, func(c *claims) { c.Subject = "" })))
	res, err := Check(ops, rows, params())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// duplicateRun is return-existing's bug in goodHistory: alice has two rows.
func duplicateRun(t *testing.T) Result {
	good, rows := goodHistory(t)
	rows = append(rows, Row{ID: "dup", Tenant: alice.Tenant, Key: alice.EntityKey, CreatedAt: created})
	res, err := Check(good, rows, params())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// dirtyRun is goodHistory with a 500 internal for bob: a violation, but no known bug.
func dirtyRun(t *testing.T) Result {
	good, rows := goodHistory(t)
	res, err := Check(replace(good, op(bob, 1, 0, "pod-a", 101, 104, 500, `{"error":"internal","message":"internal error"}`)), rows, params())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDetect(t *testing.T) {
	null, dup, dirty := nullSubjectRun(t), duplicateRun(t), dirtyRun(t)
	for _, tc := range []struct {
		name     string
		strategy string
		res      Result
		want     Detection
	}{
		{"legacy caught by its null subject", modeLegacy, null, Detection{Customers: 2, Caught: 1}},
		{"legacy not caught by a duplicate", modeLegacy, dup, Detection{Customers: 2}},
		{"return-existing caught by its duplicate", modeReturnExisting, dup, Detection{Customers: 2, Caught: 1}},
		// Legacy's null subject also means two tokens for one customer.
		{"return-existing caught by two tokens", modeReturnExisting, null, Detection{Customers: 2, Caught: 1}},
		{"legacy not caught by a dirty error", modeLegacy, dirty, Detection{Customers: 2}},
		{"return-existing not caught by a dirty error", modeReturnExisting, dirty, Detection{Customers: 2}},
		{"atomic has no known bug", modeAtomic, null, Detection{Customers: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Detect(tc.strategy, tc.res); got != tc.want {
				t.Errorf("Detect = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestDetectIgnoresWording rewrites every detail of a run: detection reads the findings' kinds,
// so the figures stay.
func TestDetectIgnoresWording(t *testing.T) {
	for strategy, res := range map[string]Result{modeLegacy: nullSubjectRun(t), modeReturnExisting: duplicateRun(t)} {
		before := Detect(strategy, res)
		for i := range res.Violations {
			v := &res.Violations[i]
			v.Details = slicesRepeat("reworded", len(v.Details))
			for k := range v.Findings {
				v.Findings[k].Detail = "reworded"
			}
		}
		if after := Detect(strategy, res); after != before || after.Caught != 1 {
			t.Errorf("%s: detection %+v before rewording, %+v after; want 1 caught both times", strategy, before, after)
		}
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestFindingsMatchDetails: every violation carries one typed finding per detail.
func TestFindingsMatchDetails(t *testing.T) {
	for _, res := range []Result{nullSubjectRun(t), duplicateRun(t)} {
		for _, v := range res.Violations {
			if len(v.Findings) != len(v.Details) || len(v.Findings) == 0 {
				t.Fatalf("%s: %d findings, %d details", v.Rule, len(v.Findings), len(v.Details))
			}
			for i, f := range v.Findings {
				if f.Kind == "" || f.Detail != v.Details[i] {
					t.Errorf("%s: finding %+v, detail %q", v.Rule, f, v.Details[i])
				}
			}
		}
	}
	null := nullSubjectRun(t)
	var kinds []Kind
	for _, v := range null.Violations {
		for _, f := range v.Findings {
			kinds = append(kinds, f.Kind)
		}
	}
	if !reflect.DeepEqual(kinds, []Kind{KindEmptySubject, KindTwoTokens, KindTwoTokens, KindTwoTokens}) {
		t.Errorf("kinds of the null-subject run: %v", kinds)
	}
}

// TestCheckIsDeterministic judges a history with violations spread over many customers on one
// worker and on several: the results are identical.
func TestCheckIsDeterministic(t *testing.T) {
	s := syntheticHistory(t, 3000)
	ops := append([]history.Op(nil), s.ops...)
	for i := 0; i < len(ops); i += 7 * perCustomer {
		ops[i].Status, ops[i].Body = 500, `{"error":"internal","message":"internal error"}` // one dirty error every 7th customer
	}
	rows := append([]Row(nil), s.rows...)
	for i := 3; i < len(s.rows); i += 11 {
		rows = append(rows, Row{ID: "dup", Tenant: s.rows[i].Tenant, Key: s.rows[i].Key, CreatedAt: s.rows[i].CreatedAt})
	}
	p := params()
	p.Contract = contract(t, modeAtomic)
	judge := func(procs int) Result {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		res, err := Check(ops, rows, p)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	one, many := judge(1), judge(4)
	if len(one.Violations) == 0 || one.DuplicateCustomers == 0 {
		t.Fatalf("the history should fail: %v", one.Counts)
	}
	if !reflect.DeepEqual(one, many) {
		t.Errorf("one worker and four disagree: %v vs %v", one.Counts, many.Counts)
	}
}

// TestParseTokenResponseIsJSON: the fast path reads a body exactly as encoding/json does.
func TestParseTokenResponseIsJSON(t *testing.T) {
	for _, body := range []string{
		`{"credential":"a.b.c","widget_id":"0b6c8a52","created":true}`,
		"{\"credential\":\"a.b.c\",\"widget_id\":\"0b6c8a52\",\"created\":false}\n",
		`{"credential":"a.b.c","widget_id":"","created":false}`,
		`{"credential":"a\u002eb","widget_id":"x","created":true}`,
		`{"credential":"a\\","widget_id":"x","created":true}`,
		`{"credential":"a\"","widget_id":"\"","created":true}`,
		`{"credential":"é","widget_id":"x","created":true}`,
		"{\"credential\":\"a\xff\",\"widget_id\":\"x\",\"created\":true}",
		`{"widget_id":"x","credential":"a.b.c","created":true}`,
		`{ "credential":"a.b.c","widget_id":"x","created":true}`,
		`{"credential":"a.b.c","widget_id":"x","created":true,"extra":1}`,
		`{"credential":"a.b.c","widget_id":"x","created":null}`,
		`{"credential":"a.b.c","widget_id":"x","created":true}}`,
		`{"credential":"a.b.c","widget_id":"x","created":tru}`,
		`{"credential":null,"widget_id":null,"created":false}`,
		`{"credential":"a.b.c","widget_id":"x"}`,
		`not json`,
		``,
	} {
		got, gotErr := parseTokenResponse(body)
		var want tokenResponse
		wantErr := json.Unmarshal([]byte(body), &want)
		if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("parseTokenResponse(%q) = %+v, %v; encoding/json says %+v, %v", body, got, gotErr, want, wantErr)
		}
	}
}

func TestDetectAnyAndRate(t *testing.T) {
	dirty := dirtyRun(t)
	if d := DetectAny(dirty); d.Caught != 1 || d.Customers != 2 || d.Rate() != 0.5 {
		t.Errorf("DetectAny of a run with one bad customer of two = %+v, rate %v", d, d.Rate())
	}
	if (Detection{}).Rate() != 0 {
		t.Error("the rate of no customer must be 0, not NaN")
	}
}

// lostWriteRun is a crash that lost alice's acknowledged row: her answers name rowA, which the
// database no longer has, and the client's catch-up created her again as rowA2.
func lostWriteRun(t *testing.T) Result {
	good, rows := goodHistory(t)
	rowA2 := Row{ID: "a2", Tenant: rowA.Tenant, Key: rowA.Key, CreatedAt: created.Add(3 * time.Second)}
	rows = slices.DeleteFunc(slices.Clone(rows), func(r Row) bool { return r.ID == rowA.ID })
	rows = append(rows, rowA2)
	ops := append(slices.Clone(good), okCreated(t, alice, 3, 0, "pod-a", 4000, 4010, tokenFor(t, rowA2, nil)))
	res, err := Check(ops, rows, params())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestLostWrite: an acknowledged row that is gone is a lost write, and the durability canary's
// known bug; a token that names no row because its subject is wrong is not.
func TestLostWrite(t *testing.T) {
	res := lostWriteRun(t)
	var kinds []Kind
	for _, v := range res.Violations {
		for _, f := range v.Findings {
			kinds = append(kinds, f.Kind)
		}
	}
	if n := countKind(kinds, KindLostWrite); n != 3 {
		t.Errorf("findings %v: want a lost write for each of alice's 3 answers naming the lost row", kinds)
	}
	if got := Detect(AsyncCommit, res); got != (Detection{Customers: 2, Caught: 1}) {
		t.Errorf("Detect(AsyncCommit) = %+v, want alice caught", got)
	}
	if got := Detect(AsyncCommit, duplicateRun(t)); got.Caught != 0 {
		t.Errorf("a duplicate is not a lost write: %+v", got)
	}
	// The row exists, the token's subject is the key: a mismatch, not a lost write.
	good, rows := goodHistory(t)
	wrong := tokenFor(t, rowA, func(c *claims) { c.Subject = rowA.Key })
	body := fmt.Sprintf(`{"credential":%q,"widget_id":%q,"created":false}`, wrong, rowA.ID)
	res, err := Check(replace(good, op(alice, 1, 0, "pod-b", 1, 9, 200, body)), rows, params())
	if err != nil {
		t.Fatal(err)
	}
	if got := Detect(AsyncCommit, res); got.Caught != 0 || res.Counts[RuleTokenMatchesRow] != 1 {
		t.Errorf("wrong subject: Detect(AsyncCommit) = %+v, matches-row %d; want a mismatch only", got, res.Counts[RuleTokenMatchesRow])
	}
}

func countKind(kinds []Kind, k Kind) int {
	n := 0
	for _, x := range kinds {
		if x == k {
			n++
		}
	}
	return n
}
