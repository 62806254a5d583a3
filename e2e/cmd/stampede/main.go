// Command stampede works on the artifacts a run of the suite left, offline: no cluster, no
// database, no network.
//
//	stampede check DIR...   re-judge every saved run under each DIR (a run's artifacts directory,
//	                        one spec's, or one judged part) from its files alone, and compare
//	                        with the verdict the live run saved
//	stampede report DIR     render DIR/report.html again from a run's artifacts (its Ginkgo
//	                        report.json, results.json and every judged run)
//	stampede soak [-out DIR] [-attempted N] RUNDIR...
//	                        the runs of a soak together (make soak): per spec its states and
//	                        verdicts, the canary's detection rate with its 95% interval and the
//	                        time to its first violation, the false alarms on the modes that promise exactly once;
//	                        writes soak.json, soak.md and trend.html (stampede trend of its runs)
//	                        into DIR (default: the first run's parent) and prints the table
//	stampede trend [-o FILE] DIR...
//	                        the runs under each DIR (a run directory, a soak's, or a directory of
//	                        runs: every results.json below it) over time, per spec and judged
//	                        part: verdict, canary detection rate with its 95% interval, recovery
//	                        time, latency p50/p99, coverage and unknown outcomes, each target apart;
//	                        writes one self-contained trend.html (default: DIR/trend.html of the
//	                        first DIR) whose points link to each run's report.html
//	stampede timeline DIR   print a run's stage timeline (host setup, node image, images, cluster,
//	                        each spec, cleanup) and keep it in its results.json
//	stampede faults         print the table fault -> the answers it may excuse and from which pods,
//	                        generated from the faults' declarations (e2e/chaos)
//	stampede target validate FILE|DIR
//	                        check a target file (e2e/target; a directory: its target.yaml): one
//	                        line naming the target, its modes and digest, or its problems one a
//	                        line with file:line:col
//	stampede target init [--name N] [FILE]
//	                        write a commented skeleton target file (default target.yaml), never
//	                        over an existing file
//	stampede target images FILE|DIR
//	                        the target's images and their build recipes, one a line: the image's
//	                        name, then its build script (resolved against the file) and args,
//	                        tab-separated; the name alone for an image without a script
//	                        (scripts/e2e.sh builds by them)
//
// check takes each run's contract by its mode from the target's contracts saved with its API (a
// run saved before them: the token service's, from its embedded target file) and its metrics witness
// from the pods' raw scrapes, never from what judge.json says they were; it refuses, in one line,
// a judge.json of an unknown format version or one lacking a field its version requires. Files
// without a version (written before check.SavedFormat 2) re-judge as they were judged then.
//
// check prints one line per judged run (verdict, counts, and whether it matches the live
// verdict) and exits 1 when any differs; soak exits 1 when the soak failed (a false alarm, the
// canary never caught, nothing judged); target validate exits 1 on a file with problems; all
// exit 2 on bad usage or unreadable artifacts.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/chaos"
	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/target"
	"github.com/stampede-e2e/stampede/e2e/target/targetcmd"
	"github.com/stampede-e2e/stampede/targets/tokensvc"
)

const usage = `usage: stampede COMMAND ARGS
  check DIR...   re-judge every saved run under each DIR from its artifacts and compare with
                 the live verdict (exit 1 if any differs)
  report DIR     render DIR/report.html again from a run's artifacts
  soak [-out DIR] [-attempted N] RUNDIR...
                 the runs of a soak together: soak.json and soak.md into DIR (default the
                 first run's parent); exit 1 on a false alarm on an exactly-once mode, a canary
                 never caught, or nothing judged; and trend.html of its runs
  trend [-o FILE] DIR...
                 every run's results.json under each DIR over time, one page: trend.html
                 (default FILE: the first DIR's trend.html)
  timeline DIR   print a run's stage timeline and keep it in DIR/results.json
  faults         print the table fault -> what it may excuse (from which pods)
` + targetcmd.Usage

// errDiffers is check's finding that a re-judged run differs from its saved verdict.
var errDiffers = errors.New("a re-judged run differs from its saved verdict")

// errSoakFailed is soak's finding that the soak failed (soak.md says why).
var errSoakFailed = errors.New("the soak failed")

func main() {
	err := run(os.Args[1:], os.Stdout)
	switch {
	case err == nil:
	case errors.Is(err, errDiffers), errors.Is(err, errSoakFailed), errors.Is(err, targetcmd.ErrInvalid):
		fmt.Fprintln(os.Stderr, "stampede:", err)
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "stampede:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "check":
		return checkDirs(args[1:], out)
	case "report":
		return renderReport(args[1:], out)
	case "soak":
		return soak(args[1:], out)
	case "trend":
		return trend(args[1:], out)
	case "timeline":
		if len(args) != 2 {
			return fmt.Errorf("timeline: name one run's artifacts directory (e.g. _artifacts/latest)\n%s", usage)
		}
		return report.Timeline(args[1], out)
	case "faults":
		_, err := io.WriteString(out, chaos.ExcuseTable())
		return err
	case "target":
		return targetcmd.Run(args[1:], out)
	case "-h", "--help", "help":
		fmt.Fprintln(out, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func checkDirs(roots []string, out io.Writer) error {
	if len(roots) == 0 {
		return fmt.Errorf("check: name at least one directory of artifacts (e.g. _artifacts/latest)\n%s", usage)
	}
	var dirs []string
	for _, root := range roots {
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			return fmt.Errorf("check: %s is not a directory of artifacts", root)
		}
		found, err := report.JudgedDirs(root)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return fmt.Errorf("check: no judged run under %s (none has %s)", root, report.JudgeFile)
		}
		dirs = append(dirs, found...)
	}
	// A run saved before judge.json kept its API was a run of the token service, then the only
	// target: judged by its API, from its target file as this binary embeds it.
	defaultAPI, err := tokensvc.API()
	if err != nil {
		return err
	}
	differs := 0
	for _, dir := range dirs {
		r, err := report.RecheckDir(dir, defaultAPI)
		if err != nil {
			return err
		}
		mark := "same as live"
		if !r.Same {
			mark = fmt.Sprintf("DIFFERS from live %s %s", r.Saved.Verdict, counts(r.Saved))
			differs++
		}
		fmt.Fprintf(out, "%-12s %s  %d %s, %d requests, %d violations %s  (%s)\n",
			r.Fresh.Verdict, rel(roots, dir), r.Fresh.Customers, r.Fresh.Names.WithDefaults().Entities, r.Fresh.Requests, len(r.Fresh.Violations), counts(r.Fresh), mark)
	}
	fmt.Fprintf(out, "%d judged runs re-checked, %d differ\n", len(dirs), differs)
	if differs > 0 {
		return fmt.Errorf("%w: %d of %d", errDiffers, differs, len(dirs))
	}
	return nil
}

// counts lists the rules broken, as rule=n.
func counts(r check.Result) string {
	var parts []string
	for _, rule := range check.Rules {
		if n := r.Counts[rule]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", rule, n))
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// rel names dir relative to the root it was found under.
func rel(roots []string, dir string) string {
	for _, root := range roots {
		if r, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(r, "..") {
			return filepath.Join(filepath.Base(filepath.Clean(root)), r)
		}
	}
	return dir
}

// renderReport writes a run directory's report.html again from its artifacts.
func renderReport(args []string, out io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("report: name one run's artifacts directory (e.g. _artifacts/latest)\n%s", usage)
	}
	dir := args[0]
	gr, err := report.ReadGinkgoReport(dir)
	if err != nil {
		return fmt.Errorf("report: %s is not a run's artifacts directory: %w", dir, err)
	}
	// Without results.json the page has no run id, seed or target, nothing worse.
	info, _ := report.ReadRunInfo(dir)
	if err := report.WriteRunHTML(dir, info, report.SpecsFromGinkgo(gr)); err != nil {
		return err
	}
	fmt.Fprintln(out, filepath.Join(dir, report.HTMLFile))
	return nil
}

// soak reads the run directories of a soak together, writes soak.json and soak.md, and prints
// the table.
func soak(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dest := fs.String("out", "", "where soak.json and soak.md go (default: the first run directory's parent)")
	attempted := fs.Int("attempted", 0, "runs the soak started, when some left no directory (default: the directories named)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("soak: %w\n%s", err, usage)
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		return fmt.Errorf("soak: name the run directories of the soak (e.g. _artifacts/soak-*/2*)\n%s", usage)
	}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return fmt.Errorf("soak: %s is not a run's artifacts directory", d)
		}
	}
	if *dest == "" {
		*dest = filepath.Dir(filepath.Clean(dirs[0]))
	}
	s := report.AggregateSoak(dirs, *attempted, soakModes)
	if err := report.WriteSoak(*dest, s); err != nil {
		return err
	}
	fmt.Fprint(out, s.Markdown())
	fmt.Fprintf(out, "\n%s, %s\n", filepath.Join(*dest, report.SoakMarkdownFile), filepath.Join(*dest, report.SoakJSONFile))
	// The same runs over time beside soak.md. A soak whose runs all ended before their figures
	// has no trend: soak.md already says so, and the soak's verdict stands.
	page := filepath.Join(*dest, report.TrendHTMLFile)
	if err := writeTrend(page, dirs, out); err != nil {
		fmt.Fprintf(out, "no %s: %v\n", page, err)
	}
	if !s.Passed() {
		return fmt.Errorf("%w: %s", errSoakFailed, strings.Join(s.Problems, "; "))
	}
	return nil
}

// trend writes the trend page of the runs under the directories named.
func trend(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("trend", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dest := fs.String("o", "", "the page to write (default: trend.html in the first directory)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("trend: %w\n%s", err, usage)
	}
	roots := fs.Args()
	if len(roots) == 0 {
		return fmt.Errorf("trend: name the directories that hold the runs (e.g. _artifacts)\n%s", usage)
	}
	for _, d := range roots {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return fmt.Errorf("trend: %s is not a directory of runs", d)
		}
	}
	if *dest == "" {
		*dest = filepath.Join(roots[0], report.TrendHTMLFile)
	}
	return writeTrend(*dest, roots, out)
}

// writeTrend reads the runs under roots and writes their page to dest; a run saved before
// results.json named its target is the token service's, then the only target.
func writeTrend(dest string, roots []string, out io.Writer) error {
	defaultTarget, err := tokensvc.Name()
	if err != nil {
		return err
	}
	t, err := report.BuildTrend(report.TrendParams{Roots: roots, Out: dest, DefaultTarget: defaultTarget})
	if err != nil {
		return err
	}
	if err := report.WriteTrendFile(dest, t, time.Now()); err != nil {
		return err
	}
	for _, s := range t.Skipped {
		fmt.Fprintln(out, "not read:", s)
	}
	var targets []string
	for _, tt := range t.Targets {
		targets = append(targets, fmt.Sprintf("%s %d", tt.Name, len(tt.Runs)))
	}
	fmt.Fprintf(out, "%s: %d runs (%s)\n", dest, t.Runs(), strings.Join(targets, ", "))
	return nil
}

// soakModes reads the modes of the target a run judged from its target file, which results.json
// names (relative to the repository, where the soak runs); a run from before target files judged
// the token service, whose file is embedded. A file changed since the run is read as it is now.
func soakModes(dir string) (map[string]report.SoakMode, error) {
	info, err := report.ReadRunInfo(dir)
	if err != nil {
		return nil, err
	}
	var t *target.Target
	if info.Target == nil {
		t, err = tokensvc.Target()
	} else {
		t, err = target.Load(info.Target.File)
	}
	if err != nil {
		return nil, err
	}
	modes := map[string]report.SoakMode{}
	for _, m := range t.Modes {
		sm := report.SoakMode{ExactlyOnce: m.Contract.ExactlyOnce}
		if m.Canary != nil {
			sm.Canary = check.KindsOf(m.Canary.Findings)
		}
		modes[m.Name] = sm
	}
	return modes, nil
}
