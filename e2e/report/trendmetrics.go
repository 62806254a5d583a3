package report

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// MetricID names a metric of the trend page; the page's element ids and the browser test use it.
type MetricID string

// The trend page's metrics, in the order it shows them.
const (
	MetricVerdict   MetricID = "verdict"
	MetricDetection MetricID = "detection"
	MetricRecovery  MetricID = "recovery"
	MetricLatency   MetricID = "latency"
	MetricCoverage  MetricID = "coverage"
	MetricUnknown   MetricID = "unknown"
)

// metricInfo is a metric's title, the line that says what it is, and how its values read.
type metricInfo struct {
	ID    MetricID
	Title string
	What  string
	// Scale is how the chart's y axis runs: "category" (one row per line), "fraction" (0 to
	// 1) or "zero" (0 to the largest value).
	Scale  string
	Format func(float64) string
}

var metricInfos = []metricInfo{
	{MetricVerdict, "Verdict",
		"Per run (a column, oldest first), the spec's state as Ginkgo ended it, the cell's colour: green passed, " +
			"red failed, grey any other; and the checker's verdict on the invariants, its letter: P pass, F fail, " +
			"I inconclusive, · not judged. A canary's or a mutant's F is what its spec wants: its colour says whether it got it.", "category", nil},
	{MetricDetection, "Canary detection rate",
		"Entities the checker caught over the entities a canary (a mode with a known bug) sent, per run, " +
			"with its 95% Wilson interval; a rate saved without its counts has none.", "fraction", fmtPercent},
	{MetricRecovery, "Recovery time",
		"Seconds from a fault's end until requests succeed again; a run that did not recover within its " +
			"bound is marked at the top.", "zero", func(v float64) string { return fmtSig(v) + " s" }},
	{MetricLatency, "Latency p50 / p99",
		"Client latency (call to return) of the answered requests of a judged part, median and 99th " +
			"percentile, as the run's report shows them.", "zero", func(v float64) string { return fmtSig(v) + " ms" }},
	{MetricCoverage, "Coverage",
		"The fraction of entities whose requests reached two pods at once as the client saw it (client) " +
			"and as the pods' handler intervals show it (server): below the bar, a run is inconclusive.", "fraction", fmtPercent},
	{MetricUnknown, "Unknown outcomes",
		"Requests whose outcome the client cannot know (a transport error or a timeout): never counted " +
			"as a success, so many of them weaken what a run proves.", "zero", func(v float64) string { return fmtSig(v) }},
}

func fmtPercent(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

// fmtSig formats v with about three significant digits, never in exponent form, and no
// trailing zeros: 3007, 283, 12.3, 0.54, 3.
func fmtSig(v float64) string {
	prec := 2
	switch a := math.Abs(v); {
	case a >= 100:
		prec = 0
	case a >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// TrendMetric is one metric over the runs of a target: a series per spec (and judged part).
type TrendMetric struct {
	metricInfo
	Series []TrendSeries
}

// TrendSeries is one spec's (or judged part's) lines of a metric.
type TrendSeries struct {
	Spec, Part string
	// Fault is the fault the spec injected, when the run named it.
	Fault string
	Lines []TrendLine
}

// Title names the series on the page.
func (s TrendSeries) Title() string {
	if s.Part != "" {
		return s.Spec + " [" + s.Part + "]"
	}
	return s.Spec
}

// TrendLine is one line of a series: a value per run that has it.
type TrendLine struct {
	Name   string
	Points []TrendPoint
}

// TrendPoint is one run's value. Run indexes TrendTarget.Runs.
type TrendPoint struct {
	Run   int
	Value float64
	// Lo and Hi bound Value's 95% interval when HasInterval.
	Lo, Hi      float64
	HasInterval bool
	// Label is the value of a category (a verdict), or what stands for a value that is none
	// ("did not recover"), which the chart marks at the top.
	Label string
	// Note says more: the counts behind a rate, where a value came from.
	Note string
}

// Missing says the point has no value to draw at its height.
func (p TrendPoint) Missing() bool { return p.Label != "" && math.IsNaN(p.Value) }

// seriesKey identifies a series within its metric.
type seriesKey struct{ spec, part string }

// metricAcc gathers one metric's series in the order they first appear.
type metricAcc struct {
	order  []seriesKey
	series map[seriesKey]*TrendSeries
}

func (m *metricAcc) add(spec, part, line string, p TrendPoint) *TrendSeries {
	k := seriesKey{spec, part}
	s := m.series[k]
	if s == nil {
		s = &TrendSeries{Spec: spec, Part: part}
		m.series[k] = s
		m.order = append(m.order, k)
	}
	i := slices.IndexFunc(s.Lines, func(l TrendLine) bool { return l.Name == line })
	if i < 0 {
		s.Lines = append(s.Lines, TrendLine{Name: line})
		i = len(s.Lines) - 1
	}
	s.Lines[i].Points = append(s.Lines[i].Points, p)
	return s
}

// trendMetrics reads the metrics of runs, which are in start order.
func trendMetrics(runs []TrendRun) []TrendMetric {
	accs := map[MetricID]*metricAcc{}
	for _, mi := range metricInfos {
		accs[mi.ID] = &metricAcc{series: map[seriesKey]*TrendSeries{}}
	}
	for i, run := range runs {
		for _, spec := range run.specs {
			addSpec(accs, i, run.Dir, spec)
		}
	}
	out := make([]TrendMetric, 0, len(metricInfos))
	for _, mi := range metricInfos {
		m := TrendMetric{metricInfo: mi}
		for _, k := range accs[mi.ID].order {
			m.Series = append(m.Series, *accs[mi.ID].series[k])
		}
		out = append(out, m)
	}
	return out
}

// addSpec adds one spec of run i to every metric it has figures for.
func addSpec(accs map[MetricID]*metricAcc, i int, runDir string, spec trendSpec) {
	parts := map[string]map[string]any{}
	for key, v := range spec.Figures {
		name, part := SplitFigure(key)
		if parts[part] == nil {
			parts[part] = map[string]any{}
		}
		parts[part][name] = v
	}
	if len(parts) == 0 {
		parts[""] = map[string]any{}
	}
	fault, _ := parts[""][FigureFault].(string)
	for _, part := range slices.Sorted(maps.Keys(parts)) {
		figs := parts[part]
		verdict, judged := figs[FigureVerdict].(string)
		// A spec's state goes with each of its judged parts; a spec that judged nothing (it
		// failed first) has its state alone.
		if judged || len(parts) == 1 {
			accs[MetricVerdict].add(spec.Name, part, "spec", TrendPoint{Run: i, Value: math.NaN(), Label: spec.State})
		}
		if judged {
			accs[MetricVerdict].add(spec.Name, part, "checker", TrendPoint{Run: i, Value: math.NaN(), Label: verdict})
		}
		addDetection(accs[MetricDetection], i, spec.Name, part, figs)
		if v, ok := number(figs[FigureRecoverySeconds]); ok {
			p := TrendPoint{Run: i, Value: v}
			if v < 0 {
				p.Value, p.Label = math.NaN(), "did not recover"
			}
			s := accs[MetricRecovery].add(spec.Name, part, "recovery", p)
			if fault != "" {
				s.Fault = fault
			}
		}
		for _, c := range []struct{ fig, line string }{{FigureCoverageClient, "client"}, {FigureCoverageServer, "server"}} {
			if v, ok := number(figs[c.fig]); ok {
				accs[MetricCoverage].add(spec.Name, part, c.line, TrendPoint{Run: i, Value: v})
			}
		}
		if judged {
			addTraffic(accs, i, filepath.Join(runDir, SpecDirName(spec.Name), part), spec.Name, part, figs)
		}
	}
}

// addDetection adds a canary's detection rate: caught over sent with its interval, or each rate
// a run saved without its counts.
func addDetection(m *metricAcc, i int, spec, part string, figs map[string]any) {
	caught, ok1 := number(figs[FigureCanaryCaught])
	sent, ok2 := number(figs[FigureCanaryEntities])
	if ok1 && ok2 && sent > 0 {
		lo, hi := Wilson(int(caught), int(sent), Z95)
		m.add(spec, part, "caught", TrendPoint{Run: i, Value: caught / sent, Lo: lo, Hi: hi, HasInterval: true,
			Note: fmt.Sprintf("%.0f of %.0f", caught, sent)})
	}
	for _, name := range slices.Sorted(maps.Keys(figs)) {
		cond, ok := strings.CutPrefix(name, FigureDetectionRatePrefix)
		if !ok {
			continue
		}
		if v, ok := number(figs[name]); ok {
			m.add(spec, part, strings.ReplaceAll(cond, "_", " "), TrendPoint{Run: i, Value: v, Note: "rate only: no counts saved"})
		}
	}
}

// addTraffic adds a judged part's latency and unknown outcomes: from its figures, or for a run
// saved before they were figures, from the part's saved history and judgement when they are at
// hand (a run's own directory; a nightly's restored results.json has neither).
func addTraffic(accs map[MetricID]*metricAcc, i int, partDir, spec, part string, figs map[string]any) {
	p50, ok50 := number(figs[FigureLatencyP50])
	p99, ok99 := number(figs[FigureLatencyP99])
	note := ""
	if !ok50 || !ok99 {
		if ops, err := readHistory(partDir); err == nil {
			if d50, d99, n := AnsweredLatency(ops); n > 0 {
				p50, p99 = d50.Seconds()*1000, d99.Seconds()*1000
				ok50, ok99, note = true, true, "from the saved history"
			}
		}
	}
	if ok50 && ok99 {
		accs[MetricLatency].add(spec, part, "p50", TrendPoint{Run: i, Value: p50, Note: note})
		accs[MetricLatency].add(spec, part, "p99", TrendPoint{Run: i, Value: p99, Note: note})
	}
	unknown, okU := number(figs[FigureUnknown])
	requests, okR := number(figs[FigureRequests])
	var notes []string
	if !okU {
		if res, err := readResult(partDir); err == nil {
			unknown, requests, okU, okR = float64(res.Unknown), float64(res.Requests), true, true
			notes = append(notes, "from the saved judgement")
		}
	}
	if okU {
		if okR {
			notes = append([]string{fmt.Sprintf("of %.0f requests", requests)}, notes...)
		}
		accs[MetricUnknown].add(spec, part, "unknown", TrendPoint{Run: i, Value: unknown, Note: strings.Join(notes, "; ")})
	}
}

// number reads a figure as a number: JSON numbers decode as float64.
func number(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok && !math.IsNaN(f) && !math.IsInf(f, 0)
}
