package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/pgtest"
	"github.com/stampede-e2e/stampede/service/internal/store"
)

var pg *pgtest.Server

func TestMain(m *testing.M) {
	os.Exit(pgtest.RunTests(m, func(s *pgtest.Server) { pg = s }))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// prepared returns a pool on a fresh database prepared for strategy name.
func prepared(t *testing.T, name config.Strategy) (*pgxpool.Pool, store.Strategy) {
	t.Helper()
	ctx := context.Background()
	pool, err := store.Open(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := store.StrategyFor(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Prepare(ctx, pool, s, quiet); err != nil {
		t.Fatal(err)
	}
	return pool, s
}

// TestStrategyLostRace replays the race deterministically: the handler's lookup saw
// no customer, then the winner's row landed, then the loser's create() runs.
func TestStrategyLostRace(t *testing.T) {
	for _, tc := range []struct {
		name        config.Strategy
		wantNil     bool
		wantErr     error
		wantWinner  bool
		wantCreated bool
	}{
		{name: config.StrategyLegacy, wantNil: true},
		{name: config.StrategyReturnExisting, wantWinner: true},
		{name: config.StrategyFailFast, wantNil: true, wantErr: store.ErrConflict},
		{name: config.StrategyAtomic, wantWinner: true},
	} {
		t.Run(string(tc.name), func(t *testing.T) {
			ctx := context.Background()
			pool, strategy := prepared(t, tc.name)
			st := store.New(pool, strategy, nil)
			nc := store.NewCustomer{Key: store.Key{MerchantID: "m", ExternalID: "e"}, Email: "a@b.c"}

			winner, created, err := st.Create(ctx, nc)
			if err != nil || winner == nil || !created || winner.ID == "" {
				t.Fatalf("first create = %+v, %v, %v", winner, created, err)
			}
			if winner.Email == nil || *winner.Email != "a@b.c" || winner.Name != nil {
				t.Fatalf("optional fields = %v, %v", winner.Email, winner.Name)
			}

			got, created, err := strategy.Create(ctx, pool, nc)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("loser error = %v, want %v", err, tc.wantErr)
			}
			if created {
				t.Fatal("loser reports created")
			}
			if tc.wantNil != (got == nil) {
				t.Fatalf("loser customer = %+v, want nil=%v", got, tc.wantNil)
			}
			if tc.wantWinner && (got.ID != winner.ID || !got.CreatedAt.Equal(winner.CreatedAt)) {
				t.Fatalf("loser got %+v, want the winner %+v", got, winner)
			}
			if n, err := store.DuplicateKeys(ctx, pool); err != nil || n != 0 {
				t.Fatalf("duplicates = %d, %v", n, err)
			}
		})
	}
}

// TestUniqueStrategiesPreventDuplicates proves the constraint is really there: a
// raw second insert must fail for fail-fast and atomic, and succeed for the others.
func TestUniqueStrategiesPreventDuplicates(t *testing.T) {
	for _, name := range config.Strategies {
		t.Run(string(name), func(t *testing.T) {
			ctx := context.Background()
			pool, strategy := prepared(t, name)
			insert := "INSERT INTO customers (merchant_id, external_id) VALUES ('m', 'e')"
			if _, err := pool.Exec(ctx, insert); err != nil {
				t.Fatal(err)
			}
			_, err := pool.Exec(ctx, insert)
			var pgErr *pgconn.PgError
			gotUnique := errors.As(err, &pgErr) && pgErr.Code == "23505"
			if gotUnique != strategy.UniqueKey() {
				t.Fatalf("second insert error = %v; unique constraint expected: %v", err, strategy.UniqueKey())
			}
		})
	}
}

func TestFindReturnsOldestDuplicate(t *testing.T) {
	ctx := context.Background()
	pool, strategy := prepared(t, config.StrategyLegacy)
	_, err := pool.Exec(ctx, `INSERT INTO customers (id, merchant_id, external_id, created_at) VALUES
		('00000000-0000-0000-0000-000000000002', 'm', 'e', '2025-01-01T00:00:01Z'),
		('00000000-0000-0000-0000-000000000003', 'm', 'e', '2025-01-01T00:00:00Z'),
		('00000000-0000-0000-0000-000000000001', 'm', 'e', '2025-01-01T00:00:01Z')`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := store.New(pool, strategy, nil).Find(ctx, store.Key{MerchantID: "m", ExternalID: "e"})
	if err != nil || c == nil || c.ID != "00000000-0000-0000-0000-000000000003" {
		t.Fatalf("Find = %+v, %v; want the oldest row", c, err)
	}
	if n, err := store.DuplicateKeys(ctx, pool); err != nil || n != 1 {
		t.Fatalf("DuplicateKeys = %d, %v; want 1", n, err)
	}
}

// TestPrepareConcurrently starts several "replicas" at once on one database.
func TestPrepareConcurrently(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			pool, err := store.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			_, errs[i] = store.Prepare(ctx, pool, store.Atomic{}, quiet)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	pool, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var migrations int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&migrations); err != nil || migrations != 1 {
		t.Fatalf("schema_migrations rows = %d, %v", migrations, err)
	}
}

// TestPrepareMigrationLockTimeout: while another session holds the migration lock (a
// replica stuck in its migration), Prepare gives up within its lock timeout with an error
// naming the lock, and succeeds once the holder is gone.
func TestPrepareMigrationLockTimeout(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	holder := holdMigrationLock(t, url)
	pool, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	const bound = 300 * time.Millisecond
	// Were the wait unbounded, this deadline would end it, and the error would not say lock timeout.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = store.Prepare(wctx, pool, store.Atomic{}, quiet, store.WithMigrationLockTimeout(bound))
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "take migration lock (pg_advisory_xact_lock") ||
		!strings.Contains(err.Error(), "lock timeout") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Prepare while the lock is held = %v; want one line naming the migration lock and the timeout", err)
	}
	if took < bound || took > bound+2*time.Second {
		t.Fatalf("Prepare gave up after %s, want about %s", took, bound)
	}
	// Start-up does not retry it as if the database were down: the holder is alive.
	if store.IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = true", err)
	}
	t.Logf("Prepare gave up after %s: %v", took, err)

	// The holder dies (its connection closes); the server releases its lock.
	if err := holder.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Prepare(ctx, pool, store.Atomic{}, quiet, store.WithMigrationLockTimeout(5*time.Second)); err != nil {
		t.Fatalf("Prepare after the holder died: %v", err)
	}
	// And Prepare's own lock ended with its transaction.
	var held int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").Scan(&held); err != nil || held != 0 {
		t.Fatalf("advisory locks held after Prepare: %d, %v", held, err)
	}
}

func TestPrepareRefusesUniqueIndexOverDuplicates(t *testing.T) {
	ctx := context.Background()
	pool, _ := prepared(t, config.StrategyLegacy)
	for range 2 {
		if _, err := pool.Exec(ctx, "INSERT INTO customers (merchant_id, external_id) VALUES ('m', 'e')"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := store.Prepare(ctx, pool, store.Atomic{}, quiet)
	if err == nil || !strings.Contains(err.Error(), "duplicate customers exist") {
		t.Fatalf("Prepare(atomic) over duplicates = %v", err)
	}
	// A legacy replica on a database a fixed strategy prepared keeps the index.
	pool2, _ := prepared(t, config.StrategyAtomic)
	unique, err := store.Prepare(ctx, pool2, store.Legacy{}, quiet)
	if err != nil || !unique {
		t.Fatalf("Prepare(legacy) after atomic = %v, %v; want unique index kept", unique, err)
	}
}

func TestIsUnavailable(t *testing.T) {
	ctx := context.Background()
	pool, err := store.Open(ctx, "postgres://nobody@127.0.0.1:1/x?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	perr := store.New(pool, store.Atomic{}, nil).Ping(ctx)
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{perr, true},
		{context.DeadlineExceeded, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "57014"}, true},
		{&pgconn.PgError{Code: "55P03"}, false},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "42P01"}, false},
		{context.Canceled, false},
		{nil, false},
	} {
		if got := store.IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestConnectTimeout dials a server that accepts TCP connections and never answers PostgreSQL's
// start-up, as a server behind lost packets would look: the connection attempt must fail within
// the bound instead of waiting for the kernel's timeouts.
func TestConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // never accepted: the kernel completes the handshake, nothing ever answers
	url := fmt.Sprintf("postgres://nobody@%s/x?sslmode=disable", ln.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const bound = 300 * time.Millisecond
	pool, err := store.Open(ctx, url, store.WithConnectTimeout(bound))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().ConnConfig.ConnectTimeout; got != bound {
		t.Fatalf("ConnectTimeout = %s, want %s", got, bound)
	}
	start := time.Now()
	err = pool.Ping(ctx)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Ping of a server that never answers succeeded")
	}
	if took > bound+2*time.Second || ctx.Err() != nil {
		t.Fatalf("Ping failed after %s (%v), want within about %s", took, err, bound)
	}
	t.Logf("Ping failed after %s: %v", took, err)

	// A connect_timeout in the URL wins over the option.
	pool2, err := store.Open(ctx, url+"&connect_timeout=7", store.WithConnectTimeout(bound))
	if err != nil {
		t.Fatal(err)
	}
	defer pool2.Close()
	if got := pool2.Config().ConnConfig.ConnectTimeout; got != 7*time.Second {
		t.Errorf("ConnectTimeout with connect_timeout=7 in the URL = %s, want 7s", got)
	}
}

// TestStatementTimeout: a statement that runs longer than the pool's statement timeout fails
// with PostgreSQL's statement-timeout error, which the service takes for a transient condition.
func TestStatementTimeout(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	const bound = 200 * time.Millisecond
	pool, err := store.Open(ctx, url, store.WithStatementTimeout(bound))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().ConnConfig.RuntimeParams["statement_timeout"]; got != "200ms" {
		t.Fatalf("statement_timeout run-time parameter = %q, want 200ms", got)
	}
	start := time.Now()
	_, err = pool.Exec(ctx, "SELECT pg_sleep(5)")
	took := time.Since(start)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" || !strings.Contains(pgErr.Message, "statement timeout") {
		t.Fatalf("pg_sleep(5) with a %s statement timeout = %v; want SQLSTATE 57014 statement timeout", bound, err)
	}
	if took < bound || took > bound+2*time.Second {
		t.Fatalf("pg_sleep(5) failed after %s, want about %s", took, bound)
	}
	if !store.IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = false; a statement timeout is transient", err)
	}

	// A statement_timeout in the URL, as a parameter or in options, wins over the option.
	for _, u := range []string{url + "&statement_timeout=5000", url + "&options=-c%20statement_timeout%3D5000"} {
		p, err := store.Open(ctx, u, store.WithStatementTimeout(bound))
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = p.QueryRow(ctx, "SHOW statement_timeout").Scan(&got)
		p.Close()
		if err != nil || got != "5s" {
			t.Errorf("%s: statement_timeout = %q, %v; want the URL's 5s", u, got, err)
		}
	}
}

// TestPrepareIgnoresStatementTimeout: the pool's statement timeout is for requests; start-up
// waits for the migration lock longer than that and still succeeds.
func TestPrepareIgnoresStatementTimeout(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	holder := holdMigrationLock(t, url)
	pool, err := store.Open(ctx, url, store.WithStatementTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const held = 500 * time.Millisecond
	released := make(chan error, 1)
	go func() {
		time.Sleep(held) // pacing on purpose: the lock is held across several statement timeouts
		_, err := holder.Exec(ctx, "SELECT pg_advisory_unlock($1)", store.MigrationLockKey)
		released <- err
	}()
	start := time.Now()
	if _, err := store.Prepare(ctx, pool, store.Atomic{}, quiet, store.WithMigrationLockTimeout(10*time.Second)); err != nil {
		t.Fatalf("Prepare with a 50ms statement timeout, lock held for %s: %v", held, err)
	}
	if took := time.Since(start); took < held {
		t.Fatalf("Prepare finished after %s, before the lock was released", took)
	}
	if err := <-released; err != nil {
		t.Fatal(err)
	}
}

// holdMigrationLock takes the migration lock in a session of its own, as a replica stuck in its
// migration would hold it; closing the returned connection releases it (the test's cleanup
// does, unless the test closes it first).
func holdMigrationLock(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close(context.Background()) })
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1)", store.MigrationLockKey); err != nil {
		t.Fatal(err)
	}
	return holder
}
