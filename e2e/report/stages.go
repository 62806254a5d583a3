package report

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// StagesFile is a run's stage timeline as its steps finish, one line each: name, start and end in
// Unix milliseconds, ok or failed, separated by tabs. The scripts (scripts/stages.sh) and the
// suite write it; Timeline reads it.
const StagesFile = "stages.tsv"

// Stage is one step of a run: host setup, the node image, the cluster, a spec, the cleanup.
type Stage struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
	Status  string    `json:"status"`
}

// End is when the stage ended.
func (s Stage) End() time.Time {
	return s.Start.Add(time.Duration(s.Seconds * float64(time.Second)))
}

// AppendStage adds one stage to dir's timeline.
func AppendStage(dir string, s Stage) error {
	name := strings.NewReplacer("\t", " ", "\n", " ").Replace(s.Name)
	status := cmp.Or(s.Status, "ok")
	return AppendLine(dir, StagesFile, fmt.Sprintf("%s\t%d\t%d\t%s", name, s.Start.UnixMilli(), s.End().UnixMilli(), status))
}

// ReadStages reads dir's timeline in the order the stages started. A missing file is an empty
// timeline; a malformed line is an error naming it.
func ReadStages(dir string) ([]Stage, error) {
	f, err := os.Open(filepath.Join(dir, StagesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stages: %w", err)
	}
	defer f.Close()
	var out []Stage
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		s, err := parseStage(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("read stages: %s line %d: %w", StagesFile, n, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read stages: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Stage) int { return a.Start.Compare(b.Start) })
	return out, nil
}

func parseStage(line string) (Stage, error) {
	f := strings.Split(line, "\t")
	if len(f) != 4 {
		return Stage{}, fmt.Errorf("want 4 tab-separated fields (name, start ms, end ms, status), got %d", len(f))
	}
	start, err1 := strconv.ParseInt(f[1], 10, 64)
	end, err2 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Stage{}, fmt.Errorf("start and end must be Unix milliseconds: %w", err)
	}
	if end < start {
		return Stage{}, fmt.Errorf("stage %q ends before it starts", f[0])
	}
	return Stage{Name: f[0], Start: time.UnixMilli(start).UTC(), Seconds: float64(end-start) / 1000, Status: f[3]}, nil
}

// WriteStages prints the timeline as a table: each stage's start after the run's first, its
// duration and status, then the whole run's span. Stages may overlap (built side by side, or one
// inside another), so the span is not the sum of the durations.
func WriteStages(w io.Writer, stages []Stage) error {
	if len(stages) == 0 {
		_, err := fmt.Fprintln(w, "stage timeline: no stages recorded")
		return err
	}
	first, last := stages[0].Start, stages[0].End()
	for _, s := range stages {
		first = minTime(first, s.Start)
		last = maxTime(last, s.End())
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "at\ttook\tstatus\t\tstage")
	for _, s := range stages {
		fmt.Fprintf(tw, "+%s\t%s\t%s\t\t%s\n", fmtDur(s.Start.Sub(first)), fmtDur(time.Duration(s.Seconds*float64(time.Second))), s.Status, s.Name)
	}
	fmt.Fprintf(tw, "\t%s\t\t\trun, first stage's start to last stage's end\n", fmtDur(last.Sub(first)))
	return tw.Flush()
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Timeline prints dir's stage timeline and keeps it in dir's results.json (its "stages"), which
// the suite may have written before the last stages (the cleanup after it) were recorded. Every
// other field of results.json is kept as it is.
func Timeline(dir string, w io.Writer) error {
	stages, err := ReadStages(dir)
	if err != nil {
		return err
	}
	if err := WriteStages(w, stages); err != nil {
		return err
	}
	return setResultsStages(dir, stages)
}

// KeepStages writes dir's stage timeline as it is now into dir's results.json.
func KeepStages(dir string) error {
	stages, err := ReadStages(dir)
	if err != nil {
		return err
	}
	return setResultsStages(dir, stages)
}

func setResultsStages(dir string, stages []Stage) error {
	path := filepath.Join(dir, ResultsFile)
	fields := map[string]json.RawMessage{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("timeline: %w", err)
	default:
		if err := json.Unmarshal(b, &fields); err != nil {
			return fmt.Errorf("timeline: %s: %w", ResultsFile, err)
		}
	}
	raw, err := json.Marshal(stages)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	fields["stages"] = raw
	var buf bytes.Buffer
	if err := writeIndentedJSON(&buf, fields); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return WriteTextFile(dir, ResultsFile, buf.String())
}
