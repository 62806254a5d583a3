package report

// report.html: one self-contained page per run. The page's text (verdicts, figures, failure
// messages, the violations tables) is rendered here with html/template, so it reads without
// JavaScript and every untrusted string is escaped; the charts (race timeline, latency by pod)
// are drawn on canvases by the embedded script from the data in the page (chartdata.go), which
// the script only ever puts into the page as text. Nothing is fetched: the style and script are
// embedded, fonts are the system's, and the page's Content-Security-Policy allows no request
// at all.

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

// MaxViolationRows bounds the rows of one part's violations table in the page; the rest are
// counted, and violations.txt has them all.
const MaxViolationRows = 500

var (
	//go:embed assets/report.css
	reportCSS string
	//go:embed assets/report.js
	reportJS string
	//go:embed assets/report.html.tmpl
	reportTmpl string

	pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
		"stateClass": func(s string) string {
			return "state-" + stateClassOf(s)
		},
		"verdictClass": func(v check.Verdict) string { return "verdict-" + verdictClassOf(v) },
	}).Parse(reportTmpl))

	// The page allows its own style and script, by hash, and nothing else: no request of any
	// kind, whatever a string in the data might hold.
	csp = "default-src 'none'; img-src data:; style-src " + cspHash(reportCSS) + "; script-src " + cspHash(reportJS) +
		"; base-uri 'none'; form-action 'none'"
)

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// WriteHTML writes v as one self-contained HTML page: failed specs first, and for each its
// verdict, figures, repro line and notes, and for each judged part its race timeline, latency by
// pod over time, fault windows and violations table. It only displays: nothing is verified or
// re-judged.
func WriteHTML(w io.Writer, v RunView) error {
	page, data := buildPage(v)
	js, err := json.Marshal(data) // escapes <, > and & (so no "</script>"), and U+2028/9
	if err != nil {
		return fmt.Errorf("report.html: encode chart data: %w", err)
	}
	page.Data = template.JS(js)
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("report.html: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("report.html: %w", err)
	}
	return nil
}

// pageView is what the template renders.
type pageView struct {
	Title     string
	RunID     string
	Seed      string
	Target    *TargetRef
	Generated string
	Summary   string
	Specs     []specPage
	Failed    int
	Passed    int
	Other     int
	CSP       string
	CSS       template.CSS
	JS        template.JS
	Data      template.JS
}

type specPage struct {
	Anchor  string
	Name    string
	State   string
	Failure string
	Repro   string
	Dir     string
	Runtime string
	Notes   []string
	Parts   []partPage
}

type partPage struct {
	Index  int // into chartData.Parts
	Anchor string
	Name   string
	// Base is the time the part's times count from, UTC.
	Base    string
	Result  check.Result
	Figures []figure
	Rules   []ruleCount
	Cov     coverageView
	Chaos   []figure
	// ChaosRaw is chaos.json's remaining figures, indented JSON.
	ChaosRaw   string
	Events     []eventView
	Violations []violationRow
	// MoreViolations counts the violations past MaxViolationRows.
	MoreViolations int
}

type figure struct {
	Label, Value string
	// Class marks a figure that is bad news ("bad") or good ("good").
	Class string
}

type ruleCount struct {
	Rule  check.Rule
	Count int
}

type coverageView struct {
	Client, Server string
	Sufficient     bool
	Reasons        []string
	Line           string
	UnderFault     int
}

type eventView struct {
	Kind, Name, Target, Detail, Window string
}

type violationRow struct {
	Index    int
	Rule     check.Rule
	Customer string
	Requests []requestRef
	Pods     string
	Findings []findingView
}

type requestRef struct {
	ID, Label string
}

type findingView struct {
	Kind, Line, Request, Detail string
}

// specRank orders specs for the page: those that did not pass first, then passed, then those
// that did not run.
func specRank(state string) int {
	switch stateClassOf(state) {
	case "passed":
		return 1
	case "skipped":
		return 2
	default:
		return 0
	}
}

func stateClassOf(state string) string {
	switch strings.ToLower(state) {
	case "passed":
		return "passed"
	case "skipped", "pending", "":
		return "skipped"
	case "failed", "panicked", "timedout", "aborted", "interrupted":
		return "failed"
	default:
		return "other"
	}
}

func verdictClassOf(v check.Verdict) string {
	switch v {
	case check.VerdictPass:
		return "pass"
	case check.VerdictFail:
		return "fail"
	default:
		return "inconclusive"
	}
}

func buildPage(v RunView) (pageView, chartData) {
	p := pageView{
		Title: cmp.Or(v.Title, "stampede run "+v.RunID), RunID: v.RunID, Target: v.Target, Summary: v.Summary,
		Seed: strconv.FormatUint(v.Seed, 10), CSP: csp, CSS: template.CSS(reportCSS), JS: template.JS(reportJS),
	}
	if !v.Generated.IsZero() {
		p.Generated = v.Generated.UTC().Format(time.RFC3339)
	}
	specs := slices.Clone(v.Specs)
	slices.SortStableFunc(specs, func(a, b SpecView) int { return specRank(a.State) - specRank(b.State) })
	var data chartData
	if v.Target != nil {
		data.Target = v.Target.Name
	}
	for i, s := range specs {
		switch specRank(s.State) {
		case 0:
			p.Failed++
		case 1:
			p.Passed++
		default:
			p.Other++
		}
		sp := specPage{
			Anchor: "spec-" + strconv.Itoa(i+1), Name: s.Name, State: cmp.Or(s.State, "unknown"), Failure: s.Failure,
			Repro: s.Repro, Dir: s.Dir, Notes: s.Notes,
		}
		if s.Runtime > 0 {
			sp.Runtime = s.Runtime.Round(time.Millisecond).String()
		}
		for j, part := range s.Parts {
			pp := buildPart(part)
			pp.Index = len(data.Parts)
			pp.Anchor = sp.Anchor + "-part-" + strconv.Itoa(j+1)
			data.Parts = append(data.Parts, buildChartPart(part))
			sp.Parts = append(sp.Parts, pp)
		}
		p.Specs = append(p.Specs, sp)
	}
	return p, data
}

func buildPart(part PartView) partPage {
	res := part.Result
	// The target's words, in the figures, the coverage and the violations' column.
	res.Names = res.Names.WithDefaults()
	pp := partPage{Name: part.Name, Result: res}
	if !part.Base.IsZero() {
		pp.Base = part.Base.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	retries, returned := 0, answeredLatencies(part.History)
	pods := map[string]bool{}
	for _, op := range part.History {
		if op.Phase == history.PhaseRetry {
			retries++
		}
		if op.Pod != "" {
			pods[op.Pod] = true
		}
	}
	bad := func(n int) string {
		if n > 0 {
			return "bad"
		}
		return ""
	}
	requests := res.Requests
	if requests == 0 {
		requests = len(part.History)
	}
	pp.Figures = []figure{
		{res.Names.Entities, strconv.Itoa(res.Customers), ""},
		{"requests", strconv.Itoa(requests), ""},
		{"2xx", strconv.Itoa(res.Successes), ""},
		{"clean errors", strconv.Itoa(res.CleanErrors), ""},
		{"unknown", strconv.Itoa(res.Unknown), ""},
		{"retries", strconv.Itoa(retries), ""},
		{"violations", strconv.Itoa(len(res.Violations)), bad(len(res.Violations))},
		{"pods", strconv.Itoa(len(pods)), ""},
		{"p50", fmtDur(percentile(returned, 0.50)), ""},
		{"p99", fmtDur(percentile(returned, 0.99)), ""},
		{"max", fmtDur(percentile(returned, 1)), ""},
	}
	if res.EmptySubjects > 0 {
		pp.Figures = append(pp.Figures, figure{"empty subjects", strconv.Itoa(res.EmptySubjects), "bad"})
	}
	if res.DuplicateCustomers > 0 {
		pp.Figures = append(pp.Figures, figure{"duplicate " + res.Names.Entities, strconv.Itoa(res.DuplicateCustomers), "bad"})
	}
	if res.Refused > 0 {
		pp.Figures = append(pp.Figures, figure{"refused their key", strconv.Itoa(res.Refused), ""})
	}
	for _, r := range res.AppliedRules() {
		pp.Rules = append(pp.Rules, ruleCount{r, res.Counts[r]})
	}
	for r, n := range res.Counts { // a rule this build does not know, or not listed as applied, still shows
		if !slices.Contains(res.AppliedRules(), r) {
			pp.Rules = append(pp.Rules, ruleCount{r, n})
		}
	}
	c := res.Coverage
	pp.Cov = coverageView{
		Client:     fmt.Sprintf("%d of %d %s (%.0f%%)", c.Covered, c.Customers, res.Names.Entities, 100*c.Fraction),
		Server:     "no data",
		Sufficient: c.Sufficient, Reasons: c.Reasons, Line: c.Describe(res.Names), UnderFault: c.UnderFault,
	}
	if c.ServerData {
		pp.Cov.Server = fmt.Sprintf("%d of %d %s (%.0f%%)", c.ServerCovered, c.Customers, res.Names.Entities, 100*c.ServerFraction)
	}
	for _, e := range part.Events {
		pp.Events = append(pp.Events, eventView{Kind: e.Kind, Name: e.Name, Target: e.Target, Detail: e.Detail, Window: eventWindow(e)})
	}
	if part.Chaos != nil {
		pp.Chaos, pp.ChaosRaw = chaosFigures(part.Chaos)
	}
	for i, v := range res.Violations {
		if i == MaxViolationRows {
			pp.MoreViolations = len(res.Violations) - i
			break
		}
		row := violationRow{Index: i, Rule: v.Rule, Customer: v.Customer.String(), Pods: strings.Join(v.Pods, ", ")}
		for _, q := range v.Requests {
			label := q.ID + " "
			switch {
			case q.Error != "":
				label += "error"
			default:
				label += strconv.Itoa(q.Status)
			}
			if q.Pod != "" {
				label += " " + q.Pod
			}
			// Only a key other than the customer's own is news: histories from before API
			// keys name none, and own keys are the rule.
			switch {
			case q.KeyTenant != "" && q.KeyTenant != v.Customer.Tenant:
				label += " with " + q.KeyTenant + "'s key"
			case q.KeyKind == history.KeyMalformed:
				label += " with a malformed key"
			case q.KeyKind == history.KeyUnknown:
				label += " with an unknown key"
			}
			row.Requests = append(row.Requests, requestRef{ID: q.ID, Label: label})
		}
		if len(v.Findings) > 0 {
			for _, f := range v.Findings {
				row.Findings = append(row.Findings, findingView{Kind: string(f.Kind), Line: f.Line, Request: f.Request, Detail: f.Detail})
			}
		} else {
			for _, d := range v.Details {
				row.Findings = append(row.Findings, findingView{Detail: d})
			}
		}
		pp.Violations = append(pp.Violations, row)
	}
	return pp
}

func eventWindow(e history.Event) string {
	end := "not ended"
	if e.Ended() {
		end = fmtDur(e.End)
	}
	return fmt.Sprintf("%s – %s", fmtDur(e.Start), end)
}

// percentile is the q-quantile of sorted durations (nearest rank), 0 for none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// fmtDur formats d for a person: 3 significant digits at most.
func fmtDur(d time.Duration) string {
	switch a := max(d, -d); {
	case a == 0:
		return "0"
	case a < time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + "µs"
	case a < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms"
	case a < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + "ms"
	case a < time.Minute:
		return strconv.FormatFloat(float64(d)/1e9, 'f', 2, 64) + "s"
	default:
		return d.Round(time.Second).String()
	}
}

// chaosFigures reads a chaos run's figures (chaos.json, as written by the framework, or the same
// values before encoding) into the lines the page shows, and the rest as indented JSON.
func chaosFigures(m map[string]any) ([]figure, string) {
	b, err := json.Marshal(m)
	if err != nil {
		return []figure{{"figures", "unreadable: " + err.Error(), "bad"}}, ""
	}
	var c struct {
		Fault string `json:"fault"`
		Plan  *struct {
			Fault  string      `json:"fault"`
			Seed   json.Number `json:"seed"`
			Offset int64       `json:"offset_ns"`
			Hold   int64       `json:"hold_ns"`
		} `json:"plan"`
		Event  *history.Event `json:"event"`
		During *struct {
			Requests  int `json:"requests"`
			Successes int `json:"successes"`
			Errors    int `json:"errors"`
			Unknown   int `json:"unknown"`
		} `json:"during"`
		DuringRatio  *float64 `json:"during_ratio"`
		Recovered    *bool    `json:"recovered"`
		RecoveryNS   *int64   `json:"recovery_ns"`
		Recovery     string   `json:"recovery"`
		Rounds       *int     `json:"rounds"`
		InjectError  string   `json:"inject_error"`
		RecoverError string   `json:"recover_error"`
	}
	var figs []figure
	if err := json.Unmarshal(b, &c); err != nil {
		figs = append(figs, figure{"figures", "unreadable: " + err.Error(), "bad"})
	}
	fault := c.Fault
	if fault == "" && c.Plan != nil {
		fault = c.Plan.Fault
	}
	if fault != "" {
		figs = append(figs, figure{"fault", fault, ""})
	}
	if c.Event != nil {
		if c.Event.Target != "" {
			figs = append(figs, figure{"target", c.Event.Target, ""})
		}
		figs = append(figs, figure{"fault window", eventWindow(*c.Event), ""})
		if c.Event.Detail != "" {
			figs = append(figs, figure{"detail", c.Event.Detail, ""})
		}
	}
	if c.DuringRatio != nil || c.During != nil {
		v := ""
		if c.DuringRatio != nil {
			v = strconv.FormatFloat(100**c.DuringRatio, 'f', 1, 64) + "%"
		}
		if c.During != nil {
			v += fmt.Sprintf(" (%d of %d 2xx, %d errors, %d unknown)", c.During.Successes, c.During.Requests, c.During.Errors, c.During.Unknown)
		}
		class := "good"
		if c.DuringRatio != nil && *c.DuringRatio < 1 {
			class = ""
		}
		figs = append(figs, figure{"success during the fault", strings.TrimSpace(v), class})
	}
	switch {
	case c.Recovered != nil && *c.Recovered:
		rec := c.Recovery
		if c.RecoveryNS != nil {
			rec = fmtDur(time.Duration(*c.RecoveryNS))
		}
		figs = append(figs, figure{"recovery", cmp.Or(rec, "recovered") + " after the fault ended", "good"})
	case c.Recovered != nil:
		figs = append(figs, figure{"recovery", "not recovered within the bound", "bad"})
	}
	if c.Plan != nil {
		figs = append(figs, figure{"plan", fmt.Sprintf("offset %s, hold %s, seed %s",
			fmtDur(time.Duration(c.Plan.Offset)), fmtDur(time.Duration(c.Plan.Hold)), c.Plan.Seed), ""})
	}
	if c.Rounds != nil {
		figs = append(figs, figure{"rounds", strconv.Itoa(*c.Rounds), ""})
	}
	if c.InjectError != "" {
		figs = append(figs, figure{"inject error", c.InjectError, "bad"})
	}
	if c.RecoverError != "" {
		figs = append(figs, figure{"recover error", c.RecoverError, "bad"})
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return figs, ""
	}
	return figs, string(raw)
}
