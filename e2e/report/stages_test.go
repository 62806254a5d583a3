package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStagesRoundTripInStartOrder(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	// Appended as they end: the node image ends after the images that started later.
	for _, s := range []Stage{
		{Name: "images", Start: t0.Add(5 * time.Second), Seconds: 50, Status: "ok"},
		{Name: "node image\twith a tab", Start: t0.Add(2 * time.Second), Seconds: 300},
		{Name: "host setup", Start: t0, Seconds: 1.5, Status: "failed"},
	} {
		if err := AppendStage(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadStages(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"host setup", "node image with a tab", "images"}
	if len(got) != len(want) {
		t.Fatalf("got %d stages, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Name != w {
			t.Errorf("stage %d is %q, want %q", i, got[i].Name, w)
		}
	}
	if got[0].Status != "failed" || got[1].Status != "ok" || got[1].Seconds != 300 || !got[1].Start.Equal(t0.Add(2*time.Second)) {
		t.Errorf("fields did not survive: %+v", got)
	}
}

func TestReadStagesNamesAMalformedLine(t *testing.T) {
	dir := t.TempDir()
	for _, line := range []string{"a\t1\t2\tok", "b\tnot-a-number\t2\tok"} {
		if err := AppendLine(dir, StagesFile, line); err != nil {
			t.Fatal(err)
		}
	}
	_, err := ReadStages(dir)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want an error naming line 2, got %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, StagesFile), []byte("c\t5\t4\tok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStages(dir); err == nil || !strings.Contains(err.Error(), "ends before it starts") {
		t.Fatalf("want an end-before-start error, got %v", err)
	}
	if s, err := ReadStages(t.TempDir()); err != nil || s != nil {
		t.Fatalf("a run without a timeline: got %v, %v; want nothing and no error", s, err)
	}
}

func TestWriteStagesShowsOffsetsAndTheRunsSpan(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	var b strings.Builder
	err := WriteStages(&b, []Stage{
		{Name: "host setup", Start: t0, Seconds: 12, Status: "ok"},
		{Name: "node image", Start: t0.Add(12 * time.Second), Seconds: 330, Status: "ok"},
		{Name: "images", Start: t0.Add(12 * time.Second), Seconds: 50, Status: "ok"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"+0 ", "12.00s", "+12.00s", "5m30s", "5m42s", "run, first stage's start"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestTimelineKeepsTheOtherResults(t *testing.T) {
	dir := t.TempDir()
	if err := WriteTextFile(dir, ResultsFile, `{"run_id": "abc", "seed": 7, "specs": [{"name": "x"}]}`); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	if err := AppendStage(dir, Stage{Name: "cluster: up", Start: t0, Seconds: 20}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Timeline(dir, &b); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RunID  string            `json:"run_id"`
		Seed   uint64            `json:"seed"`
		Specs  []json.RawMessage `json:"specs"`
		Stages []Stage           `json:"stages"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.RunID != "abc" || got.Seed != 7 || len(got.Specs) != 1 {
		t.Errorf("results.json lost its fields: %s", raw)
	}
	if len(got.Stages) != 1 || got.Stages[0].Name != "cluster: up" || got.Stages[0].Seconds != 20 {
		t.Errorf("results.json stages = %+v", got.Stages)
	}
}
