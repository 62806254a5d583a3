//go:build selftest

package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stampede-e2e/stampede/service/internal/mutant"
	"github.com/stampede-e2e/stampede/service/mutants"
)

// TestRunRefusesUnknownMutant: one line, naming every valid mutant, before any database work.
func TestRunRefusesUnknownMutant(t *testing.T) {
	t.Cleanup(func() { _ = mutant.Set("") })
	env := map[string]string{
		"TOKENSVC_DATABASE_URL":     "postgres://127.0.0.1:1/x",
		"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
		"TOKENSVC_AUTH":             "disabled",
		mutants.EnvVar:              "created-sometimes",
	}
	err := run(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
		func(k string) string { return env[k] }, func() {})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `"created-sometimes"`) ||
		!strings.Contains(err.Error(), strings.Join(mutants.Names(), ", ")) {
		t.Fatalf("run with an unknown mutant = %v; want one line listing the valid names", err)
	}
}

// TestReplicaWithMutant: the variable selects the mutant in a real process, which says so.
func TestReplicaWithMutant(t *testing.T) {
	r := startReplica(t, "replica-mutant", map[string]string{
		"TOKENSVC_DATABASE_URL":     pg.NewDatabase(t),
		"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
		"TOKENSVC_CREATE_STRATEGY":  "atomic",
		mutants.EnvVar:              mutants.CreatedAlways,
	})
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 2 {
		res := send(context.Background(), client, r, `{"merchant_id":"m","external_id":"c"}`)
		if res.Err != nil || res.Status != http.StatusOK || !res.Created {
			t.Fatalf("request %d = %+v; want 200 created:true every time", i, res)
		}
	}
	var warnings []string
	for _, line := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `"mutant":"created-always"`) {
		t.Fatalf("warnings = %q; want one naming the mutant", warnings)
	}
	r.stop(t)
}

// TestReplicaLogsSynchronousCommit: "database ready" names the synchronous_commit of the
// service's own sessions, which the e2e durability canary reads: on, the database's setting,
// without a mutant; off with async-commit, which sets it per connection. (pgtest's server runs
// with it off for speed: the test database is set on, so that only the service can turn it off.)
func TestReplicaLogsSynchronousCommit(t *testing.T) {
	for _, tc := range []struct{ mutant, want string }{{"", "on"}, {mutants.AsyncCommit, "off"}} {
		t.Run("mutant="+tc.mutant, func(t *testing.T) {
			dsn := pg.NewDatabase(t)
			conn, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			var db string
			err = conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&db)
			if err == nil {
				_, err = conn.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET synchronous_commit = on")
			}
			_ = conn.Close(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			r := startReplica(t, "replica-sync-commit", map[string]string{
				"TOKENSVC_DATABASE_URL":     dsn,
				"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
				"TOKENSVC_CREATE_STRATEGY":  "atomic",
				mutants.EnvVar:              tc.mutant,
			})
			r.stop(t)
			var ready []string
			for _, line := range strings.Split(r.logs.String(), "\n") {
				if strings.Contains(line, `"msg":"database ready"`) {
					ready = append(ready, line)
				}
			}
			if len(ready) != 1 || !strings.Contains(ready[0], `"synchronous_commit":"`+tc.want+`"`) {
				t.Fatalf("database ready lines %q; want one with synchronous_commit %s", ready, tc.want)
			}
		})
	}
}
