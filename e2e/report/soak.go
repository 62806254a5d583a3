package report

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

// A soak (make soak) runs the same specs many times on one cluster, each run with a fresh seed,
// and reads the runs' artifacts back together: how often each spec passed, failed or was
// inconclusive; how often the checker caught each known-broken strategy, with a 95% confidence
// interval, and how soon in a run; and whether a fixed strategy was ever accused.
const (
	SoakJSONFile     = "soak.json"
	SoakMarkdownFile = "soak.md"
)

// SoakMode is what a run's target file says of one of its modes: whether it promises exactly
// once (modes[].contract.exactlyOnce), so that a violation in a judged run of it is a false alarm
// of the checker (or a real bug) and fails a soak, and which findings catch its canary
// (modes[].canary.findings), none for a mode without one.
type SoakMode struct {
	ExactlyOnce bool
	Canary      []check.Kind
}

// SoakModes returns the modes, by name, of the target that the run saved in dir judged: the
// caller reads them from the run's target file (results.json names it), so that the soak knows
// no service.
type SoakModes func(dir string) (map[string]SoakMode, error)

// Z95 is the standard normal quantile of a two-sided 95% interval.
const Z95 = 1.959963984540054

// Wilson is the Wilson score interval of x successes in n trials, z standard deviations wide
// (Z95 for 95%). Unlike the normal approximation it stays within [0, 1] and means something at
// rates near 0 or 1 and at small n. With no trial it is [0, 1].
func Wilson(x, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	nf, p, z2 := float64(n), float64(x)/float64(n), z*z
	denom := 1 + z2/nf
	center := (p + z2/(2*nf)) / denom
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / denom
	return max(0, center-half), min(1, center+half)
}

// Spread summarises one figure over runs.
type Spread struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// SpreadOf summarises xs; nil for none.
func SpreadOf(xs []float64) *Spread {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Sorted(slices.Values(xs))
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &Spread{N: len(s), Min: s[0], Median: med, Max: s[len(s)-1]}
}

// Soak is soak.json: the figures of a soak's runs together.
type Soak struct {
	// Attempted counts the runs the soak started; Runs are those that left a directory.
	Attempted int        `json:"attempted"`
	Runs      []SoakRun  `json:"runs"`
	Specs     []SoakSpec `json:"specs"`
	// Detection has one entry per judged part whose strategy has a known bug (the canary).
	Detection []SoakDetection `json:"detection"`
	// ExactlyOnce are the modes seen that promise exactly once (SoakMode), in order.
	ExactlyOnce []string `json:"exactly_once"`
	// FixedJudged counts the judged runs of ExactlyOnce modes in specs that want no violation
	// (not the self-test's mutants nor the durability canary, which pass by finding some), of
	// which FalseAlarms broke an invariant; FalseAlarmRateCI95 bounds the per-run rate.
	FixedJudged        int              `json:"fixed_judged"`
	FalseAlarms        []SoakFalseAlarm `json:"false_alarms"`
	FalseAlarmRateCI95 [2]float64       `json:"false_alarm_rate_ci95"`
	// Problems say why the soak fails; none when it passes.
	Problems []string `json:"problems"`
}

// SoakRun is one run of a soak.
type SoakRun struct {
	Dir       string `json:"dir"`
	RunID     string `json:"run_id,omitempty"`
	Seed      uint64 `json:"seed,omitempty"`
	Specs     int    `json:"specs"`
	NotPassed int    `json:"not_passed"`
	// Note says what is missing from the run's artifacts.
	Note string `json:"note,omitempty"`
}

// SoakSpec is one spec over the runs: Ginkgo's states and, per judged part, the checker's
// verdicts.
type SoakSpec struct {
	Name   string         `json:"name"`
	Ran    int            `json:"ran"`
	States map[string]int `json:"states"`
	Parts  []SoakPart     `json:"parts"`
}

// SoakPart is one judged part of a spec (the spec itself when it judges once): how often the
// checker said pass, fail or inconclusive, and how many of the spec's runs left it unjudged (the
// spec failed before judging it).
type SoakPart struct {
	Part     string         `json:"part,omitempty"`
	Contract string         `json:"contract,omitempty"`
	Verdicts map[string]int `json:"verdicts"`
	Unjudged int            `json:"unjudged"`
}

// SoakDetection is how often the checker caught a known-broken strategy over the runs.
type SoakDetection struct {
	Spec     string `json:"spec"`
	Part     string `json:"part,omitempty"`
	Strategy string `json:"strategy"`
	Bug      string `json:"bug"`
	// Canary says the strategy is a canary mode of the target, which a soak must catch at
	// least once.
	Canary bool `json:"canary,omitempty"`
	// Runs are the judged runs, RunsCaught those in which at least one customer was caught.
	Runs       int `json:"runs"`
	RunsCaught int `json:"runs_caught"`
	// Customers and Caught are pooled over the runs (check.DetectKinds of each); Rate is their ratio
	// and RateCI95 its Wilson interval.
	Customers  int        `json:"customers"`
	Caught     int        `json:"caught"`
	Rate       float64    `json:"rate"`
	RateCI95   [2]float64 `json:"rate_ci95"`
	PerRunRate *Spread    `json:"per_run_rate,omitempty"`
	// FirstViolationSeconds is, per run that caught one, the call time of the first request
	// that showed the bug, counted from the run's first request; CustomersToFirst is the
	// customer's place in the order customers were first sent (1: the first customer).
	FirstViolationSeconds *Spread `json:"first_violation_seconds,omitempty"`
	CustomersToFirst      *Spread `json:"customers_to_first_caught,omitempty"`
}

// SoakFalseAlarm is a judged run of a fixed strategy that broke an invariant.
type SoakFalseAlarm struct {
	Run        string             `json:"run"`
	Seed       uint64             `json:"seed"`
	Spec       string             `json:"spec"`
	Part       string             `json:"part,omitempty"`
	Contract   string             `json:"contract"`
	Violations int                `json:"violations"`
	Counts     map[check.Rule]int `json:"counts"`
}

// runResults is results.json as the suite writes it (framework.Results).
type runResults struct {
	RunID string `json:"run_id"`
	Seed  uint64 `json:"seed"`
	Specs []struct {
		Name    string         `json:"name"`
		State   string         `json:"state"`
		Figures map[string]any `json:"figures"`
	} `json:"specs"`
}

// verdictPart returns the judged part a figure's name gives the verdict of: "" for "verdict",
// "existing" for "verdict[existing]"; false for any other figure.
func verdictPart(figure string) (string, bool) {
	name, part := SplitFigure(figure)
	return part, name == "verdict"
}

// AggregateSoak reads the run directories of a soak (each with its results.json, and each judged
// part's violations.json and history.jsonl) into one Soak; attempted is the number of runs the
// soak started (at least len(dirs)). A run whose files are missing or unreadable is recorded with
// a note, never an error: a soak goes on past a broken run. modes says which of a run's modes
// promise exactly once and which are canaries; a part of a strategy that is none of its target's
// modes (the durability canary's atomic/synchronous_commit=off) is caught by its check.KnownBug.
func AggregateSoak(dirs []string, attempted int, modes SoakModes) Soak {
	s := Soak{Attempted: max(attempted, len(dirs)), Runs: []SoakRun{}, Specs: []SoakSpec{}, Detection: []SoakDetection{},
		ExactlyOnce: []string{}, FalseAlarms: []SoakFalseAlarm{}, Problems: []string{}}
	specs := map[string]*SoakSpec{}
	parts := map[[2]string]*SoakPart{}
	type detAcc struct {
		d                     *SoakDetection
		rates, first, custIdx []float64
	}
	dets := map[[2]string]*detAcc{}
	var specOrder []string
	var detOrder [][2]string

	for _, dir := range dirs {
		run := SoakRun{Dir: dir}
		var rr runResults
		b, err := os.ReadFile(filepath.Join(dir, ResultsFile))
		if err == nil {
			err = json.Unmarshal(b, &rr)
		}
		if err != nil {
			run.Note = fmt.Sprintf("no figures (%s): the suite ended before its summary; see the run's log", shortErr(err))
			s.Runs = append(s.Runs, run)
			continue
		}
		run.RunID, run.Seed, run.Specs = rr.RunID, rr.Seed, len(rr.Specs)
		runModes, err := modes(dir)
		if err != nil {
			run.Note = fmt.Sprintf("its target's modes unknown (%v): its parts count for neither false alarms nor detection", err)
			s.Problems = append(s.Problems, fmt.Sprintf("%s: the target's modes could not be read", filepath.Base(dir)))
		}
		if len(rr.Specs) == 0 {
			run.Note = "no spec ran (BeforeSuite failed?): see the run's summary.txt"
		}
		var unread []string
		for _, sr := range rr.Specs {
			if sr.State != "passed" {
				run.NotPassed++
			}
			sp := specs[sr.Name]
			if sp == nil {
				sp = &SoakSpec{Name: sr.Name, States: map[string]int{}}
				specs[sr.Name] = sp
				specOrder = append(specOrder, sr.Name)
			}
			sp.Ran++
			sp.States[sr.State]++
			// In name order, so that soak.json lists the parts of a run the same way each time.
			for _, figure := range slices.Sorted(maps.Keys(sr.Figures)) {
				name, ok := verdictPart(figure)
				if !ok {
					continue
				}
				verdict, _ := sr.Figures[figure].(string)
				key := [2]string{sr.Name, name}
				p := parts[key]
				if p == nil {
					p = &SoakPart{Part: name, Verdicts: map[string]int{}}
					parts[key] = p
				}
				p.Verdicts[verdict]++
				partDir := filepath.Join(dir, SpecDirName(sr.Name), name)
				res, err := readResult(partDir)
				if err != nil {
					unread = append(unread, shortErr(err))
					continue
				}
				if p.Contract == "" {
					p.Contract = res.Contract
				}
				// A spec that passed with violations of a fixed strategy expected them (the
				// self-test's mutants, the durability canary): only the others are alarms.
				mode, isMode := runModes[res.Contract]
				if mode.ExactlyOnce && !slices.Contains(s.ExactlyOnce, res.Contract) {
					s.ExactlyOnce = append(s.ExactlyOnce, res.Contract)
				}
				if mode.ExactlyOnce && !expectsViolations(sr.State, res) {
					s.FixedJudged++
					if len(res.Violations) > 0 || verdict == string(check.VerdictFail) {
						s.FalseAlarms = append(s.FalseAlarms, SoakFalseAlarm{Run: filepath.Base(dir), Seed: rr.Seed, Spec: sr.Name,
							Part: name, Contract: res.Contract, Violations: len(res.Violations), Counts: res.Counts})
					}
				}
				bug, ok := soakBug(res.Contract, mode, isMode)
				if !ok {
					continue
				}
				acc := dets[key]
				if acc == nil {
					acc = &detAcc{d: &SoakDetection{Spec: sr.Name, Part: name, Strategy: res.Contract, Bug: bug.Bug, Canary: isMode}}
					dets[key] = acc
					detOrder = append(detOrder, key)
				}
				d := check.DetectKinds(res, bug.Kinds...)
				acc.d.Runs++
				acc.d.Customers += d.Customers
				acc.d.Caught += d.Caught
				acc.rates = append(acc.rates, d.Rate())
				if d.Caught == 0 {
					continue
				}
				acc.d.RunsCaught++
				if first, place, ok := firstCaught(partDir, res, bug); ok {
					acc.first = append(acc.first, first.Seconds())
					acc.custIdx = append(acc.custIdx, float64(place))
				}
			}
		}
		if len(unread) > 0 {
			run.Note = "unreadable judged parts: " + strings.Join(unread, "; ")
		}
		s.Runs = append(s.Runs, run)
	}

	judged := 0
	for _, name := range specOrder {
		sp := specs[name]
		for key, p := range parts {
			if key[0] != name {
				continue
			}
			n := 0
			for _, c := range p.Verdicts {
				n += c
			}
			judged += n
			p.Unjudged = max(0, sp.Ran-n)
			sp.Parts = append(sp.Parts, *p)
		}
		slices.SortFunc(sp.Parts, func(a, b SoakPart) int { return strings.Compare(a.Part, b.Part) })
		if len(sp.Parts) == 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("%q ran %d times and was never judged", name, sp.Ran))
		}
		s.Specs = append(s.Specs, *sp)
	}
	for _, key := range detOrder {
		acc := dets[key]
		d := acc.d
		if d.Customers > 0 {
			d.Rate = float64(d.Caught) / float64(d.Customers)
		}
		d.RateCI95[0], d.RateCI95[1] = Wilson(d.Caught, d.Customers, Z95)
		d.PerRunRate, d.FirstViolationSeconds, d.CustomersToFirst = SpreadOf(acc.rates), SpreadOf(acc.first), SpreadOf(acc.custIdx)
		s.Detection = append(s.Detection, *d)
		if d.Canary && d.Caught == 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("the canary (%s, %s) was never caught in %d judged runs", d.Strategy, d.Bug, d.Runs))
		}
	}
	s.FalseAlarmRateCI95[0], s.FalseAlarmRateCI95[1] = Wilson(len(s.FalseAlarms), s.FixedJudged, Z95)
	if n := len(s.FalseAlarms); n > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("%d false alarms on %s in %d judged runs", n, s.exactlyOnce(), s.FixedJudged))
	}
	if judged == 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("no run was judged (%d runs of %d started left figures)", countWithFigures(s.Runs), s.Attempted))
	}
	return s
}

// soakBug is the bug a judged part of strategy is caught by: its target's canary findings when
// strategy is a mode of the target (isMode), named as the chaos specs name it (check.BugName);
// else the suite's own known bug of
// that name (check.KnownBugs: the durability canary's database setting).
func soakBug(strategy string, mode SoakMode, isMode bool) (check.KnownBug, bool) {
	if !isMode {
		return check.KnownBugOf(strategy)
	}
	if len(mode.Canary) == 0 {
		return check.KnownBug{}, false
	}
	return check.KnownBug{Strategy: strategy, Bug: check.BugName(strategy, mode.Canary), Kinds: mode.Canary}, true
}

// exactlyOnce names the modes whose false alarms the soak counts, for its lines.
func (s Soak) exactlyOnce() string {
	if len(s.ExactlyOnce) == 0 {
		return "the exactly-once modes (none judged)"
	}
	return strings.Join(s.ExactlyOnce, "/")
}

// expectsViolations tells a spec that judges a fixed strategy but wants violations found (a
// broken build or database setting under the fixed strategy's contract) by its outcome: it passed
// although the checker found some. A spec that wants none fails on the first one.
func expectsViolations(state string, res check.Result) bool {
	return state == "passed" && len(res.Violations) > 0
}

func countWithFigures(runs []SoakRun) int {
	n := 0
	for _, r := range runs {
		if r.RunID != "" || r.Specs > 0 {
			n++
		}
	}
	return n
}

// shortErr drops the directory from a file error: the run it belongs to is named beside it.
func shortErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return filepath.Base(pe.Path) + ": " + pe.Err.Error()
	}
	return err.Error()
}

func readResult(dir string) (check.Result, error) {
	var r check.Result
	b, err := os.ReadFile(filepath.Join(dir, ViolationsJSONFile))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	return r, err
}

// firstCaught finds, in the judged run saved in dir, the first request that showed bug: its call
// time from the run's first request, and its customer's place in the order customers were first
// sent (1-based). False when the history cannot be read or no request is named.
func firstCaught(dir string, res check.Result, bug check.KnownBug) (time.Duration, int, bool) {
	ops, err := readHistory(dir)
	if err != nil || len(ops) == 0 {
		return 0, 0, false
	}
	start := ops[0].Call
	firstCall := map[history.Key]time.Duration{}
	for _, op := range ops {
		start = min(start, op.Call)
		if t, ok := firstCall[op.Customer.Key()]; !ok || op.Call < t {
			firstCall[op.Customer.Key()] = op.Call
		}
	}
	var (
		first  time.Duration
		found  bool
		caught = map[history.Key]bool{}
	)
	for _, v := range res.Violations {
		if !v.HasKind(bug.Kinds...) {
			continue
		}
		caught[v.Customer.Key()] = true
		for _, f := range v.Findings {
			if !slices.Contains(bug.Kinds, f.Kind) {
				continue
			}
			// The request the finding is about; a finding about the customer's rows names
			// none, and then its earliest request stands for it.
			for _, r := range v.Requests {
				if f.Request != "" && r.ID != f.Request {
					continue
				}
				if !found || r.Call < first {
					first, found = r.Call, true
				}
			}
		}
	}
	if !found {
		return 0, 0, false
	}
	order := make([]history.Key, 0, len(firstCall))
	for k := range firstCall {
		order = append(order, k)
	}
	slices.SortFunc(order, func(a, b history.Key) int {
		return cmp.Or(cmp.Compare(firstCall[a], firstCall[b]), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.EntityKey, b.EntityKey))
	})
	place := 0
	for i, k := range order {
		if caught[k] {
			place = i + 1
			break
		}
	}
	return first - start, place, place > 0
}

// Passed says whether the soak passed: no false alarm, the canary caught, something judged.
func (s Soak) Passed() bool { return len(s.Problems) == 0 }

// Markdown is soak.md, also what `stampede soak` prints: the verdict, a row per spec and
// judged part, the detection of each known bug, the false alarms and the runs.
func (s Soak) Markdown() string {
	var b strings.Builder
	verdict := "passed"
	if !s.Passed() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "### stampede soak %s: %d runs of %d started, %d false alarms on %s\n\n",
		verdict, countWithFigures(s.Runs), s.Attempted, len(s.FalseAlarms), s.exactlyOnce())
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "- **%s**\n", p)
	}
	if len(s.Problems) > 0 {
		b.WriteString("\n")
	}

	b.WriteString("Per spec: Ginkgo's states over the runs it ran in, and per judged part the checker's verdicts " +
		"(not judged: the spec ended before judging it).\n\n")
	b.WriteString("| spec | strategy | ran | passed | failed | other | pass | fail | inconclusive | not judged |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sp := range s.Specs {
		other := []string{}
		for _, st := range slices.Sorted(maps.Keys(sp.States)) {
			if st != "passed" && st != "failed" {
				other = append(other, fmt.Sprintf("%s %d", st, sp.States[st]))
			}
		}
		head := fmt.Sprintf("%d | %d | %d | %s", sp.Ran, sp.States["passed"], sp.States["failed"], strings.Join(other, ", "))
		if len(sp.Parts) == 0 {
			fmt.Fprintf(&b, "| %s | | %s | | | | %d |\n", mdCell(sp.Name), head, sp.Ran)
		}
		for i, p := range sp.Parts {
			name := sp.Name
			if p.Part != "" {
				name += " [" + p.Part + "]"
			}
			if i > 0 {
				head = " |  |  | "
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d |\n", mdCell(name), p.Contract, head,
				p.Verdicts[string(check.VerdictPass)], p.Verdicts[string(check.VerdictFail)], p.Verdicts[string(check.VerdictInconclusive)], p.Unjudged)
		}
	}

	if len(s.Detection) > 0 {
		b.WriteString("\nDetection of the known bugs: customers caught over customers, pooled over the runs, with the " +
			"95% Wilson score interval (it treats customers as independent trials; those of one run share a deployment, " +
			"so read the per-run spread beside it). First violation: the call time of the first request showing the bug, " +
			"from the run's first request, and its customer's place in the order customers were first sent.\n\n")
		b.WriteString("| spec | bug | runs caught | caught / customers | rate | 95% interval | per run min / median / max | first violation (ms) min / median / max | customers to first caught min / median / max |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
		for _, d := range s.Detection {
			name := d.Spec
			if d.Part != "" {
				name += " [" + d.Part + "]"
			}
			fmt.Fprintf(&b, "| %s | %s (%s) | %d of %d | %d / %d | %.1f%% | %.1f%% – %.1f%% | %s | %s | %s |\n",
				mdCell(name), d.Bug, d.Strategy, d.RunsCaught, d.Runs, d.Caught, d.Customers, 100*d.Rate,
				100*d.RateCI95[0], 100*d.RateCI95[1], spreadCell(d.PerRunRate, 100, "%.0f%%"),
				spreadCell(d.FirstViolationSeconds, 1000, "%.1f"), spreadCell(d.CustomersToFirst, 1, "%.0f"))
		}
	}

	fmt.Fprintf(&b, "\nFalse alarms on %s: %d in %d judged runs (95%% interval of the per-run rate: %.1f%% – %.1f%%).\n",
		s.exactlyOnce(), len(s.FalseAlarms), s.FixedJudged, 100*s.FalseAlarmRateCI95[0], 100*s.FalseAlarmRateCI95[1])
	for _, f := range s.FalseAlarms {
		name := f.Spec
		if f.Part != "" {
			name += " [" + f.Part + "]"
		}
		fmt.Fprintf(&b, "- %s (seed %d): %s, %d violations %v\n", f.Run, f.Seed, mdCell(name), f.Violations, f.Counts)
	}

	b.WriteString("\nRuns:\n")
	for _, r := range s.Runs {
		line := fmt.Sprintf("- %s", filepath.Base(r.Dir))
		if r.RunID != "" {
			line += fmt.Sprintf(" (run %s, seed %d): %d specs, %d not passed", r.RunID, r.Seed, r.Specs, r.NotPassed)
		}
		if r.Note != "" {
			line += "; " + r.Note
		}
		b.WriteString(line + "\n")
	}
	if missing := s.Attempted - len(s.Runs); missing > 0 {
		fmt.Fprintf(&b, "- %d started runs left no directory (they failed before the suite started; see the soak's log)\n", missing)
	}
	return b.String()
}

func spreadCell(s *Spread, scale float64, format string) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf(format+" / "+format+" / "+format, scale*s.Min, scale*s.Median, scale*s.Max)
}

// mdCell keeps a value inside one Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// WriteSoak writes soak.json and soak.md into dir.
func WriteSoak(dir string, s Soak) error {
	return errors.Join(WriteJSONFile(dir, SoakJSONFile, s), WriteTextFile(dir, SoakMarkdownFile, s.Markdown()))
}
