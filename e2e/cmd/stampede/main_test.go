package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/targets/tokensvc"
)

// savedRun writes a judged run into root/spec: one customer whose only request was lost in
// transit (a final-credential violation).
func savedRun(t *testing.T, root string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := history.Customer{Tenant: "m", EntityKey: "c"}
	ops := []history.Op{{Customer: c, Phase: history.PhaseBurst, KeyTenant: c.Tenant, Call: 0, Return: time.Second, Error: "EOF"}}
	api, err := tokensvc.API()
	if err != nil {
		t.Fatal(err)
	}
	contract, err := api.Contract("atomic")
	if err != nil {
		t.Fatal(err)
	}
	p := check.Params{API: api, PublicKey: pub, Issuer: "iss", Audience: "aud", TokenTTL: time.Hour, Base: time.Now(), Contract: contract,
		Customers: []history.Customer{c},
		JWKS:      []check.JWKSFetch{{Via: "service", Pod: "pod-a", Status: 200, Body: check.JWKSOf(map[string]ed25519.PublicKey{"k": pub})}}}
	res, err := check.Check(ops, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "spec")
	if err := report.Write(dir, report.Run{Base: p.Base, History: ops, Result: res, Params: p}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheck(t *testing.T) {
	root := t.TempDir()
	dir := savedRun(t, root)
	var out strings.Builder
	if err := run([]string{"check", root}, &out); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	if s := out.String(); !strings.Contains(s, "fail ") || !strings.Contains(s, "final-credential=1") || !strings.Contains(s, "same as live") ||
		!strings.Contains(s, "1 judged runs re-checked, 0 differ") {
		t.Errorf("output:\n%s", s)
	}
	// A saved verdict that the artifacts do not support.
	b, err := os.ReadFile(filepath.Join(dir, report.ViolationsJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(b), `"verdict": "fail"`, `"verdict": "pass"`, 1)
	if err := os.WriteFile(filepath.Join(dir, report.ViolationsJSONFile), []byte(forged), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"check", root}, &out); !errors.Is(err, errDiffers) || !strings.Contains(out.String(), "DIFFERS from live pass") {
		t.Errorf("a forged verdict: %v\n%s", err, out.String())
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"check"}, {"check", "/no/such/dir"}, {"check", t.TempDir()}} {
		if err := run(args, &strings.Builder{}); err == nil || errors.Is(err, errDiffers) {
			t.Errorf("stampede %v: %v, want a usage error", args, err)
		}
	}
}

// soak writes soak.json and soak.md beside the runs and fails on a false alarm on atomic: the
// judged run of savedRun broke final-credential under atomic's contract in a spec that failed.
func TestSoak(t *testing.T) {
	root := t.TempDir()
	run1 := filepath.Join(root, "run1")
	savedRun(t, run1)
	results := func(state string) {
		t.Helper()
		body := `{"run_id": "r1", "seed": 7, "specs": [{"name": "spec", "state": "` + state + `", "figures": {"verdict": "fail"}}]}`
		if err := os.WriteFile(filepath.Join(run1, report.ResultsFile), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	results("failed")
	var out strings.Builder
	err := run([]string{"soak", "-attempted", "2", run1}, &out)
	if !errors.Is(err, errSoakFailed) || !strings.Contains(err.Error(), "1 false alarms on atomic in 1 judged runs") ||
		!strings.Contains(out.String(), "1 runs of 2 started") {
		t.Errorf("a false alarm: %v\n%s", err, out.String())
	}
	for _, name := range []string{report.SoakJSONFile, report.SoakMarkdownFile, report.TrendHTMLFile} {
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			t.Errorf("soak wrote no %s beside the runs: %v", name, err)
		}
	}
	// The same violations in a spec that passed: it expected them (a mutant), no alarm.
	results("passed")
	dest := t.TempDir()
	out.Reset()
	if err := run([]string{"soak", "-out", dest, run1}, &out); err != nil || !strings.Contains(out.String(), "soak passed") {
		t.Errorf("no false alarm: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(dest, report.SoakJSONFile)); err != nil {
		t.Errorf("-out: %v", err)
	}
	for _, args := range [][]string{{"soak"}, {"soak", "/no/such/dir"}, {"soak", "-frobnicate", run1}} {
		if err := run(args, &strings.Builder{}); err == nil || errors.Is(err, errSoakFailed) {
			t.Errorf("stampede %v: %v, want a usage error", args, err)
		}
	}
}

// trend writes one page of the runs under the directories named, and says how many it read; a
// run saved before results.json named its target is the token service's.
func TestTrend(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"20261207T023700Z-seed7", "20261208T023700Z-seed8"} {
		body := `{"run_id": "` + name[len(name)-5:] + `", "seed": 7, "specs": [{"name": "spec", "state": "passed", "figures": {"verdict": "pass"}}]}`
		if err := report.WriteTextFile(filepath.Join(root, name), report.ResultsFile, body); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := run([]string{"trend", root}, &out); err != nil {
		t.Fatalf("trend: %v\n%s", err, out.String())
	}
	name, err := tokensvc.Name()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, report.TrendHTMLFile) + ": 2 runs (" + name + " 2)"; !strings.Contains(out.String(), want) {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	dest := filepath.Join(t.TempDir(), "sub", "page.html")
	if err := run([]string{"trend", "-o", dest, root}, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dest); err != nil {
		t.Errorf("-o: %v", err)
	}
	for _, args := range [][]string{{"trend"}, {"trend", "/no/such/dir"}, {"trend", "-frobnicate", root}, {"trend", t.TempDir()}} {
		if err := run(args, &strings.Builder{}); err == nil {
			t.Errorf("stampede %v: no error", args)
		}
	}
}

func TestFaults(t *testing.T) {
	var b strings.Builder
	if err := run([]string{"faults"}, &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| `scale` | pods replaced, added or removed (no-restart); no error and no lost answer |") || !strings.Contains(b.String(), "| `db-cut` | 503 unavailable") {
		t.Errorf("stampede faults printed:\n%s", b.String())
	}
}
