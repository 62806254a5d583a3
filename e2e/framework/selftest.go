package framework

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
)

// The self-test (make selftest) runs the suite's checks against deliberately broken builds of
// the token service, one variant (mutant) at a time, and a control: the same self-test build
// with no mutant, which must pass every scenario, so that a kill is the mutant's doing and not
// the build's or the cluster's.

// SelftestControl is the name of the control row: the self-test build with no mutant.
const SelftestControl = "control"

// SelftestRow is one variant's verdict: killed (some check failed on it), survived (every
// check passed, or could not decide), and by which rules.
type SelftestRow struct {
	Variant string `json:"variant"`
	Doc     string `json:"doc"`
	// Scenarios are the traffic runs made against it, in order.
	Scenarios []string `json:"scenarios"`
	// Expected are the rules the catalog says it breaks; any one of them kills it.
	Expected []string `json:"expected_rules"`
	// ExpectInconclusive: a defect that breaks no rule but takes away the proof that the race
	// ran (mutants.Mutant.Inconclusive); it is killed when every run is inconclusive.
	ExpectInconclusive bool `json:"expect_inconclusive,omitempty"`
	// Rules are the rules that fired, with the customers that broke each.
	Rules map[string]int `json:"rules"`
	// Verdicts are the checker's verdicts of the scenarios' runs.
	Verdicts []string `json:"verdicts"`
	// Silent: every answer a 200 with a well-formed, correctly signed token.
	Silent bool `json:"silent"`
	Killed bool `json:"killed"`
	// Passed: the control passed every scenario (the control's row only).
	Passed   bool          `json:"passed,omitempty"`
	Why      string        `json:"why"`
	Duration time.Duration `json:"duration_ns"`
}

// JudgeMutant decides a mutant's row from the checker's results of its scenario runs: killed
// when a run failed with a violation of one of the expected rules. A failure by other rules
// alone is reported as survived with the reason, because a kill must be for the defect's own
// reason (the control passing the same scenarios is the other half of that); an inconclusive
// run proves nothing either way, except for a mutant that ExpectInconclusive: it is killed
// when every run (one at least) was inconclusive, and survives if any passed.
func JudgeMutant(row SelftestRow, results []check.Result) SelftestRow {
	row.Rules = map[string]int{}
	row.Verdicts = nil
	for _, r := range results {
		row.Verdicts = append(row.Verdicts, string(r.Verdict))
		for rule, n := range r.Counts {
			if n > 0 {
				row.Rules[string(rule)] += n
			}
		}
	}
	fired := slices.Sorted(maps.Keys(row.Rules))
	var expectedFired []string
	for _, r := range row.Expected {
		if row.Rules[r] > 0 {
			expectedFired = append(expectedFired, r)
		}
	}
	inconclusive := len(results) > 0
	var reasons []string
	for _, r := range results {
		inconclusive = inconclusive && r.Verdict == check.VerdictInconclusive
		for _, why := range r.Coverage.Reasons {
			if !slices.Contains(reasons, why) {
				reasons = append(reasons, why)
			}
		}
	}
	switch {
	case row.ExpectInconclusive && len(fired) == 0 && inconclusive:
		row.Killed = true
		row.Why = "killed: inconclusive, as it must be (" + strings.Join(reasons, "; ") + ")"
	case row.ExpectInconclusive && len(fired) == 0:
		row.Why = fmt.Sprintf("verdicts %s: a service that hides the proof of the race must never pass", strings.Join(row.Verdicts, ", "))
	case len(expectedFired) > 0:
		row.Killed = true
		row.Why = "killed by " + strings.Join(expectedFired, ", ")
	case len(fired) > 0:
		row.Why = fmt.Sprintf("failed by %s only, none of its expected rules %s", strings.Join(fired, ", "), strings.Join(row.Expected, ", "))
	case slices.Contains(row.Verdicts, string(check.VerdictInconclusive)):
		row.Why = "inconclusive: the race was not exercised enough to judge"
	default:
		row.Why = "every check passed"
	}
	return row
}

// JudgeControl decides the control row: it must pass every scenario.
func JudgeControl(row SelftestRow, results []check.Result) SelftestRow {
	row = JudgeMutant(row, results)
	row.Killed = false
	ok := len(results) > 0
	for _, r := range results {
		ok = ok && r.Verdict == check.VerdictPass
	}
	row.Passed = ok
	if ok {
		row.Why = "passed every scenario, as it must"
	} else {
		row.Why = fmt.Sprintf("the control must pass every scenario: verdicts %s, rules %v", strings.Join(row.Verdicts, ", "), row.Rules)
	}
	return row
}

// ControlPassed reports whether row is a control that passed.
func (row SelftestRow) ControlPassed() bool {
	return row.Variant == SelftestControl && row.Passed
}

// SelftestTable is the self-test's table in Markdown, the control first, then the mutants, and
// the kill ratio.
func SelftestTable(rows []SelftestRow) string {
	var b strings.Builder
	b.WriteString("| variant | 200s only | scenarios | verdict | rules that fired (customers) | time |\n|---|---|---|---|---|---|\n")
	killed, mutants := 0, 0
	for _, r := range rows {
		verdict := "survived"
		switch {
		case r.Variant == SelftestControl && r.ControlPassed():
			verdict = "passed (control)"
		case r.Variant == SelftestControl:
			verdict = "FAILED (control)"
		case r.Killed:
			verdict = "killed"
		}
		if r.Variant != SelftestControl {
			mutants++
			if r.Killed {
				killed++
			}
		}
		var fired []string
		for _, rule := range slices.Sorted(maps.Keys(r.Rules)) {
			fired = append(fired, fmt.Sprintf("%s (%d)", rule, r.Rules[rule]))
		}
		silent := ""
		if r.Silent {
			silent = "yes"
		}
		cell := verdict + ": " + r.Why
		if r.Killed {
			cell = r.Why // "killed by <rules>"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", r.Variant, silent, strings.Join(r.Scenarios, ", "),
			cell, strings.Join(fired, ", "), r.Duration.Round(time.Second))
	}
	fmt.Fprintf(&b, "\nkill ratio: %d of %d mutants killed", killed, mutants)
	if mutants > 0 {
		fmt.Fprintf(&b, " (%.0f%%)", 100*float64(killed)/float64(mutants))
	}
	b.WriteString("\n")
	return b.String()
}

// MarshalSelftestRow is row as the JSON of a report entry.
func MarshalSelftestRow(row SelftestRow) string {
	b, err := json.Marshal(row)
	if err != nil {
		panic(err) // plain data
	}
	return string(b)
}
