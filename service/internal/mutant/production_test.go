//go:build !selftest

package mutant_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stampede-e2e/stampede/service/internal/mutant"
	"github.com/stampede-e2e/stampede/service/mutants"
)

// TestProductionIgnoresTheVariable: a production build does not even read TOKENSVC_MUTANT.
func TestProductionIgnoresTheVariable(t *testing.T) {
	read := false
	getenv := func(string) string { read = true; return mutants.CreatedAlways }
	if err := mutant.Start(getenv, "legacy", slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	if read || mutant.Active() != "" || mutant.Is(mutant.CreatedAlways) || mutant.StartupKey() != nil {
		t.Fatalf("production build: read %v, active %q", read, mutant.Active())
	}
}
