//go:build selftest

package mutant

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/service/mutants"
)

// TestCatalogAndHooksAgree: every catalog entry has an ID, in the catalog's order, and
// every ID a catalog entry.
func TestCatalogAndHooksAgree(t *testing.T) {
	if len(ids) != len(mutants.All) {
		t.Fatalf("%d hooks, %d catalog entries", len(ids), len(mutants.All))
	}
	for i, m := range mutants.All {
		if id, ok := ids[m.Name]; !ok || id != ID(i+1) {
			t.Errorf("catalog entry %d %q has ID %d (known %v), want %d", i, m.Name, id, ok, i+1)
		}
	}
	// The largest ID, whichever mutant was appended last.
	var last ID
	for _, id := range ids {
		last = max(last, id)
	}
	if last != ID(len(mutants.All)) {
		t.Errorf("last ID %d, want %d", last, len(mutants.All))
	}
}

func logTo(buf *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(buf, nil)) }

func TestStart(t *testing.T) {
	t.Cleanup(func() { _ = Set("") })
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == mutants.EnvVar {
				return v
			}
			return ""
		}
	}

	var buf bytes.Buffer
	err := Start(env("created-sometimes"), "atomic", logTo(&buf))
	if err == nil || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), `unknown TOKENSVC_MUTANT "created-sometimes"`) ||
		!strings.Contains(err.Error(), strings.Join(mutants.Names(), ", ")) {
		t.Fatalf("unknown name: %v; want one line naming every valid mutant", err)
	}
	if Active() != "" {
		t.Fatalf("active after a refused start: %q", Active())
	}

	err = Start(env(mutants.CreatedAlways), "fail-fast", logTo(&buf))
	if err == nil || !strings.Contains(err.Error(), "TOKENSVC_CREATE_STRATEGY=atomic") {
		t.Fatalf("mutant on fail-fast: %v; want a refusal naming the atomic strategy", err)
	}

	buf.Reset()
	if err := Start(env(""), "legacy", logTo(&buf)); err != nil || Active() != "" {
		t.Fatalf("no mutant: %v, active %q", err, Active())
	}
	if strings.Contains(buf.String(), "WARN") {
		t.Fatalf("no mutant, yet a warning: %s", buf.String())
	}

	buf.Reset()
	if err := Start(env(mutants.ForeignKey), "atomic", logTo(&buf)); err != nil {
		t.Fatal(err)
	}
	if !Is(ForeignKey) || Is(CreatedAlways) || Active() != mutants.ForeignKey || len(StartupKey()) == 0 {
		t.Fatalf("foreign-key: active %q, key %d bytes", Active(), len(StartupKey()))
	}
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "mutant=foreign-key") {
		t.Fatalf("log = %q; want one warning naming the mutant", buf.String())
	}
}

func TestSetForgetsThePreviousMutant(t *testing.T) {
	t.Cleanup(func() { _ = Set("") })
	if err := Set(mutants.SharedLastCustomer); err != nil {
		t.Fatal(err)
	}
	SetLast("customer")
	if Last() != "customer" {
		t.Fatal("SetLast did not store")
	}
	if err := Set(mutants.SharedLastCustomer); err != nil || Last() != nil {
		t.Fatalf("Set kept the last customer: %v, %v", Last(), err)
	}
	if err := Set(""); err != nil || Is(SharedLastCustomer) || StartupKey() != nil {
		t.Fatalf("Set(\"\"): %v", err)
	}
}
