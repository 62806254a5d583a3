package framework

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/stampede-e2e/stampede/e2e/report"
)

func spec(text string, state types.SpecState, entries ...types.ReportEntry) types.SpecReport {
	return types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: text, State: state, RunTime: 2 * time.Second, ReportEntries: entries}
}

func entry(name string, v any) types.ReportEntry {
	return types.ReportEntry{Name: name, Value: types.WrapEntryValue(v)}
}

// The figures of a run, as results.json and the CI summary carry them: only figure entries,
// skipped specs left out, failed specs first, cells kept inside the table.
func TestRunResultsAndMarkdown(t *testing.T) {
	r := types.Report{SpecReports: []types.SpecReport{
		spec("keeps atomic's invariants under pod-kill", types.SpecStatePassed,
			entry("chaos.success_ratio_during_fault", 0.97), entry("chaos.recovery_seconds", 1.5), entry("summary atomic", "long text")),
		spec("canary | legacy", types.SpecStateFailed, entry("canary.detection_rate_with_latency", 0.0), entry("verdict[with-latency]", "pass")),
		spec("skipped one", types.SpecStateSkipped, entry("chaos.violations", 3)),
		{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStatePassed},
	}}
	res := RunResults(r, report.RunInfo{RunID: "abc123", Seed: 42})
	if len(res.Specs) != 2 {
		t.Fatalf("specs %+v, want the two that ran", res.Specs)
	}
	if f := res.Specs[0].Figures; len(f) != 2 || f["chaos.success_ratio_during_fault"] != 0.97 {
		t.Errorf("pod-kill's figures %v", f)
	}
	md := res.Markdown()
	for _, want := range []string{"2 specs, 1 not passed (run abc123, seed 42)", `canary \| legacy`, "canary.detection_rate_with_latency: 0",
		"chaos.recovery_seconds: 1.5", "verdict[with-latency]: pass"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	if strings.Index(md, "canary") > strings.Index(md, "pod-kill") {
		t.Errorf("the failed spec must come first:\n%s", md)
	}
	if strings.Contains(md, "long text") {
		t.Errorf("a report entry that is not a figure leaked into the summary:\n%s", md)
	}
}

// results.json keeps its members where they were, and gains the target only when the run had
// one: a reader of an older file (report.ReadRunInfo, soak) reads the new one, and the other way.
func TestResultsJSONTarget(t *testing.T) {
	r := types.Report{SpecReports: []types.SpecReport{spec("atomic", types.SpecStatePassed, entry("verdict", "pass"))}}
	ref := &report.TargetRef{Name: "widgets", File: "e2e/testdata/widgets/target.yaml", Digest: "sha256:ab"}
	for name, tc := range map[string]struct {
		target *report.TargetRef
		want   string
	}{
		"with a target":    {ref, `{"run_id":"abc","seed":7,"target":{"name":"widgets","file":"e2e/testdata/widgets/target.yaml","digest":"sha256:ab"},"specs":[`},
		"without a target": {nil, `{"run_id":"abc","seed":7,"specs":[`},
	} {
		res := RunResults(r, report.RunInfo{RunID: "abc", Seed: 7, Target: tc.target})
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), tc.want) {
			t.Errorf("%s: results.json %s, want it to start %s", name, b, tc.want)
		}
		md := res.Markdown()
		if named := strings.Contains(md, "target widgets"); named != (tc.target != nil) {
			t.Errorf("%s: the summary names the target: %v\n%s", name, named, md)
		}
	}
}
