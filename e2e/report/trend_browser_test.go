package report

// The browser test of trend.html: headless Chromium (findBrowser: skipped without one, unless
// STAMPEDE_REQUIRE_BROWSER=1) opens the page of three runs from file:// and finds every chart
// and every table with three points per line, its style applied (the Content-Security-Policy
// admitted it), the verdicts' grid with three coloured cells per row, and no console error,
// exception or request.

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// drawnSeries is what the page shows of one series.
type drawnSeries struct {
	ID     string         `json:"id"`
	Title  string         `json:"title"`
	Points map[string]int `json:"points"`
	Rows   int            `json:"rows"`
	Width  float64        `json:"width"`
}

const drawnSeriesJS = `[...document.querySelectorAll('figure.series')].map(f => {
  const points = {};
  f.querySelectorAll('svg circle.pt').forEach(c => { points[c.dataset.line] = (points[c.dataset.line] || 0) + 1; });
  return {id: f.id, title: f.dataset.series, points, rows: f.querySelectorAll('tbody tr').length,
    width: f.querySelector('svg').getBoundingClientRect().width};
})`

func TestTrendInBrowser(t *testing.T) {
	exe := findBrowser(t)
	root := t.TempDir()
	for i, start := range []string{"2026-12-05T02:37:00Z", "2026-12-06T02:37:00Z", "2026-12-07T02:37:00Z"} {
		name := "night" + string(rune('1'+i))
		dir := writeResults(t, root, name, strings.NewReplacer(`"new1"`, `"`+name+`"`, "2026-12-08T02:37:00Z", start).Replace(newResults))
		if i > 0 { // the first night's report is elsewhere (a restored results.json)
			if err := WriteTextFile(dir, HTMLFile, "<html></html>"); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := filepath.Join(screenshotDir(t), TrendHTMLFile)
	tr, err := BuildTrend(TrendParams{Roots: []string{root}, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteTrendFile(out, tr, time.Now()); err != nil {
		t.Fatal(err)
	}
	want, wantRows := 0, 0
	for _, m := range tr.Targets[0].Metrics {
		if m.Scale == "category" {
			wantRows += len(m.Series)
		} else {
			want += len(m.Series)
		}
	}

	p, load := openPage(t, exe, out)
	t.Logf("trend.html of 3 runs loaded in %s", load.Round(time.Millisecond))
	got := eval[[]drawnSeries](t, p, drawnSeriesJS)
	if len(got) != want || want == 0 {
		t.Errorf("the page shows %d series, the trend has %d", len(got), want)
	}
	for _, s := range got {
		if s.Rows != 3 {
			t.Errorf("%s (%s): %d table rows, want 3", s.ID, s.Title, s.Rows)
		}
		if len(s.Points) == 0 || s.Width < 100 {
			t.Errorf("%s (%s): no chart drawn (%d lines, %.0f px wide)", s.ID, s.Title, len(s.Points), s.Width)
		}
		for line, n := range s.Points {
			if n != 3 {
				t.Errorf("%s (%s) %s: %d points, want 3", s.ID, s.Title, line, n)
			}
		}
	}
	// The verdicts' grid: a row per spec and judged part, a coloured cell per run.
	type gridRow struct {
		Title  string `json:"title"`
		Cells  int    `json:"cells"`
		Filled int    `json:"filled"`
	}
	rows := eval[[]gridRow](t, p, `[...document.querySelectorAll('table.vgrid tbody tr')].map(r => ({title: r.dataset.series,
  cells: r.querySelectorAll('td.cell:not(.none)').length,
  filled: [...r.querySelectorAll('td.cell:not(.none)')].filter(c => getComputedStyle(c).backgroundColor !== 'rgba(0, 0, 0, 0)').length}))`)
	if len(rows) != wantRows || wantRows == 0 {
		t.Errorf("the verdict grid has %d rows, the trend %d series", len(rows), wantRows)
	}
	for _, r := range rows {
		if r.Cells != 3 || r.Filled != 3 {
			t.Errorf("verdicts of %s: %d cells, %d coloured, want 3", r.Title, r.Cells, r.Filled)
		}
	}
	// The style is the page's only resource: a CSP that refused it would leave the plot black.
	if fill := eval[string](t, p, `getComputedStyle(document.querySelector('svg .plot')).fill`); fill == "rgb(0, 0, 0)" || fill == "" {
		t.Errorf("the plot's fill is %q: the style was not applied", fill)
	}
	if links := eval[int](t, p, `document.querySelectorAll('svg a[href$="report.html"]').length`); links == 0 {
		t.Error("no point links to its run's report.html")
	}
	screenshot(t, p, filepath.Join(filepath.Dir(out), "trend.png"))
	// Problems come in asynchronously: give a late console error a moment to arrive.
	time.Sleep(200 * time.Millisecond)
	for _, prob := range p.Problems() {
		t.Errorf("page problem: %s", prob)
	}
	p.logNotes(t)
}
