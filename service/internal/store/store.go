// Package store keeps customers in PostgreSQL through a pgx pool and implements
// the create strategies the e2e suite compares.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-e2e/stampede/service/internal/mutant"
)

//go:embed migrations/*.sql
var migrations embed.FS

// advisoryLockKey serialises schema changes between replicas starting at once.
const advisoryLockKey int64 = 0x7374616d70656465 // "stampede"

// Index names. Exactly one of them exists once Prepare has run.
const (
	uniqueIndex = "customers_merchant_external_key"
	lookupIndex = "customers_merchant_external_idx"
)

// ErrConflict means another request created the same customer at the same moment
// (fail-fast strategy); the client should retry.
var ErrConflict = errors.New("customer is being created by a concurrent request")

// Key identifies a customer.
type Key struct {
	MerchantID string
	ExternalID string
}

// NewCustomer is what a registration knows about a customer.
type NewCustomer struct {
	Key
	Email string // empty means unknown (NULL)
	Name  string // empty means unknown (NULL)
}

// Customer is one row of the customers table.
type Customer struct {
	ID         string
	MerchantID string
	ExternalID string
	Email      *string
	Name       *string
	CreatedAt  time.Time
}

// DB is what the strategies need from a pool, a connection or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Option adjusts the pool that Open makes.
type Option func(*pgxpool.Config)

// WithConnectTimeout bounds each attempt to open a connection (TCP connect, TLS, PostgreSQL
// start-up) to d, unless the database URL sets connect_timeout itself. Without a bound, a dial
// whose SYNs are lost waits for the kernel's SYN timeout, about two minutes; with one, the
// caller's next attempt is a fresh connection.
func WithConnectTimeout(d time.Duration) Option {
	return func(c *pgxpool.Config) {
		if c.ConnConfig.ConnectTimeout == 0 {
			c.ConnConfig.ConnectTimeout = d
		}
	}
}

// Open connects a pool to databaseURL. It does not wait for the server.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "tokensvc"
	if mutant.Is(mutant.AsyncCommit) {
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}

// Prepare applies the embedded migrations and the index strategy s needs, under an
// advisory lock so that replicas starting together do it once. It reports whether
// the unique index exists afterwards.
func Prepare(ctx context.Context, pool *pgxpool.Pool, s Strategy, log *slog.Logger) (unique bool, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", advisoryLockKey); err != nil {
		return false, fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must happen even when ctx is done.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", advisoryLockKey); uerr != nil {
			// The session keeps the lock; drop the connection so the server releases it.
			_ = conn.Conn().Close(uctx)
			err = errors.Join(err, fmt.Errorf("release migration lock: %w", uerr))
		}
	}()
	if err := migrate(ctx, conn.Conn(), log); err != nil {
		return false, err
	}
	return ensureIndexes(ctx, conn.Conn(), s.UniqueKey(), log)
}

func migrate(ctx context.Context, conn *pgx.Conn, log *slog.Logger) error {
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number: %w", name, err)
		}
		var applied bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version).Scan(&applied); err != nil {
			return fmt.Errorf("check migration %s: %w", name, err)
		}
		if applied {
			continue
		}
		sql, err := migrations.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", name, err)
		}
		log.Info("migration applied", "version", version, "name", name)
	}
	return nil
}

func ensureIndexes(ctx context.Context, conn *pgx.Conn, wantUnique bool, log *slog.Logger) (bool, error) {
	hasUnique, err := indexExists(ctx, conn, uniqueIndex)
	if err != nil {
		return false, err
	}
	switch {
	case wantUnique && !hasUnique:
		_, err := conn.Exec(ctx, "CREATE UNIQUE INDEX "+uniqueIndex+" ON customers (merchant_id, external_id)")
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return false, fmt.Errorf("create unique index: duplicate customers exist (left by the legacy or return-existing strategy?); use a fresh database: %w", err)
		}
		if err != nil {
			return false, fmt.Errorf("create unique index: %w", err)
		}
		// The unique index serves lookups too; a second index would only slow inserts.
		if _, err := conn.Exec(ctx, "DROP INDEX IF EXISTS "+lookupIndex); err != nil {
			return false, fmt.Errorf("drop lookup index: %w", err)
		}
		log.Info("unique index created", "index", uniqueIndex)
		return true, nil
	case !wantUnique && hasUnique:
		// Dropping it could break a replica running a fixed strategy on this database.
		log.Warn("unique index present: duplicates cannot occur, so the legacy race is only partly reproducible; use a fresh database",
			"index", uniqueIndex)
		return true, nil
	case !wantUnique:
		if _, err := conn.Exec(ctx, "CREATE INDEX IF NOT EXISTS "+lookupIndex+" ON customers (merchant_id, external_id)"); err != nil {
			return false, fmt.Errorf("create lookup index: %w", err)
		}
	}
	return hasUnique, nil
}

func indexExists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
		return false, fmt.Errorf("check index %s: %w", name, err)
	}
	return ok, nil
}

// Store reads and creates customers with one create strategy.
type Store struct {
	db       DB
	pinger   interface{ Ping(context.Context) error }
	strategy Strategy
	observe  func(op string, d time.Duration, err error)
}

// New returns a Store over pool. observe, if not nil, is told the latency of every
// database call ("find", "create", "ping").
func New(pool *pgxpool.Pool, s Strategy, observe func(op string, d time.Duration, err error)) *Store {
	if observe == nil {
		observe = func(string, time.Duration, error) {}
	}
	return &Store{db: pool, pinger: pool, strategy: s, observe: observe}
}

// Strategy returns the create strategy.
func (s *Store) Strategy() Strategy { return s.strategy }

// Find returns the customer with key k, or nil when there is none. When duplicates
// exist, every replica returns the same one: the oldest.
func (s *Store) Find(ctx context.Context, k Key) (*Customer, error) {
	start := time.Now()
	c, err := find(ctx, s.db, k)
	s.observe("find", time.Since(start), err)
	if err != nil {
		return nil, fmt.Errorf("find customer: %w", err)
	}
	return c, nil
}

// Create runs the strategy's create(). It returns the customer (nil when the
// strategy yields none, as legacy does) and whether this call inserted it.
func (s *Store) Create(ctx context.Context, nc NewCustomer) (*Customer, bool, error) {
	start := time.Now()
	c, created, err := s.strategy.Create(ctx, s.db, nc)
	s.observe("create", time.Since(start), err)
	if err != nil {
		return nil, false, fmt.Errorf("create customer (%s): %w", s.strategy.Name(), err)
	}
	return c, created, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.pinger.Ping(ctx)
	s.observe("ping", time.Since(start), err)
	if err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// IsUnavailable reports whether err means the database could not be reached or
// refused service (as opposed to rejecting a statement), so a retry may succeed.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),                                 // insufficient resources
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutting down, cannot connect now
			return true
		}
		return false
	}
	// Not a server answer: dial failures, timeouts, broken connections.
	return true
}

// DuplicateKeys counts the (merchant_id, external_id) pairs that have more than one row.
func DuplicateKeys(ctx context.Context, db DB) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT 1 FROM customers GROUP BY merchant_id, external_id HAVING count(*) > 1) d`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count duplicate customers: %w", err)
	}
	return n, nil
}

const columns = "id::text, merchant_id, external_id, email, name, created_at"

func scanCustomer(row pgx.Row) (*Customer, error) {
	var c Customer
	if err := row.Scan(&c.ID, &c.MerchantID, &c.ExternalID, &c.Email, &c.Name, &c.CreatedAt); err != nil {
		return nil, err
	}
	return &c, nil
}

func find(ctx context.Context, db DB, k Key) (*Customer, error) {
	c, err := scanCustomer(db.QueryRow(ctx, "SELECT "+columns+` FROM customers
		WHERE merchant_id = $1 AND external_id = $2 ORDER BY created_at, id LIMIT 1`, k.MerchantID, k.ExternalID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return c, err
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func insert(ctx context.Context, db DB, nc NewCustomer) (*Customer, error) {
	return scanCustomer(db.QueryRow(ctx, `INSERT INTO customers (merchant_id, external_id, email, name)
		VALUES ($1, $2, $3, $4) RETURNING `+columns, nc.MerchantID, nc.ExternalID, nullIfEmpty(nc.Email), nullIfEmpty(nc.Name)))
}
