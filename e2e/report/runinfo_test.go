package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// results.json names the target when the run had one, and a file written before target files
// still reads, with no target.
func TestReadRunInfo(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		want RunInfo
	}{
		"with a target": {
			body: `{"run_id": "abc", "seed": 7, "target": {"name": "tokensvc", "file": "targets/tokensvc/target.yaml", "digest": "sha256:00ff"}, "specs": []}`,
			want: RunInfo{RunID: "abc", Seed: 7, Target: &TargetRef{Name: "tokensvc", File: "targets/tokensvc/target.yaml", Digest: "sha256:00ff"}},
		},
		"with its start": {
			body: `{"run_id": "abc", "seed": 7, "start": "2026-12-07T02:37:00.5Z", "specs": []}`,
			want: RunInfo{RunID: "abc", Seed: 7, Start: time.Date(2026, 12, 7, 2, 37, 0, 5e8, time.UTC)},
		},
		"from before target files": {
			body: `{"run_id": "abc", "seed": 7, "specs": [{"name": "x", "state": "passed"}], "stages": []}`,
			want: RunInfo{RunID: "abc", Seed: 7},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteTextFile(dir, ResultsFile, tc.body); err != nil {
				t.Fatal(err)
			}
			got, err := ReadRunInfo(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got.RunID != tc.want.RunID || got.Seed != tc.want.Seed || !got.Start.Equal(tc.want.Start) || (got.Target == nil) != (tc.want.Target == nil) ||
				(got.Target != nil && *got.Target != *tc.want.Target) {
				t.Errorf("ReadRunInfo = %+v (target %+v), want %+v (target %+v)", got, got.Target, tc.want, tc.want.Target)
			}
		})
	}
	// A run without its start (RunInfo built before it was kept) writes none.
	if b, err := json.Marshal(RunInfo{RunID: "abc", Seed: 7}); err != nil || strings.Contains(string(b), "start") {
		t.Errorf("RunInfo without a start encodes as %s (%v)", b, err)
	}
	if _, err := ReadRunInfo(t.TempDir()); err == nil {
		t.Error("a directory without results.json: no error")
	}
	dir := t.TempDir()
	if err := WriteTextFile(dir, ResultsFile, `{"run_id": 3}`); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRunInfo(dir); err == nil || !strings.Contains(err.Error(), ResultsFile) {
		t.Errorf("a results.json that does not decode: %v", err)
	}
}

// The header of report.html names the target and its digest, and a run without one shows no
// target at all rather than an empty one.
func TestWriteHTMLHeaderNamesTheTarget(t *testing.T) {
	v := fixtureRun(t)
	v.Target = &TargetRef{Name: "tokensvc", File: "targets/tokensvc/target.yaml", Digest: "sha256:0123abcd"}
	page := render(t, v)
	header, _, ok := strings.Cut(page, "</header>")
	if !ok {
		t.Fatal("no header in the page")
	}
	for _, want := range []string{"target <b>tokensvc</b>", "<code>targets/tokensvc/target.yaml</code>", "sha256:0123abcd"} {
		if !strings.Contains(header, want) {
			t.Errorf("the header lacks %q:\n%s", want, header)
		}
	}
	v.Target = nil
	if page := render(t, v); strings.Contains(page, `class="target"`) {
		t.Error("a run without a target shows a target in its header")
	}
}
