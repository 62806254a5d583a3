package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The trend page is drawn on the server: each chart is inline SVG, each point a link to its
// run's report.html with a tooltip, and beside each chart a table of the same values for the
// keyboard and screen readers. It has no script at all, and its Content-Security-Policy allows
// its own style alone: a string from a results.json can neither run nor fetch anything.

var (
	//go:embed assets/trend.css
	trendCSS string
	//go:embed assets/trend.html.tmpl
	trendTmpl string

	trendTemplate = template.Must(template.New("trend").Parse(trendTmpl))

	trendCSP = "default-src 'none'; style-src " + cspHash(trendCSS) + "; base-uri 'none'; form-action 'none'"
)

// The chart's size and plot area, in SVG units.
const (
	chartW, chartH  = 380, 150
	plotX0, plotX1  = 70, 368
	plotY0, plotY1  = 12, 120
	trendTimeFormat = "2006-01-02 15:04Z"
	trendShortTime  = "01-02 15:04"
)

type trendPage struct {
	Title, Generated, CSP string
	CSS                   template.CSS
	Runs                  int
	Targets               []trendTargetView
	Skipped               []string
}

type trendTargetView struct {
	Name, ID string
	Runs     []trendRunView
	Metrics  []trendMetricView
}

type trendRunView struct {
	Start, StartFrom, Link, RunID, Dir string
	Seed                               uint64
	Specs, NotPassed                   int
}

type trendMetricView struct {
	ID, Title, What string
	Series          []seriesView
	// Grid replaces the series of a metric of categories (the verdicts).
	Grid *gridView
}

type seriesView struct {
	ID, Title, Fault, Label string
	HasNotes                bool
	Chart                   chartView
	Lines                   []string
	Rows                    []rowView
	Points                  int
}

type chartView struct {
	W, H, X0, Y0   int
	PlotW, PlotH   int
	Paths          []pathView
	Intervals      []intervalView
	Points         []pointView
	YTicks, XTicks []tickView
	Legend         []legendView
}

type pathView struct{ D, Class string }

// intervalView is a 95% interval: a vertical bar with caps, as a path.
type intervalView struct{ D, Class string }

type pointView struct {
	X, Y                     float64
	Class, Title, Href, Line string
}

type tickView struct {
	X, Y         float64
	Label, Class string
}

type legendView struct {
	X, Y, TextX, TextY float64
	Class, Name        string
}

type rowView struct {
	Start, Href, Run, Note string
	Cells                  []cellView
	HasNotes               bool
}

type cellView struct{ Text, Note, Class string }

// WriteTrendHTML writes t as one self-contained page.
func WriteTrendHTML(w io.Writer, t Trend, generated time.Time) error {
	page := trendPage{CSP: trendCSP, CSS: template.CSS(trendCSS), Skipped: t.Skipped}
	if !generated.IsZero() {
		page.Generated = generated.UTC().Format(trendTimeFormat)
	}
	var names []string
	for ti, tt := range t.Targets {
		page.Runs += len(tt.Runs)
		names = append(names, tt.Name)
		page.Targets = append(page.Targets, buildTrendTarget(ti, tt))
	}
	page.Title = fmt.Sprintf("stampede trend: %d runs of %s", page.Runs, strings.Join(names, ", "))
	var buf bytes.Buffer
	if err := trendTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("%s: %w", TrendHTMLFile, err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("%s: %w", TrendHTMLFile, err)
	}
	return nil
}

func buildTrendTarget(ti int, tt TrendTarget) trendTargetView {
	v := trendTargetView{Name: tt.Name, ID: "t" + strconv.Itoa(ti)}
	for _, r := range tt.Runs {
		rv := trendRunView{Start: r.Start.Format(trendTimeFormat), StartFrom: r.StartFrom, Link: r.Link, RunID: r.RunID, Dir: r.Dir,
			Seed: r.Seed, Specs: len(r.specs)}
		for _, s := range r.specs {
			if s.State != "passed" {
				rv.NotPassed++
			}
		}
		v.Runs = append(v.Runs, rv)
	}
	for _, m := range tt.Metrics {
		mv := trendMetricView{ID: v.ID + "-" + string(m.ID), Title: m.Title, What: m.What}
		if m.Scale == "category" {
			if len(m.Series) > 0 {
				mv.Grid = buildGrid(m, tt.Runs)
			}
			v.Metrics = append(v.Metrics, mv)
			continue
		}
		for si, s := range m.Series {
			mv.Series = append(mv.Series, buildSeries(fmt.Sprintf("%s-%d", mv.ID, si), m.metricInfo, s, tt.Runs))
		}
		v.Metrics = append(v.Metrics, mv)
	}
	return v
}

// timeScale maps a run's start to x: the target's runs span the plot, one run sits in its middle.
type timeScale struct{ lo, hi time.Time }

func (s timeScale) x(t time.Time) float64 {
	span := s.hi.Sub(s.lo)
	if span <= 0 {
		return (plotX0 + plotX1) / 2
	}
	return plotX0 + float64(t.Sub(s.lo))/float64(span)*(plotX1-plotX0)
}

func buildSeries(id string, mi metricInfo, s TrendSeries, runs []TrendRun) seriesView {
	sv := seriesView{ID: id, Title: s.Title(), Fault: s.Fault}
	yOf, yTicks := yScale(mi, s)
	ts := timeScale{lo: runs[0].Start, hi: runs[len(runs)-1].Start}
	d := seriesDraw{mi: mi, ts: ts, yOf: yOf, runs: runs, cells: map[int][]cellView{}, lines: len(s.Lines),
		chart: chartView{W: chartW, H: chartH, X0: plotX0, Y0: plotY0, PlotW: plotX1 - plotX0, PlotH: plotY1 - plotY0,
			YTicks: yTicks, XTicks: xTicks(ts)}}
	for li, line := range s.Lines {
		sv.Lines = append(sv.Lines, line.Name)
		d.line(li, line)
		sv.Points += len(line.Points)
	}
	sv.Chart = d.chart
	sv.Rows, sv.HasNotes = tableRows(runs, d.cells)
	sv.Label = fmt.Sprintf("%s of %s over %d runs: %s", mi.Title, sv.Title, len(sv.Rows), lastValues(sv))
	return sv
}

// seriesDraw draws a series' lines into its chart and its table's cells.
type seriesDraw struct {
	mi    metricInfo
	ts    timeScale
	yOf   func(float64) float64
	runs  []TrendRun
	lines int
	chart chartView
	// cells[run][line] is the table; a run without any point of the series has no row.
	cells map[int][]cellView
}

// line draws line li: a point per run (a missing value marked at the top), a path through the
// values, the intervals, and its name in the legend when the series has several.
func (d *seriesDraw) line(li int, line TrendLine) {
	class := "l" + strconv.Itoa(li%4)
	var path strings.Builder
	for _, p := range line.Points {
		run := d.runs[p.Run]
		pv := pointView{X: d.ts.x(run.Start), Y: plotY0, Class: "pt miss " + class, Href: run.Link, Line: line.Name}
		cell := cellView{Text: p.Label, Class: "v-bad", Note: p.Note}
		if !p.Missing() {
			pv.Y, pv.Class = d.yOf(p.Value), "pt "+class
			cell.Text, cell.Class = d.mi.Format(p.Value), ""
			if p.HasInterval {
				cell.Text += fmt.Sprintf(" (95%%: %s – %s)", d.mi.Format(p.Lo), d.mi.Format(p.Hi))
				lo, hi := d.yOf(p.Lo), d.yOf(p.Hi)
				d.chart.Intervals = append(d.chart.Intervals, intervalView{Class: class,
					D: fmt.Sprintf("M%.1f %.1f V%.1f M%.1f %.1f h6 M%.1f %.1f h6", pv.X, lo, hi, pv.X-3, lo, pv.X-3, hi)})
			}
			if path.Len() == 0 {
				fmt.Fprintf(&path, "M%.1f %.1f", pv.X, pv.Y)
			} else {
				fmt.Fprintf(&path, " L%.1f %.1f", pv.X, pv.Y)
			}
		}
		pv.Title = pointTitle(run, line.Name, cell)
		d.chart.Points = append(d.chart.Points, pv)
		if d.cells[p.Run] == nil {
			d.cells[p.Run] = make([]cellView, d.lines)
		}
		d.cells[p.Run][li] = cell
	}
	if path.Len() > 0 {
		d.chart.Paths = append(d.chart.Paths, pathView{D: path.String(), Class: "line " + class})
	}
	if d.lines > 1 {
		// Side by side after the first run's date, each as wide as its name (about 6.5 units a
		// letter at the legend's size).
		x := float64(plotX0 + 80)
		if n := len(d.chart.Legend); n > 0 {
			last := d.chart.Legend[n-1]
			x = last.TextX + 6.5*float64(len(last.Name)) + 12
		}
		d.chart.Legend = append(d.chart.Legend, legendView{X: x, Y: plotY1 + 19, TextX: x + 14, TextY: plotY1 + 28, Class: class, Name: line.Name})
	}
}

// tableRows are the table of a series, a row per run that has a value, oldest first; the notes
// of a row's values share one column, as they usually share their note ("from the saved
// history").
func tableRows(runs []TrendRun, cells map[int][]cellView) (rows []rowView, hasNotes bool) {
	for i, run := range runs {
		row, ok := cells[i]
		if !ok {
			continue
		}
		var notes []string
		for j := range row {
			if row[j].Text == "" {
				row[j].Text = "–"
			}
			if n := row[j].Note; n != "" && !slices.Contains(notes, n) {
				notes = append(notes, n)
			}
		}
		rows = append(rows, rowView{Start: run.Start.Format(trendTimeFormat), Href: run.Link, Run: runName(run), Cells: row,
			Note: strings.Join(notes, "; ")})
		hasNotes = hasNotes || len(notes) > 0
	}
	return rows, hasNotes
}

// yScale is the metric's y axis: fractions from 0 to 1, other numbers from 0 to a round number
// at or above the series' largest value.
func yScale(mi metricInfo, s TrendSeries) (func(float64) float64, []tickView) {
	top := 1.0
	if mi.Scale == "zero" {
		largest := 0.0
		for _, l := range s.Lines {
			for _, p := range l.Points {
				if !math.IsNaN(p.Value) {
					largest = max(largest, p.Value, p.Hi)
				}
			}
		}
		top = niceCeil(largest)
	}
	y := func(v float64) float64 {
		return plotY1 - min(max(v/top, 0), 1)*(plotY1-plotY0)
	}
	var ticks []tickView
	for _, f := range []float64{0, 0.5, 1} {
		ticks = append(ticks, tickView{X: plotX0 - 6, Y: y(f * top), Label: mi.Format(f * top)})
	}
	return y, ticks
}

// niceCeil is the smallest of 1, 2 or 5 times a power of ten at or above v (1 for none).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// xTicks label the first and the last run's start under the plot.
func xTicks(ts timeScale) []tickView {
	const y1 = plotY1
	if !ts.hi.After(ts.lo) {
		return []tickView{{X: ts.x(ts.lo), Y: y1 + 16, Label: ts.lo.Format(trendShortTime), Class: "mid"}}
	}
	return []tickView{
		{X: plotX0, Y: y1 + 16, Label: ts.lo.Format(trendShortTime), Class: "start"},
		{X: plotX1, Y: y1 + 16, Label: ts.hi.Format(trendShortTime), Class: "end"},
	}
}

// categoryClass sorts a verdict or a spec state into the page's colours.
func categoryClass(label string) string {
	switch label {
	case "pass", "passed":
		return "ok"
	case "fail", "failed", "panicked", "interrupted", "aborted", "timedout":
		return "bad"
	case "inconclusive":
		return "warn"
	}
	return "other"
}

func runName(r TrendRun) string {
	if r.RunID != "" {
		return fmt.Sprintf("%s, seed %d", r.RunID, r.Seed)
	}
	return fmt.Sprintf("seed %d", r.Seed)
}

func pointTitle(r TrendRun, line string, c cellView) string {
	s := fmt.Sprintf("%s · run %s · %s: %s", r.Start.Format(trendTimeFormat), runName(r), line, c.Text)
	if c.Note != "" {
		s += " (" + c.Note + ")"
	}
	if r.Link == "" {
		s += " · its report is not beside this page"
	}
	return s
}

// lastValues is the latest run's values, for the chart's text alternative.
func lastValues(sv seriesView) string {
	if len(sv.Rows) == 0 {
		return "no value"
	}
	last := sv.Rows[len(sv.Rows)-1]
	var parts []string
	for i, c := range last.Cells {
		parts = append(parts, sv.Lines[i]+" "+c.Text)
	}
	return "latest (" + last.Start + ") " + strings.Join(parts, ", ")
}
