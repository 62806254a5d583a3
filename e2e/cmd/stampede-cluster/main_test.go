package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
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
		vars[k] = strings.Trim(v, `"`)
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
