// Package progress checks that the Ginkgo flags scripts/e2e.sh runs the suite with still give a
// stalled spec its progress report (where it waits, with its goroutines), now that nothing is built
// under Ginkgo and a person sees no report while setup makes progress.
package progress

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// flagsFile is the one place scripts/e2e.sh reads its progress flags from.
const flagsFile = "../../scripts/ginkgo-progress.flags"

var durationFlag = regexp.MustCompile(`^--(poll-progress-after|poll-progress-interval)=(\S+)$`)

// progressFlags reads the flags e2e.sh gives Ginkgo and checks their values: a report only for a
// spec that runs longer than any spec of the suite should (a minute at least), then repeated.
func progressFlags(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(flagsFile)
	if err != nil {
		t.Fatalf("reading %s: %v", flagsFile, err)
	}
	flags := strings.Fields(string(raw))
	seen := map[string]time.Duration{}
	for _, f := range flags {
		m := durationFlag.FindStringSubmatch(f)
		if m == nil {
			t.Fatalf("%s: %q is not a progress flag this test knows", flagsFile, f)
		}
		d, err := time.ParseDuration(m[2])
		if err != nil {
			t.Fatalf("%s: %s: %v", flagsFile, f, err)
		}
		seen[m[1]] = d
	}
	if d, ok := seen["poll-progress-after"]; !ok || d < time.Minute {
		t.Fatalf("%s: want --poll-progress-after of a minute or more (no report while a spec is merely slow), got %v", flagsFile, seen)
	}
	if _, ok := seen["poll-progress-interval"]; !ok {
		t.Fatalf("%s: want --poll-progress-interval (a stalled spec is reported again), got %v", flagsFile, seen)
	}
	return flags
}

// scaled gives each duration flag a short value, so that the fixture shows in seconds what the
// real values do in minutes; the flag names are e2e.sh's own.
func scaled(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		m := durationFlag.FindStringSubmatch(f)
		out = append(out, "--"+m[1]+"=1s")
	}
	return out
}

// pollMarker heads each report Ginkgo prints because a spec ran past --poll-progress-after (the
// report a spec timeout prints has another heading, so it cannot pass for one).
const pollMarker = "Automatically polling progress:"

// runFixture runs the fixture suite under the Ginkgo CLI with extra flags and returns its output.
func runFixture(t *testing.T, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"tool", "ginkgo", "--no-color", "-v"}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, "./testdata/stalled")...)
	cmd.Dir, _ = filepath.Abs(".")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the fixture's stalled spec passed; want it to time out:\n%s", out)
	}
	if !strings.Contains(string(out), "Ran 2 of 2 Specs") {
		t.Fatalf("the fixture suite did not run:\n%s", out)
	}
	return string(out)
}

func TestStalledSpecGetsProgressReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Ginkgo CLI on a fixture suite (about 20 s): not in -short")
	}
	flags := progressFlags(t)
	text := runFixture(t, scaled(flags)...)
	blocks := strings.Split(text, pollMarker)[1:]
	// The spec stalls for 4 s: reported after 1 s, then again every second.
	if len(blocks) < 2 {
		t.Fatalf("want the stalled spec reported at least twice with e2e.sh's flags %v (scaled to 1s), got %d reports:\n%s", flags, len(blocks), text)
	}
	for _, b := range blocks {
		head := firstLines(b, 3)
		if !strings.Contains(head, "stalls on a wait that never ends") {
			t.Fatalf("a progress report for another spec than the stalled one:\n%s", b)
		}
		if !strings.Contains(b, "Spec Goroutine") || !strings.Contains(b, "stalled_test.go:25") {
			t.Fatalf("the progress report does not show where the spec waits (its goroutine at stalled_test.go:25):\n%s", b)
		}
	}
	// The check can fail: without the flags the same suite prints no such report.
	if n := strings.Count(runFixture(t), pollMarker); n != 0 {
		t.Fatalf("without progress flags Ginkgo still printed %d progress reports: the check above cannot tell", n)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
