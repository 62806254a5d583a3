package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A trend reads the results.json of many runs (nights, a soak's runs) and draws each spec's
// figures over time, one page per call of `stampede trend`: what a single run's report cannot
// say, whether detection, recovery, latency or coverage drift.

// TrendHTMLFile is the trend page.
const TrendHTMLFile = "trend.html"

// TrendParams are what BuildTrend needs besides the runs.
type TrendParams struct {
	// Roots are run directories, soak directories or directories of runs: every results.json
	// below them is a run.
	Roots []string
	// Out is the page's path: links to each run's report.html are relative to its directory.
	Out string
	// DefaultTarget names the target of a run saved before results.json named one (the
	// caller's: the bundled target's name).
	DefaultTarget string
}

// Trend is every run found, by target.
type Trend struct {
	Targets []TrendTarget
	// Skipped are the results.json files that could not be read, each with why.
	Skipped []string
}

// TrendTarget is the runs of one target, in start order, and their figures by metric.
type TrendTarget struct {
	Name    string
	Runs    []TrendRun
	Metrics []TrendMetric
}

// TrendRun is one run's identity and where its page is.
type TrendRun struct {
	Dir   string
	RunID string
	Seed  uint64
	Start time.Time
	// StartFrom says where Start was read: "results" (results.json's start), "stages" (its
	// earliest stage), "directory" (the run directory's name) or "file time".
	StartFrom string
	// Link is the run's report.html relative to the page, "" when the page would not find it.
	Link string

	specs []trendSpec
}

// trendSpec is one spec of a results.json.
type trendSpec struct {
	Name    string         `json:"name"`
	State   string         `json:"state"`
	Figures map[string]any `json:"figures"`
}

// trendFile is the part of results.json a trend reads (framework.Results).
type trendFile struct {
	RunInfo
	Stages []struct {
		Start time.Time `json:"start"`
	} `json:"stages"`
	Specs []trendSpec `json:"specs"`
}

// FindResults lists every results.json under roots (a root may be a run directory itself),
// each once, in path order. Links such as an artifacts directory's "latest" are not followed
// below a root, so that a run is not found twice.
func FindResults(roots []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, root := range roots {
		real, err := filepath.EvalSymlinks(root)
		if err != nil {
			return nil, fmt.Errorf("trend: %w", err)
		}
		err = filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || d.Name() != ResultsFile {
				return nil
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				return err
			}
			if !seen[abs] {
				seen[abs] = true
				out = append(out, abs)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("trend: %w", err)
		}
	}
	slices.Sort(out)
	return out, nil
}

// BuildTrend reads every run under p.Roots into a Trend. A results.json that cannot be read is
// skipped and named in Trend.Skipped; finding no run at all is an error that says where it
// looked.
func BuildTrend(p TrendParams) (Trend, error) {
	files, err := FindResults(p.Roots)
	if err != nil {
		return Trend{}, err
	}
	var t Trend
	byTarget := map[string][]TrendRun{}
	seen := map[string]int{}
	for _, f := range files {
		run, target, err := readTrendRun(f, p)
		if err != nil {
			t.Skipped = append(t.Skipped, err.Error())
			continue
		}
		// The same run restored beside its own artifacts (a nightly's history and tonight's
		// directory) is drawn once, from the copy that links to its report.
		key := fmt.Sprintf("%s\x00%s\x00%d\x00%s", target, run.RunID, run.Seed, run.Start.Format(time.RFC3339Nano))
		if i, ok := seen[key]; ok {
			if byTarget[target][i].Link == "" {
				byTarget[target][i] = run
			}
			continue
		}
		seen[key] = len(byTarget[target])
		byTarget[target] = append(byTarget[target], run)
	}
	if len(byTarget) == 0 {
		msg := fmt.Sprintf("trend: no run's %s under %s", ResultsFile, strings.Join(p.Roots, ", "))
		if len(t.Skipped) > 0 {
			msg += " could be read: " + strings.Join(t.Skipped, "; ")
		}
		return t, errors.New(msg)
	}
	for _, name := range slices.Sorted(maps.Keys(byTarget)) {
		runs := byTarget[name]
		slices.SortStableFunc(runs, func(a, b TrendRun) int {
			return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.Dir, b.Dir))
		})
		t.Targets = append(t.Targets, TrendTarget{Name: name, Runs: runs, Metrics: trendMetrics(runs)})
	}
	return t, nil
}

// readTrendRun reads one results.json: the run and its target's name.
func readTrendRun(path string, p TrendParams) (TrendRun, string, error) {
	dir := filepath.Dir(path)
	b, err := os.ReadFile(path)
	if err != nil {
		return TrendRun{}, "", fmt.Errorf("%s: %w", path, err)
	}
	var f trendFile
	if err := json.Unmarshal(b, &f); err != nil {
		return TrendRun{}, "", fmt.Errorf("%s: %w", path, err)
	}
	run := TrendRun{Dir: dir, RunID: f.RunID, Seed: f.Seed, specs: f.Specs}
	run.Start, run.StartFrom = runStart(f, dir, path)
	if _, err := os.Stat(filepath.Join(dir, HTMLFile)); err == nil {
		run.Link = relLink(filepath.Dir(p.Out), filepath.Join(dir, HTMLFile))
	}
	target := p.DefaultTarget
	if f.Target != nil && f.Target.Name != "" {
		target = f.Target.Name
	}
	return run, target, nil
}

// runStart is when the run began: results.json's start, else its earliest stage (written since
// stage timelines), else its directory's name (RunDirName), else the file's modification time.
func runStart(f trendFile, dir, path string) (time.Time, string) {
	if !f.Start.IsZero() {
		return f.Start.UTC(), "results"
	}
	var first time.Time
	for _, s := range f.Stages {
		if !s.Start.IsZero() && (first.IsZero() || s.Start.Before(first)) {
			first = s.Start
		}
	}
	if !first.IsZero() {
		return first.UTC(), "stages"
	}
	if len(filepath.Base(dir)) >= len("20060102T150405Z") {
		if t, err := time.Parse("20060102T150405Z", filepath.Base(dir)[:len("20060102T150405Z")]); err == nil {
			return t, "directory"
		}
	}
	if fi, err := os.Stat(path); err == nil {
		return fi.ModTime().UTC(), "file time"
	}
	return time.Time{}, "unknown"
}

// relLink is target relative to dir as a URL path, or "" when it cannot be made relative.
func relLink(dir, target string) string {
	absDir, err1 := filepath.Abs(dir)
	absTarget, err2 := filepath.Abs(target)
	if err1 != nil || err2 != nil {
		return ""
	}
	rel, err := filepath.Rel(absDir, absTarget)
	if err != nil {
		return ""
	}
	// Each segment escaped: a directory name with "#" or "?" must not end the path.
	segs := strings.Split(filepath.ToSlash(rel), "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// WriteTrendFile writes t's page to path, creating its directory.
func WriteTrendFile(path string, t Trend, generated time.Time) error {
	var buf bytes.Buffer
	if err := WriteTrendHTML(&buf, t, generated); err != nil {
		return err
	}
	return WriteTextFile(filepath.Dir(path), filepath.Base(path), buf.String())
}

// Runs counts the runs of every target.
func (t Trend) Runs() int {
	n := 0
	for _, tt := range t.Targets {
		n += len(tt.Runs)
	}
	return n
}
