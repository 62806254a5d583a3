package framework

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	"github.com/onsi/ginkgo/v2/types"

	"github.com/stampede-e2e/stampede/e2e/report"
)

// beginStage starts timing one stage of the run's timeline (report.StagesFile in dir); the
// function it returns records the stage, failed when err is not nil. Without a run directory
// there is no timeline, and a timeline that cannot be written is said, never a reason to fail.
func beginStage(dir, name string) func(err error) {
	start := time.Now()
	return func(err error) {
		if dir == "" {
			return
		}
		status := "ok"
		if err != nil {
			status = "failed"
		}
		s := report.Stage{Name: name, Start: start, Seconds: time.Since(start).Seconds(), Status: status}
		if werr := report.AppendStage(dir, s); werr != nil {
			fmt.Fprintf(GinkgoWriter, "stage timeline: %v\n", werr)
		}
	}
}

// RecordSuiteStages adds what Ginkgo timed to the run's timeline in dir: each spec that ran, and
// the suite's cleanup (the cluster's deletion). The suite setup's own steps are recorded by Setup
// as they end.
func RecordSuiteStages(dir string, r types.Report) error {
	for _, sr := range SuiteStages(r) {
		if err := report.AppendStage(dir, sr); err != nil {
			return err
		}
	}
	return nil
}

// SuiteStages are the stages of a Ginkgo report: its specs that ran and its after-suite nodes.
func SuiteStages(r types.Report) []report.Stage {
	var out []report.Stage
	for _, sr := range r.SpecReports {
		var name string
		switch {
		case sr.LeafNodeType == types.NodeTypeIt && !sr.State.Is(types.SpecStateSkipped|types.SpecStatePending):
			name = "spec: " + sr.FullText()
		case sr.LeafNodeType.Is(types.NodeTypeAfterSuite | types.NodeTypeCleanupAfterSuite | types.NodeTypeSynchronizedAfterSuite):
			name = "cleanup: " + sr.LeafNodeType.String()
			if sr.LeafNodeText != "" {
				name += " " + sr.LeafNodeText
			}
		default:
			continue
		}
		if sr.StartTime.IsZero() || sr.EndTime.Before(sr.StartTime) {
			continue
		}
		status := "ok"
		if !sr.State.Is(types.SpecStatePassed) {
			status = sr.State.String()
		}
		out = append(out, report.Stage{Name: name, Start: sr.StartTime, Seconds: sr.EndTime.Sub(sr.StartTime).Seconds(), Status: status})
	}
	return out
}
