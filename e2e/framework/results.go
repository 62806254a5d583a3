package framework

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/stampede-e2e/stampede/e2e/report"
)

// FigurePrefixes are the report entries that are a run's figures for trend tracking: each also
// becomes a JUnit property of its spec (Ginkgo writes every report entry as one) and a cell of
// the Markdown summary.
var FigurePrefixes = []string{"chaos.", "canary.", "durability.", "coverage.", "verdict", "traffic."}

// Results are a run's figures, results.json: what a nightly pipeline compares across runs. The
// run's id, seed and target are its top-level members (report.RunInfo, which reads them back).
type Results struct {
	report.RunInfo
	Specs []SpecResults `json:"specs"`
}

// SpecResults are one spec's state and figures.
type SpecResults struct {
	Name    string         `json:"name"`
	State   string         `json:"state"`
	Runtime float64        `json:"runtime_seconds"`
	Figures map[string]any `json:"figures,omitempty"`
}

// RunResults gathers the figures of every spec that ran, under the run's identity.
func RunResults(r types.Report, info report.RunInfo) Results {
	out := Results{RunInfo: info}
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt || sr.State.Is(types.SpecStateSkipped|types.SpecStatePending) {
			continue
		}
		s := SpecResults{Name: sr.FullText(), State: sr.State.String(), Runtime: sr.RunTime.Round(time.Millisecond).Seconds()}
		for _, e := range sr.ReportEntries {
			if !slices.ContainsFunc(FigurePrefixes, func(p string) bool { return strings.HasPrefix(e.Name, p) }) {
				continue
			}
			if s.Figures == nil {
				s.Figures = map[string]any{}
			}
			s.Figures[e.Name] = e.GetRawValue()
		}
		out.Specs = append(out.Specs, s)
	}
	return out
}

// Markdown is the summary a CI job page shows (GITHUB_STEP_SUMMARY): failed specs first, each
// with its figures.
func (r Results) Markdown() string {
	var b strings.Builder
	failed := 0
	for _, s := range r.Specs {
		if s.State != types.SpecStatePassed.String() {
			failed++
		}
	}
	target := ""
	if r.Target != nil {
		target = ", target " + r.Target.Name
	}
	fmt.Fprintf(&b, "### stampede e2e: %d specs, %d not passed (run %s, seed %d%s)\n\n", len(r.Specs), failed, r.RunID, r.Seed, target)
	b.WriteString("| spec | state | time | figures |\n|---|---|---|---|\n")
	specs := slices.Clone(r.Specs)
	slices.SortStableFunc(specs, func(a, b SpecResults) int {
		return boolRank(a.State == types.SpecStatePassed.String()) - boolRank(b.State == types.SpecStatePassed.String())
	})
	for _, s := range specs {
		var figs []string
		for _, k := range slices.Sorted(maps.Keys(s.Figures)) {
			figs = append(figs, fmt.Sprintf("%s: %v", k, s.Figures[k]))
		}
		fmt.Fprintf(&b, "| %s | %s | %.0fs | %s |\n", mdCell(s.Name), s.State, s.Runtime, mdCell(strings.Join(figs, "; ")))
	}
	return b.String()
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mdCell keeps a value inside one Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
