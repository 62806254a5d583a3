package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/stampede-e2e/stampede/e2e/check"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// SpecDirName is the name of a spec's artifacts directory inside its run's: the spec's full text
// in lower case with runs of other characters as one dash, cut at 80 characters with a hash of
// the whole text so that specs with a long common prefix do not share one.
func SpecDirName(fullText string) string {
	name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(fullText), "-"), "-")
	if len(name) > 80 {
		sum := sha256.Sum256([]byte(fullText))
		name = strings.TrimRight(name[:71], "-") + "-" + hex.EncodeToString(sum[:4])
	}
	return name
}

// SpecMeta is what a run's view needs to know of a spec besides its artifacts.
type SpecMeta struct {
	Name, State, Failure string
	Runtime              time.Duration
	// Notes are the spec's figures in prose (canary detection lines and the like).
	Notes []string
}

// SpecsFromGinkgo lists the specs of a Ginkgo report that ran (It nodes, not skipped).
func SpecsFromGinkgo(r types.Report) []SpecMeta {
	var out []SpecMeta
	for _, sr := range r.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt || sr.State.Is(types.SpecStateSkipped|types.SpecStatePending) {
			continue
		}
		m := SpecMeta{Name: sr.FullText(), State: sr.State.String(), Runtime: sr.RunTime}
		if sr.Failed() {
			m.Failure = sr.Failure.Message
		}
		for _, e := range sr.ReportEntries {
			if v, ok := e.GetRawValue().(string); ok && isNote(e.Name) {
				m.Notes = append(m.Notes, v)
			}
		}
		out = append(out, m)
	}
	return out
}

// isNote says which report entries are prose figures worth showing on the page.
func isNote(name string) bool {
	for _, p := range []string{"canary", "durability", "chaos ", "selftest", "legacy detection", "return-existing"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	// A canary spec's figures are "<mode> detection", whatever the target calls its modes.
	return strings.HasSuffix(name, " detection")
}

// ReadGinkgoReport reads the Ginkgo JSON report (report.json) of a run's directory.
func ReadGinkgoReport(dir string) (types.Report, error) {
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		return types.Report{}, fmt.Errorf("ginkgo report: %w", err)
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return types.Report{}, fmt.Errorf("ginkgo report %s: %w", dir, err)
	}
	if len(reports) == 0 {
		return types.Report{}, fmt.Errorf("ginkgo report %s: empty", dir)
	}
	return reports[0], nil
}

// BuildRunView reads the judged parts of every spec from the run's directory dir into a view,
// failed specs first.
func BuildRunView(dir string, info RunInfo, specs []SpecMeta) (RunView, error) {
	v := RunView{Title: "stampede e2e run " + info.RunID, RunID: info.RunID, Seed: info.Seed, Target: info.Target, Generated: time.Now().UTC()}
	failed := 0
	var errs []error
	for _, m := range specs {
		sv := SpecView{Name: m.Name, State: m.State, Failure: m.Failure, Dir: SpecDirName(m.Name), Runtime: m.Runtime, Notes: m.Notes}
		if m.State != types.SpecStatePassed.String() {
			failed++
		}
		specDir := filepath.Join(dir, sv.Dir)
		parts, err := JudgedDirs(specDir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		for _, p := range parts {
			// The view reads the history, the faults and the saved result, nothing the API
			// decides: no default API is needed.
			r, err := Load(p, check.API{})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			name, _ := filepath.Rel(specDir, p)
			if name == "." {
				name = ""
			}
			pv := PartView{Name: name, Base: r.Base, History: r.History, Rows: r.Rows, Events: r.Params.Faults, Result: r.Result}
			if r.Params.API.ID != "" {
				pv.API = &r.Params.API
			}
			if b, err := os.ReadFile(filepath.Join(p, "chaos.json")); err == nil {
				_ = json.Unmarshal(b, &pv.Chaos) // figures only; a bad file leaves them out
			}
			if sv.Repro == "" {
				sv.Repro = r.Repro
			}
			sv.Parts = append(sv.Parts, pv)
		}
		v.Specs = append(v.Specs, sv)
	}
	slices.SortStableFunc(v.Specs, func(a, b SpecView) int {
		return passedRank(a.State) - passedRank(b.State)
	})
	v.Summary = fmt.Sprintf("%d specs ran, %d did not pass; seed %d", len(specs), failed, info.Seed)
	return v, errors.Join(errs...)
}

func passedRank(state string) int {
	if state == types.SpecStatePassed.String() {
		return 1
	}
	return 0
}

// WriteRunHTML builds the view of the run in dir and writes its report.html there. A view built
// with errors (an unreadable part) is still written, with what could be read, and the errors
// are returned.
func WriteRunHTML(dir string, info RunInfo, specs []SpecMeta) error {
	v, viewErr := BuildRunView(dir, info, specs)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, v); err != nil {
		return errors.Join(viewErr, fmt.Errorf("render %s: %w", HTMLFile, err))
	}
	return errors.Join(viewErr, WriteTextFile(dir, HTMLFile, buf.String()))
}
