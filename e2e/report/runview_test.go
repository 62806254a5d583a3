package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSpecDirName(t *testing.T) {
	if got := SpecDirName("Chaos keeps atomic's invariants under db-crash"); got != "chaos-keeps-atomic-s-invariants-under-db-crash" {
		t.Errorf("SpecDirName = %q", got)
	}
	long := strings.Repeat("First registration under concurrency ", 4)
	a, b := SpecDirName(long+"atomic"), SpecDirName(long+"fail-fast")
	if a == b || len(a) > 80 || len(b) > 80 {
		t.Errorf("long names %q and %q: want distinct, at most 80 characters", a, b)
	}
}

// The view of a run reads every judged part of each spec from its artifacts, failed specs first,
// a spec's own run unnamed and its sub-runs by their directory.
func TestBuildRunView(t *testing.T) {
	dir := t.TempDir()
	passed := SpecMeta{Name: "First registration atomic", State: "passed", Runtime: time.Second}
	failed := SpecMeta{Name: "Chaos canary legacy", State: "failed", Failure: "the canary found nothing", Notes: []string{"detection 12%"}}
	run := judgedRun(t)
	if err := Write(filepath.Join(dir, SpecDirName(passed.Name)), run); err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"without-latency", "with-latency"} {
		if err := Write(filepath.Join(dir, SpecDirName(failed.Name), part), run); err != nil {
			t.Fatal(err)
		}
	}
	chaos := filepath.Join(dir, SpecDirName(failed.Name), "with-latency", "chaos.json")
	if err := os.WriteFile(chaos, []byte(`{"during_ratio": 0.5, "recovered": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := BuildRunView(dir, RunInfo{RunID: "abc", Seed: 7}, []SpecMeta{passed, failed})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Specs) != 2 || v.Specs[0].Name != failed.Name || v.Specs[0].Failure == "" || v.Specs[0].Notes[0] != "detection 12%" {
		t.Fatalf("specs %+v: want the failed one first, with its failure and notes", v.Specs)
	}
	f, p := v.Specs[0], v.Specs[1]
	if len(f.Parts) != 2 || f.Parts[0].Name != "with-latency" || f.Parts[1].Name != "without-latency" || f.Parts[0].Chaos["during_ratio"] != 0.5 {
		t.Errorf("failed spec's parts %+v", f.Parts)
	}
	if len(p.Parts) != 1 || p.Parts[0].Name != "" || len(p.Parts[0].History) != len(run.History) || p.Parts[0].Result.Verdict != run.Result.Verdict ||
		len(p.Parts[0].Events) != 1 || p.Repro != run.Repro {
		t.Errorf("passed spec %+v", p)
	}
	if !strings.Contains(v.Summary, "2 specs ran, 1 did not pass") {
		t.Errorf("summary %q", v.Summary)
	}
}
