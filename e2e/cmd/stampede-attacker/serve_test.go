package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/attack"
)

// TestServeFlags: a wrong flag or keys file is one line and exit 2, before anything listens.
func TestServeFlags(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(bad, []byte("m-0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-max-rounds=0"},
		{"extra"},
		{"-listen"},
		{"-api-keys=" + filepath.Join(t.TempDir(), "missing")},
		{"-api-keys=" + bad},
	} {
		var stderr bytes.Buffer
		if code := serve(args, func(string) string { return "" }, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("serve %q: exit %d, %q", args, code, stderr.String())
		}
	}
}

// TestServeOn: the server answers its health path until its context ends, then shuts down
// cleanly (exit 0).
func TestServeOn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- serveOn(ctx, ln, attack.NewServer(nil, 1, "", "", slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler))
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + attack.HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(body.String(), "ok") {
		t.Errorf("health: %d %s", resp.StatusCode, body.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after shutdown", code)
	}
}
