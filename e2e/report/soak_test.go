package report

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

func near(a, b float64) bool { return math.Abs(a-b) < 5e-5 }

// Reference values of the Wilson score interval at 95%, computed apart from this code; 1 of 10
// is Newcombe's (1998) worked example, 0.0179 to 0.4042.
func TestWilson(t *testing.T) {
	for _, c := range []struct {
		x, n   int
		lo, hi float64
	}{
		{0, 20, 0, 0.16113},
		{20, 20, 0.83887, 1},
		{50, 100, 0.40383, 0.59617},
		{15, 40, 0.24223, 0.52968},
		{1, 10, 0.01788, 0.40415},
		{0, 0, 0, 1},
	} {
		lo, hi := Wilson(c.x, c.n, Z95)
		if !near(lo, c.lo) || !near(hi, c.hi) {
			t.Errorf("Wilson(%d, %d) = [%.5f, %.5f], want [%.5f, %.5f]", c.x, c.n, lo, hi, c.lo, c.hi)
		}
	}
	// Always within [0, 1] and around the observed rate.
	for n := 1; n <= 60; n++ {
		for x := 0; x <= n; x++ {
			lo, hi := Wilson(x, n, Z95)
			p := float64(x) / float64(n)
			if lo < 0 || hi > 1 || lo > p+1e-12 || hi < p-1e-12 {
				t.Fatalf("Wilson(%d, %d) = [%v, %v] does not hold %v within [0, 1]", x, n, lo, hi, p)
			}
		}
	}
}

func TestSpreadOf(t *testing.T) {
	if SpreadOf(nil) != nil {
		t.Error("the spread of nothing must be nil")
	}
	if s := SpreadOf([]float64{3, 1, 2}); *s != (Spread{N: 3, Min: 1, Median: 2, Max: 3}) {
		t.Errorf("odd: %+v", *s)
	}
	if s := SpreadOf([]float64{4, 1, 2, 3}); *s != (Spread{N: 4, Min: 1, Median: 2.5, Max: 4}) {
		t.Errorf("even: %+v", *s)
	}
}

// fakePart is one judged part of a hand-made run: customers each sent two requests, customer i's
// at 5 s + i*100 ms + j ms on the run's clock; caught customers broke the strategy's known bug
// (or, for a fixed strategy, one-row) on their second request.
type fakePart struct {
	contract  string
	verdict   check.Verdict
	customers int
	caught    []int
}

type fakeSpec struct {
	name, state string
	parts       map[string]fakePart // "" for a spec judged once; nil for a spec never judged
}

func callOf(customer, j int) time.Duration {
	return 5*time.Second + time.Duration(customer)*100*time.Millisecond + time.Duration(j)*time.Millisecond
}

// writeFakeRun writes a run directory as the suite leaves it: results.json with each spec's
// state and verdict figures, and per judged part violations.json and history.jsonl.
func writeFakeRun(t *testing.T, dir string, seed uint64, specs ...fakeSpec) {
	t.Helper()
	type specJSON struct {
		Name    string         `json:"name"`
		State   string         `json:"state"`
		Figures map[string]any `json:"figures,omitempty"`
	}
	results := struct {
		RunID string     `json:"run_id"`
		Seed  uint64     `json:"seed"`
		Specs []specJSON `json:"specs"`
	}{RunID: "r" + filepath.Base(dir), Seed: seed}
	for _, sp := range specs {
		sj := specJSON{Name: sp.name, State: sp.state, Figures: map[string]any{}}
		for name, p := range sp.parts {
			figure := "verdict"
			if name != "" {
				figure = "verdict[" + name + "]"
			}
			sj.Figures[figure] = string(p.verdict)
			var ops []history.Op
			res := check.Result{Verdict: p.verdict, Contract: p.contract, Customers: p.customers, Counts: map[check.Rule]int{}}
			for i := range p.customers {
				c := history.Customer{Index: i, Tenant: "m", EntityKey: "c" + string(rune('a'+i))}
				for j := range 2 {
					ops = append(ops, history.Op{Customer: c, Seq: j, Phase: history.PhaseBurst, Call: callOf(i, j), Return: callOf(i, j) + time.Millisecond, Status: 200})
				}
			}
			for _, i := range p.caught {
				c := ops[2*i].Customer
				req := check.Request{ID: history.RequestID(i, 1, 0), Seq: 1, Call: callOf(i, 1), Status: 200}
				v := check.Violation{Rule: check.RuleTokenMatchesRow, Customer: c, Requests: []check.Request{req},
					Findings: []check.Finding{{Kind: check.KindEmptySubject, Request: req.ID}}}
				if bug, ok := check.KnownBugOf(p.contract); !ok || bug.Strategy != "legacy" {
					// About the customer's rows: the finding names no request.
					v = check.Violation{Rule: check.RuleOneRow, Customer: c, Requests: []check.Request{req},
						Findings: []check.Finding{{Kind: check.KindDuplicateRows}}}
				}
				res.Violations = append(res.Violations, v)
				res.Counts[v.Rule]++
			}
			partDir := filepath.Join(dir, SpecDirName(sp.name), name)
			if err := os.MkdirAll(partDir, 0o755); err != nil {
				t.Fatal(err)
			}
			var hist strings.Builder
			if err := history.WriteJSONL(&hist, ops); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(partDir, HistoryFile), []byte(hist.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSONFile(partDir, ViolationsJSONFile, res); err != nil {
				t.Fatal(err)
			}
		}
		results.Specs = append(results.Specs, sj)
	}
	if err := WriteJSONFile(dir, ResultsFile, results); err != nil {
		t.Fatal(err)
	}
}

const (
	atomicSpec   = "First registration under concurrency gives every customer exactly one valid, consistent token with the atomic strategy"
	failFastSpec = "First registration under concurrency gives every customer exactly one valid, consistent token with the fail-fast strategy"
	canarySpec   = "First registration under concurrency catches the seed's bug in the legacy strategy: the canary"
	existingSpec = "First registration under concurrency answers concurrent requests for existing customers with the one token they already have"
	mutantSpec   = "Self-test kills mutant no-unique-index (burst)"
)

func pass(contract string) fakePart {
	return fakePart{contract: contract, verdict: check.VerdictPass, customers: 4}
}

func TestAggregateSoak(t *testing.T) {
	root := t.TempDir()
	run1, run2, run3 := filepath.Join(root, "run1"), filepath.Join(root, "run2"), filepath.Join(root, "run3")
	writeFakeRun(t, run1, 11,
		fakeSpec{atomicSpec, "passed", map[string]fakePart{"": pass("atomic")}},
		fakeSpec{failFastSpec, "passed", map[string]fakePart{"": pass("fail-fast")}},
		fakeSpec{canarySpec, "passed", map[string]fakePart{"": {contract: "legacy", verdict: check.VerdictFail, customers: 4, caught: []int{3, 1}}}},
		fakeSpec{existingSpec, "passed", map[string]fakePart{
			"register": {contract: "atomic", verdict: check.VerdictInconclusive, customers: 4},
			"existing": pass("atomic"),
		}},
		// A mutant under atomic's contract passes by being caught: not a false alarm.
		fakeSpec{mutantSpec, "passed", map[string]fakePart{"burst": {contract: "atomic", verdict: check.VerdictFail, customers: 4, caught: []int{0}}}},
	)
	writeFakeRun(t, run2, 22,
		// A false alarm: atomic broke an invariant, and its spec failed.
		fakeSpec{atomicSpec, "failed", map[string]fakePart{"": {contract: "atomic", verdict: check.VerdictFail, customers: 4, caught: []int{2}}}},
		fakeSpec{failFastSpec, "passed", map[string]fakePart{"": {contract: "fail-fast", verdict: check.VerdictInconclusive, customers: 4}}},
		fakeSpec{canarySpec, "passed", map[string]fakePart{"": {contract: "legacy", verdict: check.VerdictFail, customers: 4, caught: []int{2}}}},
		// Failed before judging anything: no verdict figure.
		fakeSpec{existingSpec, "timedout", nil},
	)
	// run3 ended before the suite wrote its figures.
	if err := os.MkdirAll(run3, 0o755); err != nil {
		t.Fatal(err)
	}

	s := AggregateSoak([]string{run1, run2, run3}, 4, tokenModes)
	if s.Attempted != 4 || len(s.Runs) != 3 || s.Runs[2].Note == "" || s.Runs[0].Note != "" || s.Runs[1].NotPassed != 2 {
		t.Errorf("runs: attempted %d, %+v", s.Attempted, s.Runs)
	}

	specs := map[string]SoakSpec{}
	for _, sp := range s.Specs {
		specs[sp.Name] = sp
	}
	if a := specs[atomicSpec]; a.Ran != 2 || a.States["passed"] != 1 || a.States["failed"] != 1 || len(a.Parts) != 1 ||
		a.Parts[0].Verdicts["pass"] != 1 || a.Parts[0].Verdicts["fail"] != 1 || a.Parts[0].Contract != "atomic" {
		t.Errorf("atomic: %+v", a)
	}
	if f := specs[failFastSpec]; f.Parts[0].Verdicts["inconclusive"] != 1 || f.Parts[0].Verdicts["pass"] != 1 {
		t.Errorf("fail-fast: %+v", f)
	}
	e := specs[existingSpec]
	if e.Ran != 2 || e.States["timedout"] != 1 || len(e.Parts) != 2 || e.Parts[0].Part != "existing" || e.Parts[1].Part != "register" ||
		e.Parts[0].Unjudged != 1 || e.Parts[1].Unjudged != 1 || e.Parts[1].Verdicts["inconclusive"] != 1 {
		t.Errorf("existing customers: %+v", e)
	}

	// False alarms: atomic and fail-fast judged runs of specs that want no violation: run1's
	// atomic, fail-fast, existing (two parts), run2's atomic and fail-fast; the mutant left out.
	if s.FixedJudged != 6 || len(s.FalseAlarms) != 1 || s.FalseAlarms[0].Seed != 22 || s.FalseAlarms[0].Spec != atomicSpec ||
		s.FalseAlarms[0].Counts[check.RuleOneRow] != 1 {
		t.Errorf("false alarms: %d judged, %+v", s.FixedJudged, s.FalseAlarms)
	}
	if lo, hi := Wilson(1, 6, Z95); s.FalseAlarmRateCI95 != [2]float64{lo, hi} {
		t.Errorf("false alarm interval %v", s.FalseAlarmRateCI95)
	}

	// The canary: 2 of 4 customers, then 1 of 4.
	if len(s.Detection) != 1 {
		t.Fatalf("detection: %+v", s.Detection)
	}
	d := s.Detection[0]
	lo, hi := Wilson(3, 8, Z95)
	if d.Strategy != "legacy" || d.Bug != "null subject" || d.Runs != 2 || d.RunsCaught != 2 || d.Caught != 3 || d.Customers != 8 ||
		d.Rate != 0.375 || d.RateCI95 != [2]float64{lo, hi} {
		t.Errorf("canary: %+v", d)
	}
	if *d.PerRunRate != (Spread{N: 2, Min: 0.25, Median: 0.375, Max: 0.5}) {
		t.Errorf("per-run rate %+v", *d.PerRunRate)
	}
	// run1: customer 1's second request, 101 ms after the first request, customer 1 the second
	// one sent; run2: customer 2's, 201 ms, the third.
	if f := d.FirstViolationSeconds; f.N != 2 || !near(f.Min, 0.101) || !near(f.Max, 0.201) || !near(f.Median, 0.151) {
		t.Errorf("first violation %+v", *f)
	}
	if c := d.CustomersToFirst; *c != (Spread{N: 2, Min: 2, Median: 2.5, Max: 3}) {
		t.Errorf("customers to the first caught %+v", *c)
	}

	if s.Passed() || len(s.Problems) != 1 || !strings.Contains(s.Problems[0], "1 false alarms on atomic/fail-fast in 6 judged runs") {
		t.Errorf("problems %q", s.Problems)
	}
	md := s.Markdown()
	for _, want := range []string{
		"stampede soak FAILED: 2 runs of 4 started, 1 false alarms",
		"| " + canarySpec + " | null subject (legacy) | 2 of 2 | 3 / 8 | 37.5% | 13.7% – 69.4% | 25% / 38% / 50% | 101.0 / 151.0 / 201.0 | 2 / 2 / 3 |",
		"| " + existingSpec + " [existing] | atomic | 2 | 1 | 0 | timedout 1 | 1 | 0 | 0 | 1 |",
		"| " + existingSpec + " [register] | atomic |  |  |  |  | 0 | 0 | 1 | 1 |",
		"run2 (seed 22): " + atomicSpec + ", 1 violations",
		"run3; no figures (results.json: no such file or directory)",
		"1 started runs left no directory",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("soak.md lacks %q:\n%s", want, md)
		}
	}

	out := t.TempDir()
	if err := WriteSoak(out, s); err != nil {
		t.Fatal(err)
	}
	var back Soak
	b, err := os.ReadFile(filepath.Join(out, SoakJSONFile))
	if err == nil {
		err = json.Unmarshal(b, &back)
	}
	if err != nil || back.Detection[0].Caught != 3 || len(back.FalseAlarms) != 1 {
		t.Errorf("soak.json: %v %+v", err, back)
	}
}

// What fails a soak besides a false alarm: a canary never caught, and runs that judged nothing.
func TestAggregateSoakFailures(t *testing.T) {
	root := t.TempDir()
	quiet := filepath.Join(root, "quiet")
	writeFakeRun(t, quiet, 1,
		fakeSpec{atomicSpec, "passed", map[string]fakePart{"": pass("atomic")}},
		fakeSpec{canarySpec, "failed", map[string]fakePart{"": {contract: "legacy", verdict: check.VerdictInconclusive, customers: 4}}},
	)
	s := AggregateSoak([]string{quiet}, 0, tokenModes)
	if s.Passed() || len(s.Problems) != 1 || !strings.Contains(s.Problems[0], "the canary (legacy, null subject) was never caught in 1 judged runs") {
		t.Errorf("canary never caught: %q", s.Problems)
	}
	if d := s.Detection[0]; d.FirstViolationSeconds != nil || d.RunsCaught != 0 || d.RateCI95[1] == 0 {
		t.Errorf("no catch, no first violation: %+v", d)
	}

	broken := filepath.Join(root, "broken")
	writeFakeRun(t, broken, 2, fakeSpec{atomicSpec, "failed", nil})
	s = AggregateSoak([]string{broken, filepath.Join(root, "missing")}, 3, tokenModes)
	if s.Passed() || len(s.Problems) != 2 || !strings.Contains(s.Problems[0], "ran 1 times and was never judged") ||
		!strings.Contains(s.Problems[1], "no run was judged (1 runs of 3 started left figures)") {
		t.Errorf("nothing judged: %q", s.Problems)
	}

	good := filepath.Join(root, "good")
	writeFakeRun(t, good, 3,
		fakeSpec{atomicSpec, "passed", map[string]fakePart{"": pass("atomic")}},
		fakeSpec{canarySpec, "passed", map[string]fakePart{"": {contract: "legacy", verdict: check.VerdictFail, customers: 4, caught: []int{0}}}},
	)
	if s = AggregateSoak([]string{good}, 1, tokenModes); !s.Passed() || !strings.Contains(s.Markdown(), "stampede soak passed: 1 runs of 1 started, 0 false alarms") {
		t.Errorf("a good soak: %q\n%s", s.Problems, s.Markdown())
	}
}

// tokenModes are the bundled token service's modes as a soak reads them from its target file:
// atomic and fail-fast promise exactly once, legacy and return-existing are canaries.
func tokenModes(string) (map[string]SoakMode, error) {
	return map[string]SoakMode{
		"atomic":          {ExactlyOnce: true},
		"fail-fast":       {ExactlyOnce: true},
		"legacy":          {Canary: []check.Kind{check.KindEmptySubject}},
		"return-existing": {Canary: []check.Kind{check.KindDuplicateRows, check.KindTwoTokens}},
	}, nil
}

// TestAggregateSoakTargetModes: the soak takes the exactly-once modes and the canaries from the
// run's target, whatever their names: a violation under another target's exactly-once mode is a
// false alarm, the same under a mode that promises nothing is not, its canary is caught by its own
// findings, and a run whose target cannot be read fails the soak.
func TestAggregateSoakTargetModes(t *testing.T) {
	root := t.TempDir()
	run := filepath.Join(root, "run")
	writeFakeRun(t, run, 1,
		fakeSpec{atomicSpec, "failed", map[string]fakePart{"": {contract: "safe", verdict: check.VerdictFail, customers: 4, caught: []int{1}}}},
		fakeSpec{canarySpec, "passed", map[string]fakePart{"": {contract: "naive", verdict: check.VerdictFail, customers: 4, caught: []int{0, 2}}}},
	)
	orders := func(string) (map[string]SoakMode, error) {
		return map[string]SoakMode{
			"safe":  {ExactlyOnce: true},
			"naive": {Canary: []check.Kind{check.KindDuplicateRows, check.KindTwoTokens}},
		}, nil
	}
	s := AggregateSoak([]string{run}, 1, orders)
	if len(s.FalseAlarms) != 1 || s.FixedJudged != 1 || !slices.Equal(s.ExactlyOnce, []string{"safe"}) ||
		!strings.Contains(s.Markdown(), "1 false alarms on safe") {
		t.Errorf("safe's violation: false alarms %+v of %d, exactly once %v", s.FalseAlarms, s.FixedJudged, s.ExactlyOnce)
	}
	if len(s.Detection) != 1 || s.Detection[0].Strategy != "naive" || s.Detection[0].Caught != 2 ||
		s.Detection[0].Bug != "duplicate-rows, two-credentials" || !s.Detection[0].Canary {
		t.Errorf("naive's canary: %+v", s.Detection)
	}
	promisesNothing := func(string) (map[string]SoakMode, error) {
		return map[string]SoakMode{"safe": {}, "naive": {}}, nil
	}
	if s := AggregateSoak([]string{run}, 1, promisesNothing); len(s.FalseAlarms) != 0 || len(s.Detection) != 0 {
		t.Errorf("no mode promises anything: false alarms %+v, detection %+v", s.FalseAlarms, s.Detection)
	}
	unreadable := func(string) (map[string]SoakMode, error) { return nil, errors.New("no target file") }
	if s := AggregateSoak([]string{run}, 1, unreadable); s.Passed() || !strings.Contains(strings.Join(s.Problems, "; "), "the target's modes could not be read") {
		t.Errorf("target unreadable: %q", s.Problems)
	}
}
