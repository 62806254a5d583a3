package framework

import (
	"slices"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/service/mutants"
)

func result(v check.Verdict, counts map[check.Rule]int) check.Result {
	return check.Result{Verdict: v, Counts: counts}
}

// TestCatalogRules: every rule the catalog expects a mutant to break is one the checker has
// (service/mutants keeps its own copy of the names, since the service does not import e2e).
func TestCatalogRules(t *testing.T) {
	for _, m := range mutants.All {
		for _, r := range m.Rules {
			if !slices.Contains(check.Rules, check.Rule(r)) {
				t.Errorf("mutant %s expects rule %q, which e2e/check does not have", m.Name, r)
			}
		}
	}
}

// A mutant is killed only by one of its expected rules; other rules alone, an inconclusive run
// or a clean pass leave it survived, each with its reason.
func TestJudgeMutant(t *testing.T) {
	row := SelftestRow{Variant: "created-always", Expected: []string{"created"}}
	for _, tc := range []struct {
		name    string
		results []check.Result
		killed  bool
		why     string
	}{
		{"its rule fired", []check.Result{result(check.VerdictFail, map[check.Rule]int{check.RuleCreated: 4, check.RuleOneToken: 0})}, true, "killed by created"},
		{"fired in a later run", []check.Result{result(check.VerdictPass, nil), result(check.VerdictFail, map[check.Rule]int{check.RuleCreated: 1})}, true, "killed by created"},
		{"another rule only", []check.Result{result(check.VerdictFail, map[check.Rule]int{check.RuleContract: 2})}, false, "failed by contract only"},
		{"inconclusive", []check.Result{result(check.VerdictInconclusive, map[check.Rule]int{})}, false, "inconclusive"},
		{"clean", []check.Result{result(check.VerdictPass, map[check.Rule]int{})}, false, "every check passed"},
		{"no run", nil, false, "every check passed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := JudgeMutant(row, tc.results)
			if got.Killed != tc.killed || !strings.Contains(got.Why, tc.why) {
				t.Errorf("killed %v (%s), want %v (%s)", got.Killed, got.Why, tc.killed, tc.why)
			}
		})
	}
}

// TestJudgeInconclusiveMutant: a mutant that hides the proof of the race is killed only when
// every run is inconclusive; a pass, or a violation, is no kill.
func TestJudgeInconclusiveMutant(t *testing.T) {
	row := SelftestRow{Variant: "no-server-timing", ExpectInconclusive: true}
	noData := result(check.VerdictInconclusive, map[check.Rule]int{})
	noData.Coverage.Reasons = []string{check.ReasonNoServerData}
	for _, tc := range []struct {
		name    string
		results []check.Result
		killed  bool
		why     string
	}{
		{"every run inconclusive", []check.Result{noData, noData}, true, "killed: inconclusive, as it must be (no response carried"},
		{"one run passed", []check.Result{noData, result(check.VerdictPass, nil)}, false, "must never pass"},
		{"passed", []check.Result{result(check.VerdictPass, nil)}, false, "must never pass"},
		{"a rule fired", []check.Result{result(check.VerdictFail, map[check.Rule]int{check.RuleContract: 1})}, false, "failed by contract only"},
		{"no run", nil, false, "must never pass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := JudgeMutant(row, tc.results)
			if got.Killed != tc.killed || !strings.Contains(got.Why, tc.why) {
				t.Errorf("killed %v (%s), want %v (%s)", got.Killed, got.Why, tc.killed, tc.why)
			}
		})
	}
}

func TestJudgeControlAndTable(t *testing.T) {
	pass := JudgeControl(SelftestRow{Variant: SelftestControl}, []check.Result{result(check.VerdictPass, nil), result(check.VerdictPass, nil)})
	if !pass.ControlPassed() || pass.Killed {
		t.Errorf("a control that passed everything: %+v", pass)
	}
	for name, results := range map[string][]check.Result{
		"a violation":  {result(check.VerdictPass, nil), result(check.VerdictFail, map[check.Rule]int{check.RuleOneRow: 1})},
		"inconclusive": {result(check.VerdictInconclusive, nil)},
		"no run":       nil,
	} {
		if c := JudgeControl(SelftestRow{Variant: SelftestControl}, results); c.ControlPassed() {
			t.Errorf("a control with %s passed: %+v", name, c)
		}
	}
	killed := JudgeMutant(SelftestRow{Variant: "a", Expected: []string{"created"}, Silent: true},
		[]check.Result{result(check.VerdictFail, map[check.Rule]int{check.RuleCreated: 3})})
	survived := JudgeMutant(SelftestRow{Variant: "b", Expected: []string{"one-row"}}, []check.Result{result(check.VerdictPass, nil)})
	table := SelftestTable([]SelftestRow{pass, killed, survived})
	for _, want := range []string{"passed (control)", "| `a` | yes |", "| killed by created |", "created (3)", "`b`", "survived: every check passed",
		"kill ratio: 1 of 2 mutants killed (50%)"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
