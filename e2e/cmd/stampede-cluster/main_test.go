package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), args, &out)
	return out.String(), err
}

func TestEachCommandHasItsOwnFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"gc", "--name", "x"},      // gc acts on records, not on a name
		{"down", "--fresh"},        // only up recreates
		{"smoke", "--keep"},        // only up keeps
		{"up", "extra-argument"},   // flags only
		{"network-name", "--name"}, // no flags at all
	} {
		if _, err := runArgs(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	if out, err := runArgs(t, "help"); err != nil || !strings.Contains(out, "gc [--run ID]") {
		t.Errorf("help = %q, %v", out, err)
	}
}

func TestNames(t *testing.T) {
	if out, err := runArgs(t, "network-name"); err != nil || out != "stampede\n" {
		t.Errorf("network-name = %q, %v", out, err)
	}
	if out, err := runArgs(t, "bridge-name"); err != nil || out != "stampede0\n" {
		t.Errorf("bridge-name = %q, %v", out, err)
	}
}

func TestRunEnv(t *testing.T) {
	base := t.TempDir()
	var out bytes.Buffer
	if err := runEnv(&out, 4242, base, time.Date(2026, 11, 28, 23, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vars[k] = strings.Trim(v, `'`)
	}
	if vars["SEED"] != "4242" || len(vars["RUN_ID"]) != 6 {
		t.Errorf("run-env = %q", out.String())
	}
	if vars["ARTIFACTS_DIR"] != filepath.Join(base, "20261128T230000Z-seed4242") {
		t.Errorf("ARTIFACTS_DIR = %q", vars["ARTIFACTS_DIR"])
	}
	if _, err := os.Stat(vars["ARTIFACTS_DIR"]); err != nil {
		t.Errorf("artifacts directory not created: %v", err)
	}
	out.Reset()
	if err := runEnv(&out, 0, base, time.Now()); err != nil || strings.Contains(out.String(), "SEED=0\n") {
		t.Errorf("seed 0 must pick one: %q, %v", out.String(), err)
	}
}

// TestRunEnvQuotesForTheShell evals run-env's output the way scripts/e2e.sh does, with an
// artifacts path made of what the shell would otherwise run or split: the path must come back
// unchanged and nothing in it may execute.
func TestRunEnvQuotesForTheShell(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("scripts/e2e.sh evals this output in bash, which is not on PATH: %v", err)
	}
	tmp := t.TempDir()
	ran := filepath.Join(tmp, "ran")
	base := filepath.Join(tmp, "a $(touch "+ran+"-dollar) `touch "+ran+"-backtick` 'single' \"double\" back\\slash $HOME ${x:-y}")
	var out bytes.Buffer
	if err := runEnv(&out, 7, base, time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, "-c", `set -o errexit -o nounset; eval "$1"; printf '%s\n%s' "$SEED" "$ARTIFACTS_DIR"`, "bash", out.String())
	cmd.Dir = tmp
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("eval of run-env's output failed: %v\n%s\noutput was:\n%s", err, got, out.String())
	}
	want := "7\n" + filepath.Join(base, "20261206T200000Z-seed7")
	if string(got) != want {
		t.Errorf("after eval: %q, want %q (run-env printed %q)", got, want, out.String())
	}
	for _, suffix := range []string{"-dollar", "-backtick"} {
		if _, err := os.Stat(ran + suffix); err == nil {
			t.Errorf("eval of run-env's output ran the command substitution in the path (%s)", ran+suffix)
		}
	}
}
