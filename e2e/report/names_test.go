package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// oldNames are the rules' and kinds' names before issue 21, as violations.json files of the
// runs saved then write them; longest first, so that no name is replaced inside another.
var oldNames = [][2]string{
	{`"matches-row"`, `"token-matches-row"`},
	{`"valid-credential"`, `"valid-token"`},
	{`"one-credential"`, `"one-token"`},
	{`"final-credential"`, `"final-token"`},
	{`"verifier-keys"`, `"jwks"`},
	{`"two-credentials"`, `"two-tokens"`},
	{`"invalid-credential"`, `"invalid-token"`},
	{`"credential-mismatch"`, `"token-mismatch"`},
	{`"no-final-credential"`, `"no-final-token"`},
}

// TestRecheckOldNames: a run saved before the rules were renamed (violations.json naming
// token-matches-row and jwks, judge.json's API without names) loads with the new names and
// re-checks the same as live, in the token service's words.
func TestRecheckOldNames(t *testing.T) {
	run := judgedRun(t)
	dir := filepath.Join(t.TempDir(), "spec")
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ViolationsJSONFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range oldNames {
		b = bytes.ReplaceAll(b, []byte(r[0]), []byte(r[1]))
	}
	if !bytes.Contains(b, []byte(`"token-matches-row": 1`)) || !bytes.Contains(b, []byte(`"rule": "token-matches-row"`)) {
		t.Fatalf("the old file names no old rule, so it tests nothing:\n%s", b)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	editJudgeParams(t, dir, func(p map[string]any) { delete(p["api"].(map[string]any), "names") })

	again, err := RecheckDir(dir, tokensvcAPI(t))
	if err != nil {
		t.Fatal(err)
	}
	ruled := slices.ContainsFunc(again.Saved.Violations, func(v check.Violation) bool { return v.Rule == check.RuleTokenMatchesRow })
	if !again.Same || again.Saved.Counts[check.RuleTokenMatchesRow] != 1 || !ruled {
		t.Fatalf("re-checked same=%v, saved counts %v", again.Same, again.Saved.Counts)
	}
	loaded, err := Load(dir, tokensvcAPI(t))
	if err != nil {
		t.Fatal(err)
	}
	var summary strings.Builder
	if err := loaded.WriteSummary(&summary); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"customers: 2\n", "client-side 1 of 1 customers", "a customer's burst", "  matches-row        1\n", "  verifier-keys      0\n"} {
		if !strings.Contains(summary.String(), want) {
			t.Errorf("summary of the old run lacks %q:\n%s", want, summary.String())
		}
	}

	// An unknown name is no alias: the saved judgement then differs.
	b = bytes.ReplaceAll(b, []byte(`"token-matches-row"`), []byte(`"token-matches-rows"`))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := RecheckDir(dir, tokensvcAPI(t)); err != nil || again.Same {
		t.Errorf("a rule of no name re-checked the same (%v)", err)
	}
}

// TestSummaryTokensvcWords: the token service's summary reads as it did before the target's
// words were read, but for the rules' new names: every rule listed, verifier-keys among them.
func TestSummaryTokensvcWords(t *testing.T) {
	run := judgedRun(t)
	var b strings.Builder
	if err := run.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"customers: 2\n", "coverage: client-side 1 of 1 customers (100%) had requests on two pods", "(1 more bursts met a fault window",
		"burst spread: first to last request of a customer's burst leaving: ", " over 2 customers; "} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if got := listedRules(s); !slices.Equal(got, check.Rules) {
		t.Errorf("summary lists %v, want every rule %v", got, check.Rules)
	}
}

// TestSummaryOrdersWords: the orders target's summary (targets/orders/target.yaml) reads in its
// words: orders, not customers, no token, and no verifier-keys rule for its equal verifier.
func TestSummaryOrdersWords(t *testing.T) {
	tg, err := target.Load("../../targets/orders/target.yaml")
	if err != nil {
		t.Fatal(err)
	}
	api, err := check.APIFromTarget(tg)
	if err != nil {
		t.Fatal(err)
	}
	contract, err := api.Contract("naive")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 7, 6, 30, 0, 0, time.UTC)
	var (
		ops       []history.Op
		rows      []check.Row
		customers []history.Customer
	)
	for i := range 2 {
		c := history.Customer{Index: i, Tenant: "t-1", EntityKey: fmt.Sprintf("k-%d", i), Email: "a@b.test", Name: "A"}
		customers = append(customers, c)
		for seq, pod := range []string{"pod-a", "pod-b"} {
			id := fmt.Sprintf("ord-%d-%d", i, seq) // naive's bug: two orders for one key
			email, name := c.Email, c.Name
			rows = append(rows, check.Row{ID: id, Tenant: c.Tenant, Key: c.EntityKey, CreatedAt: base,
				Agree: map[string]*string{"customer_email": &email, "customer_name": &name}})
			at := time.Duration(i*100) * time.Millisecond
			ops = append(ops, history.Op{Customer: c, Seq: seq, Phase: history.PhaseBurst, KeyTenant: c.Tenant,
				Call: at, Return: at + 10*time.Millisecond, Status: 201, Body: fmt.Sprintf(`{"id":%q}`, id), Pod: pod,
				ServerStart: at + time.Millisecond, ServerEnd: at + 9*time.Millisecond, HeadersRecorded: true, ContentType: "application/json"})
		}
	}
	p := check.Params{API: api, Base: base, Contract: contract, Customers: customers,
		Coverage: check.CoverageParams{MinCovered: 1, MinFraction: 0.5}}
	res, err := check.Check(ops, rows, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[check.RuleOneToken] == 0 {
		t.Fatalf("fixture judged %v, want naive's two orders for one key", res.Counts)
	}
	run := Run{Repro: "make e2e TARGET=targets/orders", Base: base, History: ops, Result: res, Params: p, Rows: rows}
	var b strings.Builder
	if err := run.WriteSummary(&b); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := res.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"summary": b.String(), "violations.txt": text.String()} {
		if m := regexp.MustCompile(`(?i)token|customer|jwks|verifier-keys`).FindString(s); m != "" {
			t.Errorf("%s names %q:\n%s", name, m, s)
		}
	}
	if !strings.Contains(text.String(), "RULE            ORDER ") {
		t.Errorf("violations.txt's table does not head its column ORDER:\n%s", text.String())
	}
	s := b.String()
	for _, want := range []string{"orders: 2\n", "client-side 2 of 2 orders", "an order's burst", "  one-credential     2\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if got, want := listedRules(s), slices.DeleteFunc(slices.Clone(check.Rules), func(r check.Rule) bool { return r == check.RuleJWKS }); !slices.Equal(got, want) {
		t.Errorf("summary lists %v, want %v", got, want)
	}
	// What a saved run of it reads back: the target's words from judge.json.
	dir := t.TempDir()
	if err := Write(dir, run); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir, check.API{})
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Result.Names != api.Names || slices.Contains(loaded.Result.AppliedRules(), check.RuleJWKS) {
		t.Errorf("loaded names %+v, rules %v", loaded.Result.Names, loaded.Result.AppliedRules())
	}
	var saved map[string]any
	if b, err := os.ReadFile(filepath.Join(dir, ViolationsJSONFile)); err != nil || json.Unmarshal(b, &saved) != nil || saved["names"] != nil {
		t.Errorf("violations.json keeps the prose's names (%v): a re-check compares it whole", err)
	}
}

// listedRules are the rules a summary lists under "violations:", in order.
func listedRules(summary string) []check.Rule {
	var out []check.Rule
	in := false
	for line := range strings.Lines(summary) {
		switch {
		case strings.HasPrefix(line, "violations: "):
			in = true
		case in && strings.HasPrefix(line, "  "):
			out = append(out, check.Rule(strings.Fields(line)[0]))
		default:
			in = false
		}
	}
	return out
}
