package store_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stampede-e2e/stampede/service/internal/store"
)

// TestWithPassword: a role that must log in with a password (scram-sha-256) gets in with the
// password given apart from the connection string, on the pool and on the Checker's own
// connection, and not with a wrong one.
func TestWithPassword(t *testing.T) {
	ctx := context.Background()
	dbURL := pg.NewDatabase(t)
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := "pw_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	const password = "s3cret 'pw"
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s",
		pgx.Identifier{role}.Sanitize(), quoteLiteral(password))); err != nil {
		t.Fatal(err)
	}
	// pgtest's server trusts every login: make this role, and only it, use a password.
	var hbaFile string
	if err := admin.QueryRow(ctx, "SHOW hba_file").Scan(&hbaFile); err != nil {
		t.Fatal(err)
	}
	hba, err := os.ReadFile(hbaFile)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("host all %s 127.0.0.1/32 scram-sha-256\n", role)
	if err := os.WriteFile(hbaFile, append([]byte(line), hba...), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.WriteFile(hbaFile, hba, 0o600)
		_, _ = admin.Exec(context.Background(), "SELECT pg_reload_conf()")
	})
	if _, err := admin.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)

	for _, tc := range []struct {
		password string
		ok       bool
	}{{password, true}, {"wrong", false}} {
		pool, err := store.Open(ctx, u.String(), store.WithPassword(tc.password))
		if err != nil {
			t.Fatal(err)
		}
		checker := store.NewChecker(pool, nil)
		poolErr, checkErr := pool.Ping(ctx), checker.Ping(ctx)
		checker.Close()
		pool.Close()
		if (poolErr == nil) != tc.ok || (checkErr == nil) != tc.ok {
			t.Errorf("password %q: pool ping %v, check %v; want success %v", tc.password, poolErr, checkErr, tc.ok)
		}
	}
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
