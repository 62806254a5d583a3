package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

// TestRunRefusesBrokenStrategies: the production binary does not start with legacy or
// return-existing unless the test-only setting allows them.
func TestRunRefusesBrokenStrategies(t *testing.T) {
	for _, strategy := range []string{"legacy", "return-existing"} {
		env := map[string]string{"TOKENSVC_DATABASE_URL": "postgres://127.0.0.1:1/x", "TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
			"TOKENSVC_AUTH": "disabled", "TOKENSVC_CREATE_STRATEGY": strategy}
		err := run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
			func(k string) string { return env[k] }, func() {})
		if err == nil || !strings.Contains(err.Error(), "TOKENSVC_ALLOW_BROKEN_STRATEGIES=true") || strings.Contains(err.Error(), "\n") {
			t.Errorf("run with %s = %v; want a one-line refusal naming TOKENSVC_ALLOW_BROKEN_STRATEGIES=true", strategy, err)
		}
	}
}

// TestRunFailsClosedWithoutAPIKeys: no keys file, or a malformed one, and the service does not
// start; the error is one line naming what to set, or the file and the line.
func TestRunFailsClosedWithoutAPIKeys(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(bad, []byte("# keys\nm "+keyFor("m")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"":  "no API keys: set TOKENSVC_API_KEYS_FILE",
		bad: "api keys file " + bad + ": line 2: a key where its hash belongs",
	} {
		env := map[string]string{
			"TOKENSVC_DATABASE_URL":     "postgres://127.0.0.1:1/x",
			"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
			"TOKENSVC_API_KEYS_FILE":    file,
		}
		err := run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
			func(k string) string { return env[k] }, func() {})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("run with keys file %q = %v; want one line containing %q", file, err, want)
		}
		if err != nil && strings.Contains(err.Error(), keyFor("m")) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
}

// TestReplicaAuth: a real process refuses a missing key (401 with the Bearer challenge) and
// another merchant's key (403), serves its own, and counts each; with TOKENSVC_AUTH=disabled
// it serves anyone and says so loudly at start.
func TestReplicaAuth(t *testing.T) {
	ctx := context.Background()
	client := &http.Client{Timeout: 10 * time.Second}
	r := startReplica(t, "replica-auth", map[string]string{
		"TOKENSVC_DATABASE_URL":     pg.NewDatabase(t),
		"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
	})
	body := `{"merchant_id":"m","external_id":"c"}`
	if res := sendAs(ctx, client, r, "", body); res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, `"error":"unauthenticated"`) {
		t.Errorf("no key = %+v, want 401 unauthenticated", res)
	}
	if res := sendAs(ctx, client, r, keyFor("m-other"), body); res.Status != http.StatusForbidden ||
		!strings.Contains(res.Body, "this API key may not act for merchant m") {
		t.Errorf("another merchant's key = %+v, want 403 forbidden", res)
	}
	if res := send(ctx, client, r, body); res.Err != nil || res.Status != http.StatusOK || res.Subject == "" {
		t.Errorf("own key = %+v, want 200 with a token", res)
	}
	resp, err := client.Get("http://" + r.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, outcome := range []string{"unauthenticated", "forbidden", "created"} {
		if want := `tokensvc_registrations_total{outcome="` + outcome + `",strategy="atomic"} 1`; !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(r.logs.String(), keyFor("m")) || strings.Contains(r.logs.String(), keyFor("m-other")) {
		t.Error("the logs hold an API key")
	}
	if strings.Contains(r.logs.String(), "unauthenticated registration") {
		t.Error("a 401 was logged at the default level: a burst without keys would flood the logs")
	}
	r.stop(t)

	open := startReplica(t, "replica-open", map[string]string{
		"TOKENSVC_DATABASE_URL":     pg.NewDatabase(t),
		"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
		"TOKENSVC_AUTH":             "disabled",
	})
	if res := sendAs(ctx, client, open, "", `{"merchant_id":"anyone","external_id":"c"}`); res.Status != http.StatusOK {
		t.Errorf("no key with auth disabled = %+v, want 200", res)
	}
	if !strings.Contains(open.logs.String(), `"level":"WARN","msg":"AUTHENTICATION DISABLED`) {
		t.Error("auth disabled without a warning at start")
	}
	open.stop(t)
}

// TestGracefulShutdown: on SIGTERM readiness fails at once, the in-flight request
// still gets its answer, and the process exits cleanly after closing its pool.
func TestGracefulShutdown(t *testing.T) {
	r := startReplica(t, "replica-drain", map[string]string{
		"TOKENSVC_DATABASE_URL":     pg.NewDatabase(t),
		"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
		"TOKENSVC_CREATE_STRATEGY":  "atomic",
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
	for _, want := range []string{`"gomemlimit":120795955`, "shutting down", "http server stopped", "metrics server stopped",
		"database check stopped", "database pool closed"} {
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

// TestMetricsListener: /metrics is served on its own listener and nowhere else, and that
// listener closes on SIGTERM too.
func TestMetricsListener(t *testing.T) {
	r := startReplica(t, "replica-metrics", map[string]string{
		"TOKENSVC_DATABASE_URL":     pg.NewDatabase(t),
		"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
	})
	if r.metricsAddr == "" || r.metricsAddr == r.addr {
		t.Fatalf("metrics address %q, API address %q; want a listener of its own", r.metricsAddr, r.addr)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	if res := send(context.Background(), client, r, `{"merchant_id":"m","external_id":"c"}`); res.Err != nil || res.Status != http.StatusOK {
		t.Fatalf("registration = %+v", res)
	}
	if code, body := get(t, "http://"+r.metricsAddr+"/metrics"); code != http.StatusOK ||
		!strings.Contains(body, `tokensvc_registrations_total{outcome="created",strategy="atomic"} 1`) ||
		!strings.Contains(body, "tokensvc_database_up 1") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics listener /metrics = %d, lacking the service's, Go's or database metrics:\n%s", code, tail(body, 20))
	}
	if code, body := get(t, "http://"+r.addr+"/metrics"); code != http.StatusNotFound || !strings.Contains(body, `"error":"not_found"`) {
		t.Errorf("API listener /metrics = %d %s, want the JSON 404", code, body)
	}
	if code, _ := get(t, "http://"+r.metricsAddr+"/v1/tokens"); code != http.StatusNotFound {
		t.Errorf("metrics listener /v1/tokens = %d, want 404", code)
	}
	r.stop(t)
	if _, err := net.DialTimeout("tcp", r.metricsAddr, time.Second); err == nil {
		t.Error("the metrics listener still accepts connections after SIGTERM")
	}
}
