package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunRefusesToStartWithoutKey(t *testing.T) {
	env := map[string]string{"TOKENSVC_DATABASE_URL": "postgres://127.0.0.1:1/x"}
	err := run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
		func(k string) string { return env[k] }, func() {})
	if err == nil || !strings.Contains(err.Error(), "no signing key") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("run without a key = %v; want a one-line 'no signing key' error", err)
	}
}

// TestGracefulShutdown: on SIGTERM readiness fails at once, the in-flight request
// still gets its answer, and the process exits cleanly after closing its pool.
func TestGracefulShutdown(t *testing.T) {
	r := startReplica(t, "replica-drain", map[string]string{
		"TOKENSVC_DATABASE_URL":    pg.NewDatabase(t),
		"TOKENSVC_SIGNING_KEY":     testKeyPEM(t),
		"TOKENSVC_CREATE_STRATEGY": "atomic",
		// Holds the request in flight long enough to send SIGTERM during it.
		"TOKENSVC_LEGACY_RECHECK_DELAY": "1500ms",
		"TOKENSVC_DRAIN_DELAY":          "500ms",
		"TOKENSVC_MEMORY_LIMIT":         "134217728",
		"GOMEMLIMIT":                    "", // whatever the test's environment says
	})
	inflight := make(chan result, 1)
	go func() {
		inflight <- send(context.Background(), &http.Client{Timeout: 10 * time.Second}, r, `{"merchant_id":"m","external_id":"slow"}`)
	}()
	time.Sleep(300 * time.Millisecond) // pacing the fault on purpose: the request must be in flight
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // inside the 500ms drain delay
	if resp, err := http.Get("http://" + r.addr + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz while draining = %v, %v; want 503", resp, err)
	} else {
		resp.Body.Close()
	}
	if ok, err := r.wait(15 * time.Second); !ok || err != nil {
		t.Fatalf("exit after SIGTERM: exited %v, err %v", ok, err)
	}
	res := <-inflight
	if res.Err != nil || res.Status != http.StatusOK || res.Subject == "" {
		t.Fatalf("in-flight request during shutdown = %+v", res)
	}
	logs := r.logs.String()
	for _, want := range []string{`"gomemlimit":120795955`, "shutting down", "http server stopped", "database check stopped", "database pool closed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("shutdown log lacks %q", want)
		}
	}
}

func TestGoMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		limit      int64
		gomemlimit string
		want       int64
		wantSet    bool
	}{
		{134217728, "", 120795955, true}, // 128 MiB as the downward API gives it
		{10, "", 9, true},
		{1 << 62, "", 4150517416584649113, true}, // no overflow
		{134217728, "100MiB", 0, false},          // GOMEMLIMIT wins
		{134217728, "off", 0, false},
		{0, "", 0, false}, // no container limit known
	} {
		got, set := goMemoryLimit(tc.limit, tc.gomemlimit)
		if got != tc.want || set != tc.wantSet {
			t.Errorf("goMemoryLimit(%d, %q) = %d, %v; want %d, %v", tc.limit, tc.gomemlimit, got, set, tc.want, tc.wantSet)
		}
	}
}
