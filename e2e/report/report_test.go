package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

func TestWrite(t *testing.T) {
	c := history.Customer{Index: 0, Tenant: "m-1-0", EntityKey: "c-1-0"}
	ops := []history.Op{
		{Customer: c, Seq: 0, Phase: history.PhaseBurst, Call: 0, Return: 5 * time.Millisecond, Status: 200, Pod: "pod-a"},
		{Customer: c, Seq: 1, Phase: history.PhaseBurst, Call: 0, Return: 5 * time.Millisecond, Error: "EOF"},
		{Customer: c, Seq: 1, Attempt: 1, Phase: history.PhaseRetry, Call: time.Second, Return: time.Second + 1, Status: 500, Body: "oops", Pod: "pod-b"},
	}
	res := check.Result{
		Verdict: check.VerdictFail, Customers: 1, Requests: 3, Successes: 1, Unknown: 1,
		Counts: map[check.Rule]int{check.RuleCleanError: 1},
		Violations: []check.Violation{{Rule: check.RuleCleanError, Customer: c, Pods: []string{"pod-b"},
			Requests: []check.Request{{ID: "0/1/1", Seq: 1, Attempt: 1, Status: 500, Pod: "pod-b"}}, Details: []string{"not JSON"}}},
	}
	dir := filepath.Join(t.TempDir(), "artifacts")
	if err := Write(dir, Run{Repro: "STAMPEDE_SEED=1 make e2e", Base: time.Now(), History: ops, Result: res}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	f, err := os.Open(filepath.Join(dir, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if back, err := history.ReadJSONL(f); err != nil || len(back) != len(ops) {
		t.Errorf("history.jsonl: %d ops, %v", len(back), err)
	}
	for name, wants := range map[string][]string{
		ResultFile: {"repro: STAMPEDE_SEED=1 make e2e", "verdict: fail", "requests: 3 (2xx 1, clean errors 0, unknown 1, retries 1)",
			"pods hit: 2", "pod-a", "(no response) 1", "clean-error 1", "p50 5ms"},
		ViolationsTextFile: {"clean-error", "0/1/1", "not JSON"},
		ViolationsJSONFile: {`"verdict": "fail"`, `"rule": "clean-error"`},
		MetricsFile:        {`"burst":`, `"retry":`, `"200": 1`},
	} {
		got := strings.Join(strings.Fields(read(name)), " ")
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, got)
			}
		}
	}
}

func TestWriteReportsUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(file, "sub"), Run{}); err == nil {
		t.Error("Write into a path under a file: no error")
	}
}

func TestMetricsFromHistory(t *testing.T) {
	c := history.Customer{Tenant: "m", EntityKey: "c"}
	ops := []history.Op{
		{Customer: c, Phase: history.PhaseBurst, Call: 0, Return: 10 * time.Millisecond, Status: 200},
		{Customer: c, Seq: 1, Phase: history.PhaseBurst, Call: time.Millisecond, Return: 31 * time.Millisecond, Status: 409},
		{Customer: c, Seq: 1, Attempt: 1, Phase: history.PhaseRetry, Call: time.Second, Return: time.Second + 2*time.Millisecond, Status: 200},
		{Customer: c, Seq: 2, Phase: history.PhaseBurst, Call: time.Millisecond, Error: "timeout"},
	}
	m := Metrics(ops, time.Now(), history.PhaseBurst)
	if m.Requests != 3 || m.StatusCodes["200"] != 1 || m.StatusCodes["409"] != 1 || m.StatusCodes["0"] != 1 {
		t.Errorf("burst metrics: %d requests, codes %v", m.Requests, m.StatusCodes)
	}
	if m.Latencies.Max != 30*time.Millisecond {
		t.Errorf("burst max latency %v, want 30ms", m.Latencies.Max)
	}
	if r := Metrics(ops, time.Now(), history.PhaseRetry); r.Requests != 1 || r.Latencies.Max != 2*time.Millisecond {
		t.Errorf("retry metrics: %d requests, max %v", r.Requests, r.Latencies.Max)
	}
}
