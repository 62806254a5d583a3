package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDatabaseCheckOutlivesFullPool: while every connection of a replica's pool is held by a
// registration waiting on a lock, the background database check, on its own connection,
// keeps answering and the replica never reports the database down. Before it had its own
// connection, its ping waited for a pooled one and reported "database down" for as long as
// the burst lasted.
func TestDatabaseCheckOutlivesFullPool(t *testing.T) {
	ctx := context.Background()
	dbURL := pg.NewDatabase(t)
	r := startReplica(t, "replica-full-pool", map[string]string{
		"TOKENSVC_DATABASE_URL":      dbURL + "&pool_max_conns=1",
		"TOKENSVC_SIGNING_KEY_FILE":  testKeyFile(t),
		"TOKENSVC_DB_CHECK_INTERVAL": "100ms",
		// The registration waits on the lock for as long as the test holds it.
		"TOKENSVC_STATEMENT_TIMEOUT": "0",
		"TOKENSVC_REQUEST_TIMEOUT":   "30s",
	})
	admin := connect(t, dbURL)
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	answered := make(chan result, 1)
	go func() {
		answered <- send(ctx, &http.Client{Timeout: 40 * time.Second}, r, `{"merchant_id":"m","external_id":"held"}`)
	}()
	// The pool's one connection waits on the lock: the pool is full.
	watcher := connect(t, dbURL)
	waitUntil(t, 10*time.Second, "the pool's connection waiting on the lock", func() bool {
		var n int
		err := watcher.QueryRow(ctx,
			"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tokensvc' AND wait_event_type = 'Lock'").Scan(&n)
		return err == nil && n == 1
	})
	before := pings(t, r)
	waitUntil(t, 10*time.Second, "5 checks while the pool is full", func() bool {
		c := pings(t, r)
		return c.ok+c.failed >= before.ok+before.failed+5
	})
	during := pings(t, r)
	if during.failed != before.failed || strings.Contains(r.logs.String(), "database down") {
		t.Errorf("with the pool full, %d of the checks failed and the logs say database down: %v", during.failed-before.failed,
			strings.Contains(r.logs.String(), "database down"))
	}
	if body := getBody(t, "http://"+r.addr+"/readyz"); !strings.Contains(body, `"database":"up"`) {
		t.Errorf("/readyz with the pool full = %s, want the database up", body)
	}
	select {
	case res := <-answered:
		t.Fatalf("the registration was answered while the lock was held: %+v; the pool was not full", res)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if res := <-answered; res.Err != nil || res.Status != http.StatusOK {
		t.Errorf("the held registration after the lock's release = %+v, want 200", res)
	}
	r.stop(t)
}

// TestDatabaseCheckSeesOutage: when the database refuses the replica's connections (its
// backends terminated, new connections not allowed), the check reports it down within a few
// intervals, and up again once it lets them in.
func TestDatabaseCheckSeesOutage(t *testing.T) {
	ctx := context.Background()
	dbURL := pg.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	r := startReplica(t, "replica-outage", map[string]string{
		"TOKENSVC_DATABASE_URL":      dbURL,
		"TOKENSVC_SIGNING_KEY_FILE":  testKeyFile(t),
		"TOKENSVC_DB_CHECK_INTERVAL": "100ms",
	})
	admin := connect(t, pg.URL("postgres"))
	allow := func(on bool) {
		t.Helper()
		if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %t", db, on)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { allow(true) })
	allow(false)
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", strings.Trim(db, `"`)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the replica to report the database down", func() bool {
		return strings.Contains(r.logs.String(), `"msg":"database down"`) &&
			strings.Contains(getBody(t, "http://"+r.addr+"/readyz"), `"database":"down"`)
	})
	allow(true)
	waitUntil(t, 10*time.Second, "the replica to report the database up again", func() bool {
		return strings.Contains(r.logs.String(), `"msg":"database up again"`) &&
			strings.Contains(getBody(t, "http://"+r.addr+"/readyz"), `"database":"up"`)
	})
	r.stop(t)
}

// connect opens a connection to url for the test.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// waitUntil polls cond until it holds, and fails the test if it does not within limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by the deadline
	}
}

// get returns the status and body of a GET of url, failing the test when it gets no answer.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// getBody returns the body of a GET of url.
func getBody(t *testing.T, url string) string {
	t.Helper()
	_, body := get(t, url)
	return body
}

// pingCounts are the replica's database checks so far, by result.
type pingCounts struct{ ok, failed int }

var pingCount = regexp.MustCompile(`(?m)^tokensvc_db_call_duration_seconds_count\{op="ping",result="(ok|error)"\} (\d+)$`)

// pings reads the replica's database check counts from its metrics.
func pings(t *testing.T, r *replica) pingCounts {
	t.Helper()
	var c pingCounts
	for _, m := range pingCount.FindAllStringSubmatch(getBody(t, "http://"+r.metricsAddr+"/metrics"), -1) {
		n, _ := strconv.Atoi(m[2]) // the regexp matched digits
		if m[1] == "ok" {
			c.ok = n
		} else {
			c.failed = n
		}
	}
	return c
}
