package report

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The files of a run's directory besides the judged runs' (Write): the report package names and
// writes every file a run leaves, so that one place says what a run's artifacts are.
const (
	// RunSummaryFile is the run's summary in prose: every spec's state and summaries.
	RunSummaryFile = "summary.txt"
	// ResultsFile holds the run's figures for trends across runs (framework.Results).
	ResultsFile = "results.json"
	// ChaosSummaryFile collects one line per chaos spec, such as a canary's detection rates.
	ChaosSummaryFile = "chaos-summary.txt"
	// SelftestTableFile and SelftestJSONFile are the self-test's table and rows.
	SelftestTableFile = "selftest.md"
	SelftestJSONFile  = "selftest.json"
	// HTMLFile is the run's page.
	HTMLFile = "report.html"
	// Per spec or judged run: a chaos run's figures and a canary's detection line.
	ChaosFile     = "chaos.json"
	DetectionFile = "detection.txt"
	// Of a failed spec: its namespace's Kubernetes events and every container's log.
	KubeEventsFile = "events.txt"
	PodLogsDir     = "pod-logs"
	// AttackersFile, per judged run with traffic from inside the cluster: each attacker pod's
	// node, start slack and own logging (its history is in the run's history.jsonl, merged).
	AttackersFile = "attackers.log"
	// TrafficErrorsFile, in a spec's directory, says that its traffic failed and its history
	// is incomplete: the judgement beside it may count requests that are missing from it.
	TrafficErrorsFile = "traffic-errors.txt"
)

// WriteJSONFile writes v, indented, as dir/name, creating dir.
func WriteJSONFile(dir, name string, v any) error {
	var buf bytes.Buffer
	if err := writeIndentedJSON(&buf, v); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return WriteTextFile(dir, name, buf.String())
}

// WriteTextFile writes text as dir/name, creating dir.
func WriteTextFile(dir, name, text string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// AppendLine adds line to dir/name, creating both.
func AppendLine(dir, name, line string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("append to %s: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("append to %s: %w", name, err)
	}
	_, err = fmt.Fprintln(f, line)
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("append to %s: %w", name, err)
	}
	return nil
}
