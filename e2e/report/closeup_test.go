package report

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/targets/tokensvc"
)

// TestChartDataCarriesRowsAndFindings checks what the race close-up draws from beside the
// requests: each customer's rows with their creation on the part's clock (a row no customer of
// the part accounts for left out), the findings in words, and the target's name.
func TestChartDataCarriesRowsAndFindings(t *testing.T) {
	v := canaryRun(t)
	stray := check.Row{ID: "stray", Tenant: "m-x", Key: "nobody", CreatedAt: fixtureEpoch.Add(time.Second)}
	v.Specs[0].Parts[0].Rows = append(v.Specs[0].Parts[0].Rows, stray)
	_, data := buildPage(v)
	if data.Target != "tokensvc" {
		t.Errorf("target %q, want the run's", data.Target)
	}
	cp := data.Parts[0]
	tr := cp.Truth
	if len(tr.ID) != 9 || len(tr.Customer) != 9 || len(tr.At) != 9 {
		t.Fatalf("truth has %d/%d/%d entries, want the 9 rows of the part's customers: %+v", len(tr.ID), len(tr.Customer), len(tr.At), tr)
	}
	if slices.Contains(tr.ID, "stray") {
		t.Errorf("the stray row is in the truth: %v", tr.ID)
	}
	if !slices.IsSorted(tr.At) {
		t.Errorf("rows not in order of creation: %v", tr.At)
	}
	k := slices.Index(tr.ID, "0b6c8a52-0000-4000-8000-000000000300")
	if k < 0 {
		t.Fatalf("no row for the canary's customer: %v", tr.ID)
	}
	if c := tr.Customer[k]; cp.Customers.Index[c] != canaryCustomer.Index {
		t.Errorf("the canary's row names customer %d, want %d", cp.Customers.Index[c], canaryCustomer.Index)
	}
	if tr.At[k] != 202_000 {
		t.Errorf("the canary's row created at %d µs, want 202000 (its created_at less the base)", tr.At[k])
	}
	if len(cp.Viol) != 2 || len(cp.Viol[0].Say) != 1 || !strings.Contains(cp.Viol[0].Say[0], "empty-subject 300/1/0: empty subject") {
		t.Errorf("the violations' words: %+v", cp.Viol)
	}
}

// TestSayOfBounds keeps a violation's words short: at most maxSay findings, each cut, and the
// details of a violation from before findings.
func TestSayOfBounds(t *testing.T) {
	var v check.Violation
	for range maxSay + 3 {
		v.Findings = append(v.Findings, check.Finding{Kind: check.KindTwoTokens, Detail: strings.Repeat("x", 3*bodyExcerpt)})
	}
	say := sayOf(v)
	if len(say) != maxSay {
		t.Errorf("%d lines, want %d", len(say), maxSay)
	}
	for _, s := range say {
		if len(s) > bodyExcerpt+len("…") {
			t.Errorf("a line of %d bytes", len(s))
		}
	}
	old := check.Violation{Details: []string{"2 rows for m-7-0/c-7-100"}}
	if got := sayOf(old); len(got) != 1 || got[0] != "2 rows for m-7-0/c-7-100" {
		t.Errorf("details of an old violation: %q", got)
	}
	if got := sayOf(check.Violation{Customer: history.Customer{}}); got == nil || len(got) != 0 {
		t.Errorf("no findings: %#v, want an empty list", got)
	}
}

// TestAnswersByAPIReadAsBefore reads the fixture's answers by the token service's API, as a run
// that saved it is read, and by the format of runs that did not: the page must show the same.
func TestAnswersByAPIReadAsBefore(t *testing.T) {
	api, err := tokensvc.API()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range fixtureRun(t).Specs {
		for _, part := range s.Parts {
			old := buildChartPart(part)
			part.API = &api
			if byAPI := buildChartPart(part); !reflect.DeepEqual(byAPI, old) {
				t.Errorf("%s: read by the API, the chart data differs:\n%+v\nwant\n%+v", s.Name, byAPI.Tokens, old.Tokens)
			}
		}
	}
}

// TestAnswersByAPIOfAnotherTarget reads the answers of a target whose credential is its entity's
// id, compared for equality, and whose status tells a new entity: each id is a credential whose
// subject is the id, 201 says created, and an answer without an id names nobody.
func TestAnswersByAPIOfAnotherTarget(t *testing.T) {
	api := check.API{ID: "/id", Credential: "/id", Verifier: check.VerifierEqual, ErrorCode: "/error",
		New: check.Promise{Status: 201}, Existing: check.Promise{Status: 200}}
	c := customerN(1)
	op := func(seq, status int, body string) history.Op {
		return history.Op{Customer: c, Seq: seq, Call: ms(float64(seq)), Return: ms(float64(seq) + 2), Status: status, Body: body, Pod: "orders-a"}
	}
	part := PartView{API: &api, History: []history.Op{
		op(0, 201, `{"id":"o-1","sku":"w"}`), op(1, 200, `{"id":"o-1","sku":"w"}`), op(2, 200, `{"id":"o-2"}`),
		op(3, 200, `{"id":""}`), op(4, 409, `{"error":"key_in_use"}`),
	}}
	cp := buildChartPart(part)
	if !slices.Equal(cp.Tokens.Sub, []string{"o-1", "o-2", ""}) || !slices.Equal(cp.Tokens.FP, []string{check.Fingerprint("o-1"), check.Fingerprint("o-2"), check.Fingerprint("")}) {
		t.Errorf("credentials %+v", cp.Tokens)
	}
	if !slices.Equal(cp.Ops.Created, []int{1, 0, 0, 0, -1}) {
		t.Errorf("created %v, want the 201 alone", cp.Ops.Created)
	}
	tok, want := 0, []int{0, 0, 1, 2, -1}
	for i, d := range cp.Ops.DToken {
		tok += d
		if tok-1 != want[i] {
			t.Errorf("request %d: credential %d, want %d", i, tok-1, want[i])
		}
	}
	if cp.Strings[cp.Ops.Msg[4]] != "key_in_use" || cp.Ops.Msg[0] != 0 {
		t.Errorf("messages %v of %q", cp.Ops.Msg, cp.Strings)
	}
}
