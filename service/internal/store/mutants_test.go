//go:build selftest

package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/mutant"
	"github.com/stampede-e2e/stampede/service/internal/store"
	"github.com/stampede-e2e/stampede/service/mutants"
)

// use activates mutant name for the rest of t; before prepared, as at start.
func use(t *testing.T, name string) {
	t.Helper()
	if err := mutant.Set(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mutant.Set("") })
}

// blindReads is a DB whose SELECTs find nothing: every read ran before any insert, as when
// two requests read at the same moment and then both write.
type blindReads struct{ store.DB }

func (b blindReads) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if strings.HasPrefix(strings.TrimSpace(sql), "SELECT") {
		return noRow{}
	}
	return b.DB.QueryRow(ctx, sql, args...)
}

type noRow struct{}

func (noRow) Scan(...any) error { return pgx.ErrNoRows }

var nc = store.NewCustomer{Key: store.Key{MerchantID: "m", ExternalID: "e"}}

// TestNoUniqueIndexDuplicates: with no-unique-index, atomic prepares no unique index and two
// simultaneous first registrations both insert.
func TestNoUniqueIndexDuplicates(t *testing.T) {
	use(t, mutants.NoUniqueIndex)
	ctx := context.Background()
	pool, strategy := prepared(t, config.StrategyAtomic)
	if strategy.UniqueKey() {
		t.Fatal("atomic still asks for the unique index")
	}
	unique, err := store.Prepare(ctx, pool, strategy, quiet)
	if err != nil || unique {
		t.Fatalf("Prepare = unique %v, %v; want no unique index", unique, err)
	}
	a, createdA, errA := strategy.Create(ctx, blindReads{pool}, nc)
	b, createdB, errB := strategy.Create(ctx, blindReads{pool}, nc)
	if errA != nil || errB != nil || !createdA || !createdB || a.ID == b.ID {
		t.Fatalf("two simultaneous creates = (%+v, %v, %v), (%+v, %v, %v); want two rows", a, createdA, errA, b, createdB, errB)
	}
	if n, err := store.DuplicateKeys(ctx, pool); err != nil || n != 1 {
		t.Fatalf("DuplicateKeys = %d, %v; want 1", n, err)
	}
}

// TestAckUncommittedLosesTheRow: the create answers with a row that is gone once it returns.
func TestAckUncommittedLosesTheRow(t *testing.T) {
	use(t, mutants.AckUncommitted)
	ctx := context.Background()
	pool, strategy := prepared(t, config.StrategyAtomic)
	st := store.New(pool, strategy, nil)
	c, created, err := st.Create(ctx, nc)
	if err != nil || !created || c == nil || c.ID == "" {
		t.Fatalf("Create = %+v, %v, %v", c, created, err)
	}
	if got, err := st.Find(ctx, nc.Key); err != nil || got != nil {
		t.Fatalf("Find after the acknowledged create = %+v, %v; want no row", got, err)
	}
	// The pool is not left holding the transaction's connection.
	if n := pool.Stat().AcquiredConns(); n != 0 {
		t.Fatalf("%d connections still acquired", n)
	}
}

// TestLoserUnavailableLooksLikeAnOutage: the loser's error is one the handler answers 503,
// although the database is up and answered.
func TestLoserUnavailableLooksLikeAnOutage(t *testing.T) {
	use(t, mutants.LoserUnavailable)
	ctx := context.Background()
	pool, strategy := prepared(t, config.StrategyAtomic)
	if _, created, err := strategy.Create(ctx, pool, nc); err != nil || !created {
		t.Fatalf("winner: %v, %v", created, err)
	}
	_, _, err := strategy.Create(ctx, pool, nc)
	var pgErr *pgconn.PgError
	if err == nil || !store.IsUnavailable(err) || errors.As(err, &pgErr) {
		t.Fatalf("loser error = %v; want one IsUnavailable takes for an outage", err)
	}
}

// TestAsyncCommitPool: every connection of a pool opened with async-commit asks for
// synchronous_commit=off; without it none does.
func TestAsyncCommitPool(t *testing.T) {
	for _, tc := range []struct {
		mutant string
		client bool
	}{{"", false}, {mutants.AsyncCommit, true}} {
		t.Run("mutant="+tc.mutant, func(t *testing.T) {
			use(t, tc.mutant)
			pool, _ := prepared(t, config.StrategyAtomic)
			var setting, source string
			err := pool.QueryRow(context.Background(),
				"SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'").Scan(&setting, &source)
			if err != nil {
				t.Fatal(err)
			}
			// pgtest's server itself runs with synchronous_commit=off: what matters is who set it.
			if got := source == "client" && setting == "off"; got != tc.client {
				t.Fatalf("synchronous_commit = %s from %s", setting, source)
			}
		})
	}
}
