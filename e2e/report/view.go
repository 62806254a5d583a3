package report

import (
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

// RunView is what report.html shows of one run of the suite: its specs, failed first, and for
// each the judged traffic runs it made. It is built from a run's artifacts (LoadRunView) or, at
// the end of a live run, from the same artifacts just written; nothing in it is only in memory.
type RunView struct {
	// Title heads the page, such as "stampede e2e run 0f055d".
	Title string `json:"title"`
	RunID string `json:"run_id"`
	Seed  uint64 `json:"seed"`
	// Target is the target the run judged; nil for a run from before target files.
	Target *TargetRef `json:"target,omitempty"`
	// Generated is when the page was rendered.
	Generated time.Time `json:"generated"`
	// Summary is the run's one-paragraph summary (specs run, failed), plain text.
	Summary string     `json:"summary"`
	Specs   []SpecView `json:"specs"`
}

// SpecView is one spec of the run.
type SpecView struct {
	// Name is the spec's full text.
	Name string `json:"name"`
	// State is Ginkgo's: passed, failed, skipped, interrupted, ...
	State string `json:"state"`
	// Failure is the failure message of a spec that did not pass.
	Failure string `json:"failure,omitempty"`
	// Repro replays the spec.
	Repro string `json:"repro,omitempty"`
	// Dir is the spec's artifacts directory, relative to the run's.
	Dir     string        `json:"dir"`
	Runtime time.Duration `json:"runtime_ns"`
	// Notes are the spec's figures that are not a judged run: a canary's detection line, a
	// chaos run's success ratio and recovery time, the self-test's row.
	Notes []string `json:"notes,omitempty"`
	// Parts are the judged traffic runs of the spec, in order (a spec may judge several: a
	// canary with and without latency, the existing-customers spec's two bursts).
	Parts []PartView `json:"parts"`
}

// PartView is one judged traffic run: its history on the spec's clock, the fault windows, the
// checker's result.
type PartView struct {
	// Name is the run's name within the spec ("" for a spec's only run, else e.g. "with-latency").
	Name string `json:"name"`
	// Base is the time the history's durations count from.
	Base    time.Time    `json:"base"`
	History []history.Op `json:"-"`
	// API is the target's create API the part was judged by (judge.json), by which the page
	// reads the answers; nil for a run saved before judge.json kept it, whose answers the page
	// reads as the token service, then the only target, wrote them.
	API *check.API `json:"-"`
	// Rows are the database rows the checker read (rows.json): the race close-up draws when
	// each was created.
	Rows   []check.Row     `json:"-"`
	Events []history.Event `json:"events"`
	Result check.Result    `json:"result"`
	// Chaos holds a chaos run's figures (chaos.json), nil for other runs.
	Chaos map[string]any `json:"chaos,omitempty"`
}
