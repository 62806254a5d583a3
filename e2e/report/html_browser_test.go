package report

// The browser test of report.html: headless Chromium opens rendered reports from file://, and
// the test fails on any console error, uncaught exception or request other than the page itself
// (data: URIs aside), checks that the timeline, the latency plot and the violations tables drew
// what the data holds, follows a violation to its requests, and saves screenshots. It needs a
// Chromium (chromium, chromium-browser, google-chrome on PATH, or STAMPEDE_CHROMIUM) and skips
// without one, unless STAMPEDE_REQUIRE_BROWSER=1 (as CI sets it), when it fails.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// findBrowser returns the Chromium to test with, or skips the test.
func findBrowser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STAMPEDE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium, chromium-browser or google-chrome on PATH (nor STAMPEDE_CHROMIUM): the browser test of report.html " +
		"needs one; on Debian: apt-get install -y chromium"
	if os.Getenv("STAMPEDE_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// screenshotDir is where the test leaves its pages and screenshots: $ARTIFACTS/report-html, or
// a temporary directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if a := os.Getenv("ARTIFACTS"); a != "" {
		dir := filepath.Join(a, "report-html")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// pageCounts is window.__report after the page drew.
type pageCounts struct {
	Ready         bool    `json:"ready"`
	Error         string  `json:"error"`
	TimelineRows  int     `json:"timelineRows"`
	TimelineBars  int     `json:"timelineBars"`
	LatencyPoints int     `json:"latencyPoints"`
	ViolationRows int     `json:"violationRows"`
	RenderMS      float64 `json:"renderMs"`
	ParseMS       float64 `json:"parseMs"`
	BuildMS       float64 `json:"buildMs"`
	TimelineMS    float64 `json:"timelineMs"`
	LatencyMS     float64 `json:"latencyMs"`
	DOMMS         float64 `json:"domInteractiveMs"`
	LoadMS        float64 `json:"loadMs"`
	Parts         []struct {
		TimelineRows  int       `json:"timelineRows"`
		TimelineBars  int       `json:"timelineBars"`
		TimelineDrawn int       `json:"timelineDrawn"`
		LatencyPoints int       `json:"latencyPoints"`
		ViolationRows int       `json:"violationRows"`
		View          []float64 `json:"view"`
	} `json:"parts"`
}

// browserPage is a page open in the browser, with what it did.
type browserPage struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string // console errors, exceptions, requests
	notes    []string // console output that is not an error
}

func (p *browserPage) problem(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

// logNotes logs what the page said that is not a problem, such as the browser's warnings.
func (p *browserPage) logNotes(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.notes {
		t.Logf("page said: %s", n)
	}
}

func (p *browserPage) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// openPage starts a browser and opens the file at path in it, recording every console
// message, exception and request. It returns once the page has loaded, and how long that took.
func openPage(t *testing.T, exe, path string) (*browserPage, time.Duration) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	pageURL := (&url.URL{Scheme: "file", Path: abs}).String()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-gpu", true),
	)
	if os.Geteuid() == 0 { // Chromium refuses to run as root with its sandbox
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	p := &browserPage{}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		// Runs in the tab's loop: record, return fast.
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				if a.Value != nil {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			line := fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				p.problem("%s", line)
			} else {
				p.mu.Lock()
				p.notes = append(p.notes, line)
				p.mu.Unlock()
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				desc += " " + d.Exception.Description
			}
			p.problem("exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, desc)
		case *log.EventEntryAdded:
			if e := ev.Entry; e.Level == log.EntryLevelError {
				p.problem("browser log (%s): %s %s", e.Source, e.Text, e.URL)
			} else {
				p.mu.Lock()
				p.notes = append(p.notes, fmt.Sprintf("browser log %s (%s): %s", e.Level, e.Source, e.Text))
				p.mu.Unlock()
			}
		case *network.EventRequestWillBeSent:
			if u := ev.Request.URL; u != pageURL && !strings.HasPrefix(u, "data:") {
				p.problem("request for %s", u)
			}
		case *network.EventLoadingFailed:
			p.problem("loading failed: %s %s", ev.ErrorText, ev.BlockedReason)
		}
	}))
	t.Cleanup(cancel)
	p.ctx = ctx
	// The first action starts the browser and opens the tab, for as long as ctx lives: it must
	// not run under a shorter context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	start := time.Now()
	tctx, cancelNav := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelNav()
	if err := chromedp.Do(tctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("open %s: %v", pageURL, err)
	}
	return p, time.Since(start)
}

// eval evaluates a JavaScript expression whose value is JSON-encodable and decodes it into T.
func eval[T any](t *testing.T, p *browserPage, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("JSON.stringify("+expr+")"))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("evaluate %s: %v (%s)", expr, err, s)
	}
	return v
}

// waitRendered waits until the page's script has drawn, and returns its counts.
func waitRendered(t *testing.T, p *browserPage) pageCounts {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c := eval[pageCounts](t, p, "window.__report || {}")
		if c.Error != "" {
			t.Fatalf("the page's script failed: %s", c.Error)
		}
		if c.Ready {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not finish drawing within a minute; problems: %q", p.Problems())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func screenshot(t *testing.T, p *browserPage, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// expectedCounts are what the page must draw of v: timeline rows and bars, latency points and
// violation rows, summed over its parts as the page sums them.
func expectedCounts(v RunView) (rows, bars, points, violations int) {
	_, data := buildPage(v)
	for _, cp := range data.Parts {
		shown := map[int]bool{}
		for _, r := range cp.Rows {
			shown[r] = true
		}
		rows += len(cp.Rows)
		c := 0
		for i, d := range cp.Ops.DCustomer {
			c += d
			if shown[c] {
				bars++
			}
			if cp.Ops.Latency[i] >= 0 {
				points++
			}
		}
		violations += len(cp.Viol)
	}
	return rows, bars, points, violations
}

func writePage(t *testing.T, dir, name string, v RunView) (string, int) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(f, v); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return f.Name(), int(st.Size())
}

func checkCounts(t *testing.T, got pageCounts, v RunView) {
	t.Helper()
	rows, bars, points, violations := expectedCounts(v)
	if got.TimelineRows != rows || got.TimelineBars != bars || got.LatencyPoints != points || got.ViolationRows != violations {
		t.Errorf("drawn: %d timeline rows, %d bars, %d latency points, %d violation rows; want %d, %d, %d, %d",
			got.TimelineRows, got.TimelineBars, got.LatencyPoints, got.ViolationRows, rows, bars, points, violations)
	}
	for i, p := range got.Parts {
		if p.TimelineRows > 0 && p.TimelineDrawn == 0 {
			t.Errorf("part %d: the timeline drew no bar in view", i)
		}
	}
}

func TestReportInBrowser(t *testing.T) {
	exe := findBrowser(t)
	dir := screenshotDir(t)
	v := fixtureRun(t)
	path, size := writePage(t, dir, "report-fixture.html", v)
	p, took := openPage(t, exe, path)
	got := waitRendered(t, p)
	screenshot(t, p, filepath.Join(dir, "report-fixture-overview.png"))
	t.Logf("fixture report: %d bytes, loaded in %v, drawn %.0f ms after navigation start (script %.0f ms)", size, took.Round(time.Millisecond), got.LoadMS, got.RenderMS)
	checkCounts(t, got, v)

	// A violation's row leads to its requests: they are highlighted on the timeline, and the
	// first one's details are shown, with its token's fingerprint and claims.
	focused := eval[struct {
		Requests        int    `json:"requests"`
		HighlightedBars int    `json:"highlightedBars"`
		Selected        string `json:"selected"`
	}](t, p, `(document.querySelector('tr[data-v="1"]').click(), window.__report.focused)`)
	if focused.Requests != 3 || focused.HighlightedBars != 3 || !strings.HasPrefix(focused.Selected, "100/") {
		t.Errorf("after a click on the two-credentials violation: %+v; want its 3 requests highlighted, one of customer 100's selected", focused)
	}
	focusedSpan := eval[[]float64](t, p, `window.__report.parts[0].view`)
	detail := eval[string](t, p, `document.querySelector('.part .selected-op').textContent`)
	for _, want := range []string{focused.Selected, "tokensvc-6d5f9c7b8-", "sub 0b6c8a52-0000-4000-8000-000000000100", "mid m-7-0", "ext c-7-100", "alg EdDSA", "created"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the selected request's details lack %q: %s", want, detail)
		}
	}
	// Hovering over a bar shows its request.
	tip := eval[string](t, p, `(function () {
		var at = window.__report.barPoint(0, "100/1/0");
		if (!at) return "no bar for 100/1/0 in view";
		var c = document.elementFromPoint(at.x, at.y);
		c.dispatchEvent(new MouseEvent('mousemove', {clientX: at.x, clientY: at.y, bubbles: true}));
		var tip = document.getElementById('tooltip');
		return tip.hidden ? "no tooltip" : tip.textContent;
	})()`)
	for _, want := range []string{"100/1/0", "status200", "sub 0b6c8a52-0000-4000-8000-999999999999", "createdtrue"} {
		if !strings.Contains(tip, want) {
			t.Errorf("the tooltip of 100/1/0 lacks %q: %s", want, tip)
		}
	}
	// Dragging across the latency plot zooms both charts into the span.
	view := eval[[]float64](t, p, `(function () {
		var c = document.querySelector('.part .lat-canvas'), r = c.getBoundingClientRect(), y = r.top + r.height / 2;
		var a = r.left + 200 + 0.25 * (r.width - 210), b = r.left + 200 + 0.5 * (r.width - 210);
		c.dispatchEvent(new MouseEvent('mousedown', {clientX: a, clientY: y, button: 0, bubbles: true}));
		window.dispatchEvent(new MouseEvent('mousemove', {clientX: b, clientY: y, bubbles: true}));
		window.dispatchEvent(new MouseEvent('mouseup', {clientX: b, clientY: y, bubbles: true}));
		return window.__report.parts[0].view;
	})()`)
	if len(view) != 2 || view[1] <= view[0] || view[1]-view[0] > 0.3*(focusedSpan[1]-focusedSpan[0]) {
		t.Errorf("after a drag over a quarter of the latency plot the view is %v, was %v", view, focusedSpan)
	}
	// The markup the service answered is text on the page, and ran nowhere.
	if n := eval[int](t, p, `document.querySelectorAll('img, iframe, object, embed').length + document.scripts.length - 2`); n != 0 {
		t.Errorf("the page has %d elements that untrusted strings made", n)
	}
	if alerted := eval[bool](t, p, `typeof window.owned !== 'undefined'`); alerted {
		t.Errorf("a script from the data ran")
	}
	screenshot(t, p, filepath.Join(dir, "report-fixture-violation.png"))
	p.logNotes(t)
	if probs := p.Problems(); len(probs) > 0 {
		t.Errorf("the page made %d problems:\n%s", len(probs), strings.Join(probs, "\n"))
	}
}

// TestReportInBrowserAt100k opens the report of a run of 100,000 requests and measures its
// load time.
func TestReportInBrowserAt100k(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	exe := findBrowser(t)
	dir := screenshotDir(t)
	v := bigRun(t, 100_000)
	path, size := writePage(t, dir, "report-100k.html", v)
	p, took := openPage(t, exe, path)
	got := waitRendered(t, p)
	t.Logf("report at 100,000 requests: %.1f MiB, loaded in %v, drawn %.0f ms after navigation start "+
		"(document parsed at %.0f ms; script %.0f ms: JSON.parse %.0f ms, columns %.0f ms, timeline %.0f ms, latency plot %.0f ms)",
		float64(size)/(1<<20), took.Round(time.Millisecond), got.LoadMS, got.DOMMS, got.RenderMS, got.ParseMS, got.BuildMS, got.TimelineMS, got.LatencyMS)
	checkCounts(t, got, v)
	screenshot(t, p, filepath.Join(dir, "report-100k-overview.png"))
	// Zooming and following a violation stay quick.
	ms := eval[float64](t, p, `(function () { var t = performance.now(); document.querySelector('tr[data-v="3"]').click(); return performance.now() - t; })()`)
	t.Logf("following a violation at 100,000 requests: %.0f ms", ms)
	if ms > 2000 {
		t.Errorf("following a violation took %.0f ms", ms)
	}
	screenshot(t, p, filepath.Join(dir, "report-100k-violation.png"))
	p.logNotes(t)
	if probs := p.Problems(); len(probs) > 0 {
		t.Errorf("the page made %d problems:\n%s", len(probs), strings.Join(probs, "\n"))
	}
	if dir := os.Getenv("ARTIFACTS"); dir != "" {
		line := fmt.Sprintf("report.html at 100000 requests: %d bytes, loaded in %v, drawn %.0f ms after navigation start\n", size, took.Round(time.Millisecond), got.LoadMS)
		_ = os.WriteFile(filepath.Join(dir, "report-html", "load-100k.txt"), []byte(line), 0o644)
	}
}

// TestBrowserHarnessSeesProblems makes sure the checks above can fail: a page that logs an
// error, throws and loads a neighbour file must show all three.
func TestBrowserHarnessSeesProblems(t *testing.T) {
	exe := findBrowser(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.html")
	page := `<!DOCTYPE html><html><body><img src="missing.png"><script>console.error("broken"); throw new Error("thrown");</script></body></html>`
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := openPage(t, exe, path)
	deadline := time.Now().Add(20 * time.Second)
	var probs []string
	for time.Now().Before(deadline) {
		probs = p.Problems()
		all := strings.Join(probs, "\n")
		if strings.Contains(all, "broken") && strings.Contains(all, "thrown") && strings.Contains(all, "missing.png") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("the harness missed a console error, an exception or a request; it saw:\n%s", strings.Join(probs, "\n"))
}

// closeupState is what the race close-up of a part drew (window.__report.parts[i].closeup).
type closeupState struct {
	Customer      string   `json:"customer"`
	Requests      int      `json:"requests"`
	Rows          int      `json:"rows"`
	Credentials   int      `json:"credentials"`
	EmptySubjects []string `json:"emptySubjects"`
	Lanes         []string `json:"lanes"`
	Bars          int      `json:"bars"`
	TableRows     int      `json:"tableRows"`
	RowMarks      int      `json:"rowMarks"`
}

// TestCloseUpInBrowser opens the close-up of a legacy canary run: pod B answered 200 with an
// empty subject after pod A created the row. The close-up must draw both pods' lanes, the
// empty-subject answer marked and named in words, the row's creation, and a table with the
// same requests; the keyboard reaches it, and a click on the timeline shows another customer.
func TestCloseUpInBrowser(t *testing.T) {
	exe := findBrowser(t)
	dir := screenshotDir(t)
	v := canaryRun(t)
	path, _ := writePage(t, dir, "report-canary.html", v)
	p, _ := openPage(t, exe, path)
	got := waitRendered(t, p)
	checkCounts(t, got, v)
	// The timeline opens with each customer's burst aligned on its first request, over what
	// most bursts took (a few ms), not the run's 0.5 s; unticked, it shows the run's clock.
	aligned := eval[struct {
		On, Off         bool
		OnSpan, OffSpan float64
	}](t, p, `(function () {
		var st = window.__report.parts[0], box = document.querySelector('.part .timeline input[type=checkbox]');
		var r = {On: st.aligned, OnSpan: st.timelineView[1] - st.timelineView[0]};
		box.click();
		r.Off = !st.aligned;
		r.OffSpan = st.timelineView[1] - st.timelineView[0];
		box.click();
		return r;
	})()`)
	if !aligned.On || aligned.OnSpan > 20_000 || !aligned.Off || aligned.OffSpan < 250_000 {
		t.Errorf("the timeline's alignment: %+v; want it opened aligned over less than 20 ms, and unticked over the run's 0.29 s", aligned)
	}
	cu := eval[closeupState](t, p, `window.__report.parts[0].closeup`)
	if !strings.HasPrefix(cu.Customer, "#300 ") || cu.Requests != 4 || cu.Rows != 1 || cu.Credentials != 2 || cu.RowMarks != 1 {
		t.Errorf("the close-up opened on %+v; want customer 300's 4 requests, its 1 row and 2 credentials", cu)
	}
	if !slices.Equal(cu.Lanes, canaryPods) {
		t.Errorf("lanes %q, want pods A and B %q", cu.Lanes, canaryPods)
	}
	if !slices.Equal(cu.EmptySubjects, []string{"300/1/0"}) {
		t.Errorf("empty subjects %q, want 300/1/0", cu.EmptySubjects)
	}
	// The drawing: the answer with the empty subject is marked, on pod B's lane, and says so.
	drawn := eval[struct {
		Marked, Aria, Text, Lane string
		Bars                     []string
	}](t, p, `(function () {
		var box = document.querySelector('.closeup'), g = box.querySelector('svg .cu-empty-subject');
		var bars = Array.prototype.map.call(box.querySelectorAll('svg .cu-req'), function (e) { return e.getAttribute('data-op'); });
		return {Marked: g ? g.getAttribute('data-op') : '', Aria: g ? g.getAttribute('aria-label') : '', Text: g ? g.textContent : '',
			Lane: box.querySelector('svg .cu-lane[data-pod="`+canaryPods[1]+`"]') ? 'B' : '', Bars: bars.sort()};
	})()`)
	if drawn.Marked != "300/1/0" || drawn.Lane != "B" || !strings.Contains(drawn.Text, "∅ EMPTY SUBJECT") ||
		!strings.Contains(drawn.Aria, "pod p9w7z") || !strings.Contains(drawn.Aria, "EMPTY SUBJECT: it names nobody") {
		t.Errorf("the empty-subject answer as drawn: %+v", drawn)
	}
	story := eval[string](t, p, `document.querySelector('.closeup .story').textContent`)
	for _, want := range []string{"300/1/0 on pod p9w7z answered 200 with a credential", "whose subject is empty: it names no row, nobody",
		"Its handler ran from +500µs to +3.20ms, while row 1 (0b6c8a52) was created at +2.00ms",
		"row 1 (0b6c8a52) created at +2.00ms by 300/0/0 on pod k2x4q", "2 different credentials", "empty-subject 300/1/0: empty subject"} {
		if !strings.Contains(story, want) {
			t.Errorf("the close-up's words lack %q: %s", want, story)
		}
	}
	// The table view holds the same requests, with the empty subject in words.
	table := eval[struct {
		IDs   []string
		Alarm string
		Scope int
		Cap   string
	}](t, p, `(function () {
		var t = document.querySelector('.closeup table.cu-requests');
		var ids = Array.prototype.map.call(t.querySelectorAll('tbody th[scope=row]'), function (e) { return e.textContent; });
		var alarm = t.querySelector('tbody tr.alarm');
		return {IDs: ids.sort(), Alarm: alarm ? alarm.textContent : '', Scope: t.querySelectorAll('thead th[scope=col]').length, Cap: t.caption ? t.caption.textContent : ''};
	})()`)
	if !slices.Equal(table.IDs, drawn.Bars) || len(table.IDs) != 4 {
		t.Errorf("the table's requests %q, the drawing's %q", table.IDs, drawn.Bars)
	}
	if !strings.Contains(table.Alarm, "300/1/0") || !strings.Contains(table.Alarm, "(empty: names nobody)") || table.Scope != 11 || table.Cap == "" {
		t.Errorf("the table view: %+v", table)
	}
	if n := eval[int](t, p, `document.querySelectorAll('.closeup svg[aria-label] .cu-req[tabindex="0"][aria-label]').length`); n != 4 {
		t.Errorf("%d requests of the drawing reach the keyboard with a label, want 4", n)
	}
	elementShot(t, p, ".closeup", filepath.Join(dir, "closeup-canary.png"))
	// Keyboard: Enter on a request of the drawing selects it, and the focus stays on it.
	sel := eval[string](t, p, `(function () {
		var g = document.querySelector('.closeup .cu-req[data-op="300/1/0"]');
		g.focus();
		g.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
		return (document.activeElement && document.activeElement.getAttribute('data-op')) + ' ' + document.querySelector('.part .selected-op').textContent;
	})()`)
	if !strings.HasPrefix(sel, "300/1/0 ") || !strings.Contains(sel, "sub \"\"") {
		t.Errorf("after Enter on 300/1/0: %s", sel)
	}
	// A click on another customer's bar in the timeline shows that customer here.
	other := eval[string](t, p, `(function () {
		document.querySelector('.part .timeline').scrollIntoView();
		var at = window.__report.barPoint(0, "310/0/0");
		if (!at) return "no bar for 310/0/0 in view";
		var c = document.elementFromPoint(at.x, at.y);
		c.dispatchEvent(new MouseEvent('mousedown', {clientX: at.x, clientY: at.y, button: 0, bubbles: true}));
		window.dispatchEvent(new MouseEvent('mouseup', {clientX: at.x, clientY: at.y, bubbles: true}));
		return window.__report.parts[0].closeup.customer;
	})()`)
	if !strings.HasPrefix(other, "#310 ") {
		t.Errorf("after a click on 310/0/0 the close-up shows %q", other)
	}
	// The keyboard reaches any customer by its number.
	typed := eval[string](t, p, `(function () {
		var in_ = document.querySelector('.closeup input[aria-label^="show customer number"]');
		in_.value = '#313';
		in_.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
		return window.__report.parts[0].closeup.customer;
	})()`)
	if !strings.HasPrefix(typed, "#313 ") {
		t.Errorf("after typing #313 the close-up shows %q", typed)
	}
	p.logNotes(t)
	if probs := p.Problems(); len(probs) > 0 {
		t.Errorf("the page made %d problems:\n%s", len(probs), strings.Join(probs, "\n"))
	}
}

// elementShot saves a screenshot of the element sel (a CSS selector), whole even where it
// reaches beyond the window.
func elementShot(t *testing.T, p *browserPage, sel, path string) {
	t.Helper()
	box := eval[struct{ X, Y, W, H float64 }](t, p, `(function () {
		var r = document.querySelector(`+strconv.Quote(sel)+`).getBoundingClientRect();
		return {X: r.left + window.scrollX, Y: r.top + window.scrollY, W: r.width, H: r.height};
	})()`)
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.Action[[]byte](func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, tg, page.CaptureScreenshot, page.CaptureScreenshotParams{
			CaptureBeyondViewport: ptrTo(true), Format: page.CaptureScreenshotFormatPng,
			Clip: &page.Viewport{X: box.X, Y: box.Y, Width: box.W, Height: box.H, Scale: 1},
		})
		if err != nil {
			return nil, err
		}
		return r.Data, nil
	}))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", sel, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func ptrTo[T any](v T) *T { return &v }

// TestCloseUpOfSavedReport opens a report.html already rendered, such as a real run's, at
// $STAMPEDE_REPORT_HTML (a path, with a #<part>-closeup-c<customer> link when wanted), checks
// that it draws without a problem, and saves a screenshot of the close-up the link opens and the
// page's load time: the evidence a change to the close-up shows on a real run. Skipped unset.
func TestCloseUpOfSavedReport(t *testing.T) {
	target := os.Getenv("STAMPEDE_REPORT_HTML")
	if target == "" {
		t.Skip("STAMPEDE_REPORT_HTML unset: no saved report to open")
	}
	exe := findBrowser(t)
	path, hash, _ := strings.Cut(target, "#")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	p, took := openPage(t, exe, path)
	got := waitRendered(t, p)
	t.Logf("%s: %.1f MiB, loaded in %v, drawn %.0f ms after navigation start (script %.0f ms: JSON.parse %.0f ms, "+
		"parts %.0f ms, timelines %.0f ms, latency plots %.0f ms)", path, float64(st.Size())/(1<<20), took.Round(time.Millisecond),
		got.LoadMS, got.RenderMS, got.ParseMS, got.BuildMS, got.TimelineMS, got.LatencyMS)
	sel := ".closeup"
	if hash != "" {
		// The page was opened without the link: follow it now, as a click on it would.
		eval[bool](t, p, `(location.hash = `+strconv.Quote("#"+hash)+`, true)`)
		id, _, _ := strings.Cut(hash, "-closeup")
		sel = "#" + id + "-closeup"
		eval[bool](t, p, `(window.dispatchEvent(new HashChangeEvent('hashchange')), true)`)
	}
	dir := cmp.Or(os.Getenv("ARTIFACTS"), t.TempDir())
	elementShot(t, p, sel, filepath.Join(dir, "closeup-saved.png"))
	t.Logf("close-up: %s", eval[string](t, p, `document.querySelector(`+strconv.Quote(sel)+` + ' .story').textContent`))
	if probs := p.Problems(); len(probs) > 0 {
		t.Errorf("the page made %d problems:\n%s", len(probs), strings.Join(probs, "\n"))
	}
}
