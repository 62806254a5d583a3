package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

func render(tb testing.TB, v RunView) string {
	tb.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, v); err != nil {
		tb.Fatal(err)
	}
	return buf.String()
}

// pageData returns the JSON the page carries, decoded.
func pageData(t *testing.T, page string) chartData {
	t.Helper()
	const open = `<script type="application/json" id="report-data">`
	i := strings.Index(page, open)
	j := strings.Index(page[i:], "</script>")
	if i < 0 || j < 0 {
		t.Fatalf("no data script in the page")
	}
	var d chartData
	if err := json.Unmarshal([]byte(page[i+len(open):i+j]), &d); err != nil {
		t.Fatalf("page data: %v", err)
	}
	return d
}

func TestWriteHTMLIsSelfContained(t *testing.T) {
	page := render(t, fixtureRun(t))
	// Nothing that loads anything: the page's own sources name no URL and import nothing, and no
	// element of the page loads a resource.
	for name, src := range map[string]string{"template": reportTmpl, "css": reportCSS, "js": reportJS} {
		// The SVG namespace is a name, which nothing fetches.
		src = strings.ReplaceAll(src, "'http://www.w3.org/2000/svg'", "")
		for _, bad := range []string{"://", "url(", "@import", "@font-face", "src=", "href=\"http"} {
			if strings.Contains(src, bad) {
				t.Errorf("the page's %s holds %q", name, bad)
			}
		}
	}
	if m := regexp.MustCompile(`<[a-zA-Z]+[^>]*\s((src|srcset|data|poster|action)=|href="[^#])`).FindAllString(page, -1); len(m) > 0 {
		t.Errorf("elements that load or link out: %q", m)
	}
	for _, bad := range []string{"<link", "<iframe", "<object", "<embed", "<img", "<base"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %s", bad)
		}
	}
	// The policy the page enforces on itself: no request at all.
	if !strings.Contains(page, `content="default-src &#39;none&#39;`) {
		t.Errorf("no Content-Security-Policy that forbids requests")
	}
	if n := strings.Count(page, "<script"); n != 2 {
		t.Errorf("%d script elements, want 2 (the data and the page's script)", n)
	}
	if n := strings.Count(page, "<style"); n != 1 {
		t.Errorf("%d style elements, want 1", n)
	}
	// The script puts strings into the page as text only.
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "fetch(", "XMLHttpRequest", "import("} {
		if strings.Contains(reportJS, bad) {
			t.Errorf("report.js uses %s", bad)
		}
	}
}

func TestWriteHTMLEscapesWhatTheServiceSaid(t *testing.T) {
	page := render(t, fixtureRun(t))
	for _, bad := range []string{"<script>alert", "<img src=x", "</script><script>", `onerror=alert(1)>`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
	// Escaped, the same strings are there to read.
	for _, want := range []string{"&lt;/script&gt;&lt;script&gt;alert(&#34;owned&#34;)", "500 body is not JSON: &lt;/script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	d := pageData(t, page)
	if !slices.ContainsFunc(d.Parts[0].Strings, func(s string) bool { return strings.Contains(s, "<img src=x") }) {
		t.Errorf("the dirty body is not in the chart data as a string: %q", d.Parts[0].Strings)
	}
}

func TestWriteHTMLShowsFailedSpecsFirstWithTheirFigures(t *testing.T) {
	v := fixtureRun(t)
	page := render(t, v)
	text := htmlText(page)
	failed, passed, skipped := strings.Index(text, "failed Selftest: the fail-fast mutant"), strings.Index(text, "passed Registration:"), strings.Index(text, "skipped Nightly")
	if failed < 0 || passed < 0 || skipped < 0 || !(failed < passed && passed < skipped) {
		t.Errorf("spec order: failed at %d, passed at %d, skipped at %d; want failed first, skipped last", failed, passed, skipped)
	}
	for _, want := range []string{
		"1 not passed", "2 passed", "1 not run",
		"invariants violated: 3 violations over 8 customers",
		"STAMPEDE_SEED=1 make selftest LABELS=&#39;fail-fast&#39;",
		"canary: caught 1 of 1 runs", "canary db-latency: detected 3 of 4 runs (75%)",
		"customers 8", "requests 25", "2xx 22", "clean errors 1", "unknown 1", "retries 1", "violations 3",
		"client-side 3 of 8 customers (38%)", "server-side 2 of 8 customers (25%)", "Coverage insufficient", "need 50%",
		"one-row 1", "one-credential 1", "clean-error 1", "valid-credential 0",
		"p50 ", "p99 ",
		"fault pod-kill", "target tokensvc-6d5f9c7b8-p9w7z", "fault window 30.0ms – 60.0ms",
		"success during the fault", "recovery 180.0ms after the fault ended", "offset 30.0ms, hold 30.0ms, seed 42",
		"seed 9223372036854788153", "times count from 2026-05-01T12:00:00.000Z",
		"Violations (3)", "duplicate-rows", "two-credentials", "100/1/0 200 tokensvc-6d5f9c7b8-p9w7z",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if n := strings.Count(page, "<tr data-v="); n != 3 {
		t.Errorf("%d violation rows, want 3", n)
	}
}

// htmlText is the page without its tags and with runs of white space made one.
func htmlText(page string) string {
	page = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>`).ReplaceAllString(page, " ")
	return strings.Join(strings.Fields(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(page, " ")), " ")
}

func TestChartDataOfAPart(t *testing.T) {
	v := fixtureRun(t)
	part := v.Specs[1].Parts[0] // the failing spec
	cp := buildChartPart(part)
	o := cp.Ops
	n := len(part.History)
	for name, l := range map[string]int{"dc": len(o.DCustomer), "seq": len(o.Seq), "att": len(o.Attempt), "ph": len(o.Phase),
		"dcall": len(o.DCall), "lat": len(o.Latency), "st": len(o.Status), "pod": len(o.Pod), "out": len(o.Outcome),
		"dtok": len(o.DToken), "cr": len(o.Created), "msg": len(o.Msg), "err": len(o.Err),
		"ss": len(o.ServerStart), "sd": len(o.ServerDur)} {
		if l != n {
			t.Errorf("column %s has %d values, want %d", name, l, n)
		}
	}
	// Ops are sorted by call; find each by id.
	byID := map[string]int{}
	var call int64
	customer, token := make([]int, n), make([]int, n)
	for i := range n {
		customer[i], token[i] = o.DCustomer[i], o.DToken[i]
		if i > 0 {
			customer[i] += customer[i-1]
			token[i] += token[i-1]
		}
	}
	for i := range token {
		token[i]-- // one more than the index, 0 for none
	}
	for i := range n {
		call += o.DCall[i]
		if o.DCall[i] < 0 && i > 0 {
			t.Errorf("op %d called before op %d", i, i-1)
		}
		id := strings.Join([]string{strconv.Itoa(cp.Customers.Index[customer[i]]), strconv.Itoa(o.Seq[i]), strconv.Itoa(o.Attempt[i])}, "/")
		byID[id] = i
	}
	want := map[string]int{"100/0/0": outBad2xx, "100/1/0": outBad2xx, "100/2/0": outBad2xx, "101/1/0": outBadError,
		"102/1/0": outUnknown, "103/1/0": outCleanError, "103/1/1": outOK, "104/0/0": outOK}
	for id, out := range want {
		i, ok := byID[id]
		if !ok {
			t.Errorf("no op %s", id)
			continue
		}
		if o.Outcome[i] != out {
			t.Errorf("op %s outcome %d, want %d", id, o.Outcome[i], out)
		}
	}
	// Tokens: fingerprints and decoded claims, never the token.
	first := byID["100/0/0"]
	tk := token[first]
	if tk < 0 || cp.Tokens.Sub[tk] != "0b6c8a52-0000-4000-8000-000000000100" || cp.Tokens.MID[tk] != "m-7-0" ||
		cp.Tokens.EXT[tk] != "c-7-100" || cp.Strings[cp.Tokens.Alg[tk]] != "EdDSA" || len(cp.Tokens.FP[tk]) != 8 || cp.Tokens.Iat[tk] == "" {
		t.Errorf("token of 100/0/0: %+v", cp.Tokens)
	}
	if token[byID["100/1/0"]] == tk {
		t.Errorf("the second token of customer 100 shares the first's entry")
	}
	if o.Created[first] != 1 || o.Created[byID["100/2/0"]] != 0 {
		t.Errorf("created flags %d and %d, want 1 and 0", o.Created[first], o.Created[byID["100/2/0"]])
	}
	b, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Token string }
	_ = json.Unmarshal([]byte(part.History[0].Body), &body)
	if body.Token == "" || bytes.Contains(b, []byte(body.Token)) || bytes.Contains(b, []byte(strings.Split(body.Token, ".")[2])) {
		t.Errorf("the chart data holds a whole token (or its signature)")
	}
	if got := cp.Strings[o.Msg[byID["103/1/0"]]]; got != "conflict: registration in progress" {
		t.Errorf("409's message %q", got)
	}
	if got := cp.Strings[o.Err[byID["102/1/0"]]]; !strings.Contains(got, "connection reset by peer") {
		t.Errorf("transport error %q", got)
	}
	if o.ServerDur[first] <= 0 || o.ServerDur[byID["102/1/0"]] != -1 {
		t.Errorf("server intervals: 100/0/0 lasted %d, 102/1/0 (no response) %d", o.ServerDur[first], o.ServerDur[byID["102/1/0"]])
	}
	if o.Msg[first] != 0 || o.Err[first] != 0 || cp.Strings[0] != "" {
		t.Errorf("a clean 2xx has message %d and error %d, want 0 (none)", o.Msg[first], o.Err[first])
	}
	if got := cp.Statuses[o.Status[byID["101/1/0"]]]; got != 500 {
		t.Errorf("status of 101/1/0: %d", got)
	}
	// Violations point at their requests; the customers with violations lead the timeline.
	if len(cp.Viol) != 3 || len(cp.Viol[1].Ops) != 3 || len(cp.Viol[2].Ops) != 1 || cp.Viol[2].Ops[0] != byID["101/1/0"] {
		t.Errorf("violations %+v", cp.Viol)
	}
	if len(cp.Rows) != 8 || cp.Customers.Index[cp.Rows[0]] != 100 || cp.Customers.Index[cp.Rows[1]] != 101 {
		t.Errorf("timeline rows %v", cp.Rows)
	}
}

func TestTimelineRowsSampleTheRest(t *testing.T) {
	viol := make([]int, 1000)
	for _, c := range []int{5, 500, 999} {
		viol[c] = 1
	}
	rows, note := timelineRows(viol, 100)
	if len(rows) != 100 || rows[0] != 5 || rows[1] != 500 || rows[2] != 999 {
		t.Fatalf("rows %v", rows[:5])
	}
	if rows[3] != 0 || rows[99] < 950 {
		t.Errorf("the sample does not span the run: %d .. %d", rows[3], rows[99])
	}
	if seen := map[int]bool{}; slices.ContainsFunc(rows, func(r int) bool { d := seen[r]; seen[r] = true; return d }) {
		t.Errorf("a customer is picked twice")
	}
	if !strings.Contains(note, "100 of 1000 customers: the 3 with violations, then an even sample of 97 of the other 997") {
		t.Errorf("note %q", note)
	}
	all, _ := timelineRows(viol[:10], 100)
	if len(all) != 10 || all[0] != 5 {
		t.Errorf("a small run shows every customer, violations first: %v", all)
	}
}

// TestWriteHTMLAt100k renders a run of 100,000 requests and reports the page's size and the
// time it took; it fails when the page outgrows what a browser opens comfortably.
func TestWriteHTMLAt100k(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	v := bigRun(t, 100_000)
	start := time.Now()
	page := render(t, v)
	took := time.Since(start)
	t.Logf("report.html at %d requests: %.1f MiB, rendered in %v", len(v.Specs[0].Parts[0].History), float64(len(page))/(1<<20), took.Round(time.Millisecond))
	if len(page) > 16<<20 {
		t.Errorf("report.html at 100k requests is %d bytes, over 16 MiB", len(page))
	}
	if dir := os.Getenv("ARTIFACTS"); dir != "" {
		_ = os.MkdirAll(filepath.Join(dir, "report-html"), 0o755)
		_ = os.WriteFile(filepath.Join(dir, "report-html", "size-100k.txt"), []byte(strconv.Itoa(len(page))+" bytes\n"), 0o644)
	}
}

func BenchmarkWriteHTML100k(b *testing.B) {
	v := bigRun(b, 100_000)
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		if err := WriteHTML(&buf, v); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "html-bytes")
}

// TestWriteHTMLShowsAuth: the violations-per-rule table lists auth like every rule, and a
// request sent with another tenant's key says whose.
func TestWriteHTMLShowsAuth(t *testing.T) {
	v := fixtureRun(t)
	part := &v.Specs[1].Parts[0]
	c := customerN(104)
	cross := history.Op{Customer: c, Seq: 0, Phase: history.PhaseBurst, KeyTenant: "m-7-3", Call: ms(30), Return: ms(33),
		Status: 200, Body: tokenBody(fixtureToken("x", c.Tenant, c.EntityKey, fixtureEpoch), "x", true), Pod: fixturePods[0]}
	part.History = append(part.History, cross)
	req := requestOf(cross)
	req.KeyTenant = cross.KeyTenant
	part.Result.Counts[check.RuleAuth] = 1
	part.Result.Refused = 2
	unknown := check.Request{ID: "104/5/0", Status: 403, Pod: fixturePods[1], KeyKind: history.KeyUnknown}
	part.Result.Violations = append(part.Result.Violations, check.Violation{Rule: check.RuleAuth, Customer: c,
		Pods: []string{cross.Pod}, Requests: []check.Request{req, unknown},
		Findings: []check.Finding{{Kind: check.KindAuthBreach, Request: cross.ID(), Line: check.AuthForeignForbidden,
			Detail: "a cross-tenant token was issued"}}})
	page := render(t, v)
	for _, want := range []string{`<tr class="bad"><th>auth</th><td>1</td></tr>`, "with m-7-3&#39;s key", "104/5/0 403 " + fixturePods[1] + " with an unknown key",
		check.AuthForeignForbidden, "refused their key"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Every rule has its row, auth among them, in a passing spec too.
	if !strings.Contains(page, `<tr><th>auth</th><td>0</td></tr>`) {
		t.Error("a spec without auth violations does not list auth")
	}
}
