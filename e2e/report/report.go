// Package report writes the artifacts of a stampede run: the history, the
// check result as JSON and as a table, vegeta's metrics and a summary.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

// Artifact file names written by Write.
const (
	HistoryFile        = "history.jsonl"
	ViolationsJSONFile = "violations.json"
	ViolationsTextFile = "violations.txt"
	MetricsFile        = "metrics.json"
	// ResultFile is one judged run's summary in prose; the run's summary.txt is the suite's.
	ResultFile = "result.txt"
	// JudgeFile holds what judging needs besides the history and the rows (the checker's
	// params: public key, issuer, contract, fault windows, coverage), and the time base.
	JudgeFile = "judge.json"
	// RowsFile holds the database rows the checker read.
	RowsFile = "rows.json"
	// EventsFile holds the fault windows, one event a line.
	EventsFile = "events.jsonl"
)

// Run is everything a report is made of.
type Run struct {
	// Repro is the line that replays the run, such as the ginkgo command
	// with its seed; it heads the summary.
	Repro string
	// Base is the run's time base (history.Clock), that the history's times count from.
	Base    time.Time
	History []history.Op
	Result  check.Result
	// Params judged the history against Rows: saved so that `stampede check` can judge it
	// again offline (Recheck). Their Base is Base; judge.json keeps it once.
	Params check.Params
	Rows   []check.Row
	// Format is the judge.json format version Load read (0 for a file saved before versions);
	// Write ignores it.
	Format int
}

// judgeFile is JudgeFile's content.
type judgeFile struct {
	Params check.SavedParams `json:"params"`
	Base   time.Time         `json:"base"`
	Repro  string            `json:"repro,omitempty"`
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Metrics are vegeta's figures of one traffic phase, computed from the recorded history: the
// one record of what was sent, whichever traffic runs and rounds sent it.
func Metrics(ops []history.Op, base time.Time, phase history.Phase) vegeta.Metrics {
	var m vegeta.Metrics
	for _, op := range ops {
		if op.Phase != phase {
			continue
		}
		r := vegeta.Result{Code: uint16(op.Status), Timestamp: base.Add(op.Call), Error: op.Error}
		if op.Return > 0 {
			r.Latency = op.Return - op.Call
		}
		m.Add(&r)
	}
	m.Close()
	return m
}

// Write writes the artifacts of r into dir, creating it. It writes every file
// it can and returns all failures joined.
func Write(dir string, r Run) error {
	if !r.Params.Base.IsZero() && !r.Params.Base.Equal(r.Base) {
		// A re-check would judge on r.Base, which is all judge.json keeps: another verdict.
		return fmt.Errorf("write report: the checker judged on time base %s, the run's is %s",
			r.Params.Base.UTC().Format(time.RFC3339Nano), r.Base.UTC().Format(time.RFC3339Nano))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report dir: %w", err)
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{HistoryFile, func(w io.Writer) error { return history.WriteJSONL(w, r.History) }},
		{EventsFile, func(w io.Writer) error { return history.WriteEventsJSONL(w, r.Params.Faults) }},
		{RowsFile, func(w io.Writer) error { return writeIndentedJSON(w, r.Rows) }},
		{JudgeFile, func(w io.Writer) error {
			return writeIndentedJSON(w, judgeFile{Params: r.Params.Save(), Base: r.Base, Repro: r.Repro})
		}},
		{ViolationsJSONFile, r.Result.WriteJSON},
		{ViolationsTextFile, r.Result.WriteText},
		{MetricsFile, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]vegeta.Metrics{
				"burst": Metrics(r.History, r.Base, history.PhaseBurst),
				"retry": Metrics(r.History, r.Base, history.PhaseRetry),
			})
		}},
		{ResultFile, r.WriteSummary},
	}
	var errs []error
	for _, f := range files {
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			errs = append(errs, fmt.Errorf("render %s: %w", f.name, err))
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), buf.Bytes(), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

// WriteSummary writes a short human summary of r: what was sent, where it
// went, whether the race was exercised, and what broke.
func (r Run) WriteSummary(w io.Writer) error {
	var b strings.Builder
	res := r.Result
	nouns := res.Names.WithDefaults()
	if r.Repro != "" {
		fmt.Fprintf(&b, "repro: %s\n", r.Repro)
	}
	fmt.Fprintf(&b, "verdict: %s\n", res.Verdict)
	fmt.Fprintf(&b, "%s: %d\n", nouns.Entities, res.Customers)
	fmt.Fprintf(&b, "requests: %d (2xx %d, clean errors %d, unknown %d, retries %d",
		len(r.History), res.Successes, res.CleanErrors, res.Unknown, countRetries(r.History))
	if res.Refused > 0 {
		fmt.Fprintf(&b, ", refused their key %d", res.Refused)
	}
	b.WriteString(")\n")

	pods := PodCounts(r.History)
	names := slices.Sorted(func(yield func(string) bool) {
		for p := range pods {
			if !yield(p) {
				return
			}
		}
	})
	hit := len(names)
	if _, ok := pods[""]; ok {
		hit--
	}
	fmt.Fprintf(&b, "pods hit: %d\n", hit)
	for _, p := range names {
		label := p
		if p == "" {
			label = "(no response)"
		}
		fmt.Fprintf(&b, "  %-40s %d\n", label, pods[p])
	}
	fmt.Fprintf(&b, "coverage: %s\n", res.Coverage.Describe(nouns))
	fmt.Fprintf(&b, "violations: %d\n", len(res.Violations))
	for _, rule := range res.AppliedRules() {
		fmt.Fprintf(&b, "  %-18s %d\n", rule, res.Counts[rule])
	}
	burst, retry := Metrics(r.History, r.Base, history.PhaseBurst), Metrics(r.History, r.Base, history.PhaseRetry)
	fmt.Fprintf(&b, "burst latency: p50 %s, p99 %s, max %s; codes %v\n",
		burst.Latencies.P50, burst.Latencies.P99, burst.Latencies.Max, burst.StatusCodes)
	fmt.Fprintf(&b, "burst spread: %s\n", BurstSpread(r.History).Describe(nouns))
	if retry.Requests > 0 {
		fmt.Fprintf(&b, "retry latency: p50 %s, p99 %s; codes %v\n", retry.Latencies.P50, retry.Latencies.P99, retry.StatusCodes)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// PodCounts counts the requests each pod served; the empty name counts
// requests that got no response.
func PodCounts(ops []history.Op) map[string]int {
	m := map[string]int{}
	for _, op := range ops {
		m[op.Pod]++
	}
	return m
}

func countRetries(ops []history.Op) int {
	n := 0
	for _, op := range ops {
		if op.Phase == history.PhaseRetry {
			n++
		}
	}
	return n
}
