package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// TargetRef names the target a run judged: its name, the file it was read from and the file's
// digest (target.Target.Digest), so that a report says which description of the service its
// verdicts rest on, and two runs can tell whether they used the same one.
type TargetRef struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Digest string `json:"digest"`
}

// RunInfo identifies a run: the members of results.json that name it. Target is nil for a run
// from before target files, whose results.json has none.
type RunInfo struct {
	RunID  string     `json:"run_id"`
	Seed   uint64     `json:"seed"`
	Target *TargetRef `json:"target,omitempty"`
	// Start is when the suite began (Ginkgo's report); zero in a results.json written before
	// it was kept, whose run a trend places by its stages or its directory's name instead.
	Start time.Time `json:"start,omitzero"`
}

// ReadRunInfo reads the run's identity from dir's results.json.
func ReadRunInfo(dir string) (RunInfo, error) {
	var info RunInfo
	b, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		return info, fmt.Errorf("run info: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return RunInfo{}, fmt.Errorf("run info: %s: %w", ResultsFile, err)
	}
	return info, nil
}
