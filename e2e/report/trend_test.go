package report

import (
	"bytes"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// writeResults writes a results.json as text into root/name and returns the run's directory.
func writeResults(t *testing.T, root, name, text string) string {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := WriteTextFile(dir, ResultsFile, text); err != nil {
		t.Fatal(err)
	}
	return dir
}

// An old results.json: no target, no start, no stages, no latency or unknown figures (as the
// suite wrote it before them).
const oldResults = `{"run_id": "old1", "seed": 7, "specs": [
  {"name": "registers once", "state": "passed", "runtime_seconds": 3,
   "figures": {"verdict": "pass", "coverage.client": 1, "coverage.server": 0.9}},
  {"name": "the canary", "state": "passed", "runtime_seconds": 3,
   "figures": {"verdict": "fail", "canary.caught": 20, "canary.customers": 40}}]}`

// A new one: a target, a start, and every figure the trend reads.
const newResults = `{"run_id": "new1", "seed": 8, "start": "2026-12-08T02:37:00Z",
 "target": {"name": "svc-a", "file": "targets/a/target.yaml", "digest": "sha256:00"},
 "specs": [
  {"name": "registers once", "state": "failed", "runtime_seconds": 3,
   "figures": {"verdict": "inconclusive", "coverage.client": 0.5, "coverage.server": 0.25,
     "traffic.latency_p50_ms": 2.5, "traffic.latency_p99_ms": 40, "traffic.requests": 240, "traffic.unknown": 3}},
  {"name": "the canary", "state": "passed", "runtime_seconds": 3,
   "figures": {"verdict[with-latency]": "fail", "canary.detection_rate_with_latency": 0.25}},
  {"name": "chaos under db-cut", "state": "passed", "runtime_seconds": 3,
   "figures": {"verdict": "pass", "chaos.fault": "db-cut", "chaos.recovery_seconds": -1}}]}`

func metricOf(t *testing.T, tt TrendTarget, id MetricID) TrendMetric {
	t.Helper()
	for _, m := range tt.Metrics {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("no metric %s", id)
	return TrendMetric{}
}

func seriesOf(t *testing.T, m TrendMetric, title string) TrendSeries {
	t.Helper()
	for _, s := range m.Series {
		if s.Title() == title {
			return s
		}
	}
	t.Fatalf("metric %s has no series %q", m.ID, title)
	return TrendSeries{}
}

func lineOf(t *testing.T, s TrendSeries, name string) TrendLine {
	t.Helper()
	for _, l := range s.Lines {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("series %q has no line %q", s.Title(), name)
	return TrendLine{}
}

// TestTrendOfOldAndNewRuns: a results.json without the newer fields loads, takes the caller's
// target and its directory's time; each figure lands in its metric.
func TestTrendOfOldAndNewRuns(t *testing.T) {
	root := t.TempDir()
	oldDir := writeResults(t, root, RunDirName(time.Date(2026, 12, 7, 2, 37, 0, 0, time.UTC), 7), oldResults)
	newDir := writeResults(t, root, "tonight", strings.ReplaceAll(newResults, `"svc-a"`, `"svc-old"`))
	if err := WriteTextFile(newDir, HTMLFile, "<html></html>"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, TrendHTMLFile)
	tr, err := BuildTrend(TrendParams{Roots: []string{root}, Out: out, DefaultTarget: "svc-old"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Targets) != 1 || len(tr.Targets[0].Runs) != 2 {
		t.Fatalf("targets %+v", tr.Targets)
	}
	tt := tr.Targets[0]
	first, second := tt.Runs[0], tt.Runs[1]
	if first.Dir != oldDir || first.StartFrom != "directory" || second.StartFrom != "results" {
		t.Errorf("runs in order %s (%s), %s (%s)", first.Dir, first.StartFrom, second.Dir, second.StartFrom)
	}
	if first.Link != "" || second.Link != "tonight/report.html" {
		t.Errorf("links %q, %q: want none for the run without report.html", first.Link, second.Link)
	}

	verdicts := seriesOf(t, metricOf(t, tt, MetricVerdict), "registers once")
	if got := lineOf(t, verdicts, "checker").Points; len(got) != 2 || got[0].Label != "pass" || got[1].Label != "inconclusive" {
		t.Errorf("checker verdicts %+v", got)
	}
	if got := lineOf(t, verdicts, "spec").Points; len(got) != 2 || got[1].Label != "failed" {
		t.Errorf("spec states %+v", got)
	}
	caught := lineOf(t, seriesOf(t, metricOf(t, tt, MetricDetection), "the canary"), "caught").Points
	lo, hi := Wilson(20, 40, Z95)
	if len(caught) != 1 || caught[0].Value != 0.5 || !caught[0].HasInterval || caught[0].Lo != lo || caught[0].Hi != hi {
		t.Errorf("detection %+v, want 0.5 in [%v, %v]", caught, lo, hi)
	}
	rateOnly := lineOf(t, seriesOf(t, metricOf(t, tt, MetricDetection), "the canary"), "with latency").Points
	if len(rateOnly) != 1 || rateOnly[0].Value != 0.25 || rateOnly[0].HasInterval {
		t.Errorf("a rate without counts %+v: want no interval", rateOnly)
	}
	recovery := seriesOf(t, metricOf(t, tt, MetricRecovery), "chaos under db-cut")
	if p := lineOf(t, recovery, "recovery").Points; recovery.Fault != "db-cut" || len(p) != 1 || !p[0].Missing() || p[0].Label != "did not recover" {
		t.Errorf("recovery %+v", recovery)
	}
	// The old run saved neither latency nor unknown outcomes, nor the history they come from.
	lat := seriesOf(t, metricOf(t, tt, MetricLatency), "registers once")
	if p := lineOf(t, lat, "p99").Points; len(p) != 1 || p[0].Run != 1 || p[0].Value != 40 {
		t.Errorf("latency p99 %+v", p)
	}
	unknown := lineOf(t, seriesOf(t, metricOf(t, tt, MetricUnknown), "registers once"), "unknown").Points
	if len(unknown) != 1 || unknown[0].Value != 3 || unknown[0].Note != "of 240 requests" {
		t.Errorf("unknown %+v", unknown)
	}
	cov := seriesOf(t, metricOf(t, tt, MetricCoverage), "registers once")
	if p := lineOf(t, cov, "server").Points; len(p) != 2 || p[0].Value != 0.9 || p[1].Value != 0.25 {
		t.Errorf("coverage %+v", p)
	}
}

// TestTrendLatencyFromSavedHistory: a run saved before the latency figures has them from its
// judged part's history when that is beside its results.json.
func TestTrendLatencyFromSavedHistory(t *testing.T) {
	root := t.TempDir()
	dir := writeResults(t, root, "run", oldResults)
	var buf bytes.Buffer
	ops := []history.Op{{Call: 0, Return: 10 * time.Millisecond}, {Call: 0, Return: 30 * time.Millisecond}, {Call: 0}}
	if err := history.WriteJSONL(&buf, ops); err != nil {
		t.Fatal(err)
	}
	if err := WriteTextFile(filepath.Join(dir, SpecDirName("registers once")), HistoryFile, buf.String()); err != nil {
		t.Fatal(err)
	}
	tr, err := BuildTrend(TrendParams{Roots: []string{root}, Out: filepath.Join(root, TrendHTMLFile), DefaultTarget: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	p := lineOf(t, seriesOf(t, metricOf(t, tr.Targets[0], MetricLatency), "registers once"), "p99").Points
	if len(p) != 1 || p[0].Value != 30 || p[0].Note != "from the saved history" {
		t.Errorf("p99 from the history %+v", p)
	}
}

// TestTrendKeepsTargetsApart: runs of two targets are two sections, each with its own runs.
func TestTrendKeepsTargetsApart(t *testing.T) {
	root := t.TempDir()
	writeResults(t, root, "a", newResults)
	writeResults(t, root, "b", strings.NewReplacer(`"svc-a"`, `"svc-b"`, `"new1"`, `"new2"`).Replace(newResults))
	writeResults(t, root, "c", strings.ReplaceAll(newResults, `"new1"`, `"new3"`))
	tr, err := BuildTrend(TrendParams{Roots: []string{root}, Out: filepath.Join(root, TrendHTMLFile), DefaultTarget: "svc-a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Targets) != 2 || tr.Targets[0].Name != "svc-a" || len(tr.Targets[0].Runs) != 2 ||
		tr.Targets[1].Name != "svc-b" || len(tr.Targets[1].Runs) != 1 {
		t.Fatalf("targets: %+v", tr.Targets)
	}
	var page bytes.Buffer
	if err := WriteTrendHTML(&page, tr, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(page.String(), `<section class="target"`); n != 2 {
		t.Errorf("%d target sections, want 2", n)
	}
}

// TestTrendWithoutRuns: nothing to read is an error that says where it looked, and why a file
// found could not be read.
func TestTrendWithoutRuns(t *testing.T) {
	empty := t.TempDir()
	_, err := BuildTrend(TrendParams{Roots: []string{empty}, DefaultTarget: "svc"})
	if err == nil || !strings.Contains(err.Error(), "no run's results.json under "+empty) {
		t.Errorf("empty directory: %v", err)
	}
	broken := t.TempDir()
	writeResults(t, broken, "run", "{not json")
	_, err = BuildTrend(TrendParams{Roots: []string{broken}, DefaultTarget: "svc"})
	if err == nil || !strings.Contains(err.Error(), filepath.Join("run", ResultsFile)) {
		t.Errorf("unreadable results.json: %v", err)
	}
	if _, err := BuildTrend(TrendParams{Roots: []string{filepath.Join(empty, "absent")}}); err == nil {
		t.Error("a directory that does not exist: no error")
	}
}

// TestTrendFindsEachRunOnce: an artifacts directory's latest link, and the same run named twice
// (a nightly's restored copy beside tonight's directory), give one run, the one with its report.
func TestTrendFindsEachRunOnce(t *testing.T) {
	root := t.TempDir()
	dir := writeResults(t, root, "arts/run", newResults)
	if err := WriteTextFile(dir, HTMLFile, "<html></html>"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("run", filepath.Join(root, "arts", LatestLink)); err != nil {
		t.Fatal(err)
	}
	writeResults(t, root, "history/run", newResults)
	tr, err := BuildTrend(TrendParams{Roots: []string{filepath.Join(root, "history"), filepath.Join(root, "arts")},
		Out: filepath.Join(root, "arts", TrendHTMLFile)})
	if err != nil {
		t.Fatal(err)
	}
	if runs := tr.Targets[0].Runs; len(runs) != 1 || runs[0].Link != "run/report.html" {
		t.Errorf("runs %+v", runs)
	}
}

// TestTrendPageEscapesAndDraws: strings from results.json are text, never markup; the page has
// no script; every point is drawn and tabled.
func TestTrendPageEscapesAndDraws(t *testing.T) {
	root := t.TempDir()
	evil, evilJSON := `<script>alert(1)</script>"&`, `<script>alert(1)</script>\"&`
	writeResults(t, root, "a", strings.ReplaceAll(newResults, "registers once", evilJSON))
	writeResults(t, root, "b", strings.NewReplacer("registers once", evilJSON, `"new1"`, `"new2"`,
		"2026-12-08T02:37:00Z", "2026-12-09T02:37:00Z").Replace(newResults))
	tr, err := BuildTrend(TrendParams{Roots: []string{root}, Out: filepath.Join(root, TrendHTMLFile)})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := WriteTrendHTML(&page, tr, time.Now()); err != nil {
		t.Fatal(err)
	}
	s := page.String()
	if strings.Contains(s, "<script") {
		t.Error("the page has a script element: a spec's name was not escaped, or a script crept in")
	}
	if !strings.Contains(s, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the spec's name is not on the page as text")
	}
	if !strings.Contains(s, "Content-Security-Policy") || !strings.Contains(s, "default-src") {
		t.Error("no Content-Security-Policy")
	}
	// Coverage of the evil spec: two lines (client, server), a point each per run.
	cov := seriesOf(t, metricOf(t, tr.Targets[0], MetricCoverage), evil)
	for _, l := range cov.Lines {
		if len(l.Points) != 2 {
			t.Errorf("coverage %s: %d points, want 2", l.Name, len(l.Points))
		}
	}
	for _, m := range metricInfos {
		if !strings.Contains(s, template.HTMLEscapeString(m.What)) {
			t.Errorf("the page does not say what %s is", m.ID)
		}
	}
}

// TestSplitFigure: a part in brackets, or none.
func TestSplitFigure(t *testing.T) {
	for key, want := range map[string][2]string{
		"verdict": {"verdict", ""}, "coverage.client[mixed]": {"coverage.client", "mixed"}, "odd[": {"odd[", ""},
	} {
		if n, p := SplitFigure(key); n != want[0] || p != want[1] {
			t.Errorf("SplitFigure(%q) = %q, %q", key, n, p)
		}
	}
	if p50, p99, n := AnsweredLatency(nil); p50 != 0 || p99 != 0 || n != 0 {
		t.Error("latency of no request")
	}
}

// TestNiceCeil: a round axis top at or above the largest value.
func TestNiceCeil(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 3: 5, 7: 10, 40: 50, 283: 500, 3006: 5000} {
		if got := niceCeil(v); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}

func TestFmtSig(t *testing.T) {
	for v, want := range map[float64]string{3006.7: "3007", 283.2: "283", 12.34: "12.3", 0.545: "0.55", 3: "3", 0: "0", 2.5: "2.5"} {
		if got := fmtSig(v); got != want {
			t.Errorf("fmtSig(%v) = %q, want %q", v, got, want)
		}
	}
}
