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

// advisoryLockKey serialises schema changes between replicas starting at once. In pg_locks
// it shows as locktype advisory, classid 1937006957, objid 1885693029 (its two halves).
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

// WithStatementTimeout makes d the statement_timeout of every connection of the pool, unless
// the database URL sets statement_timeout itself (as a parameter or in options). A request's
// context already bounds how long the service waits; this bounds how long the server works
// on a statement nobody waits for any more, and turns a statement stuck behind a lock into an
// error instead of a pool connection held until the request timeout. 0 leaves the server's.
func WithStatementTimeout(d time.Duration) Option {
	return func(c *pgxpool.Config) {
		params := c.ConnConfig.RuntimeParams
		if _, set := params["statement_timeout"]; set || strings.Contains(params["options"], "statement_timeout") || d <= 0 {
			return
		}
		params["statement_timeout"] = pgDuration(d)
	}
}

// WithPassword makes pw the password of every connection, unless pw is empty. It keeps the
// password out of the connection string, which comes from the environment.
func WithPassword(pw string) Option {
	return func(c *pgxpool.Config) {
		if pw != "" {
			c.ConnConfig.Password = pw
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

// DefaultMigrationLockTimeout is how long Prepare waits for the migration lock unless
// told otherwise.
const DefaultMigrationLockTimeout = 30 * time.Second

// PrepareOption adjusts Prepare.
type PrepareOption func(*prepareConfig)

type prepareConfig struct {
	lockTimeout time.Duration
}

// WithMigrationLockTimeout bounds how long Prepare waits for the migration lock, and for
// every other lock the migration takes, to d (positive; otherwise the default stays).
func WithMigrationLockTimeout(d time.Duration) PrepareOption {
	return func(c *prepareConfig) {
		if d > 0 {
			c.lockTimeout = d
		}
	}
}

// Prepare applies the embedded migrations and the index strategy s needs, in one
// transaction that holds a transaction-scoped advisory lock, so that replicas starting
// together do it once. The lock is released when the transaction ends, also when the
// holder's connection dies, and waiting for it is bounded by the lock timeout: a
// replica stuck in its migration cannot block the others' start-up forever. It reports
// whether the unique index exists afterwards.
func Prepare(ctx context.Context, pool *pgxpool.Pool, s Strategy, log *slog.Logger, opts ...PrepareOption) (unique bool, err error) {
	cfg := prepareConfig{lockTimeout: DefaultMigrationLockTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	var (
		applied       []string
		createdUnique bool
	)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// The pool's statement_timeout is sized for requests; waiting for the lock or
		// building an index may take longer, and ctx (the start-up timeout) bounds them.
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return fmt.Errorf("set statement_timeout: %w", err)
		}
		// lock_timeout also bounds the locks the DDL below takes on customers, so a long
		// transaction holding that table fails start-up clearly instead of stalling it.
		if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", pgDuration(cfg.lockTimeout)); err != nil {
			return fmt.Errorf("set lock_timeout: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", advisoryLockKey); err != nil {
			return fmt.Errorf("take migration lock (pg_advisory_xact_lock %d, lock timeout %s): %w", advisoryLockKey, cfg.lockTimeout, err)
		}
		applied, err = migrate(ctx, tx)
		if err != nil {
			return err
		}
		unique, createdUnique, err = ensureIndexes(ctx, tx, s.UniqueKey(), log)
		return err
	})
	if err != nil {
		return false, err
	}
	// Logged after the commit: until then nothing was applied.
	for _, name := range applied {
		log.Info("migration applied", "name", name)
	}
	if createdUnique {
		log.Info("unique index created", "index", uniqueIndex)
	}
	return unique, nil
}

// pgDuration formats d as a PostgreSQL time setting in milliseconds, its base unit, rounding
// a positive d up so that it never becomes 0, which means "no limit".
func pgDuration(d time.Duration) string {
	ms := d.Milliseconds()
	if d > 0 && time.Duration(ms)*time.Millisecond < d {
		ms++
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

// migrate applies the embedded migrations that schema_migrations does not list yet and
// returns their names.
func migrate(ctx context.Context, tx pgx.Tx) ([]string, error) {
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	var applied []string
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number: %w", name, err)
		}
		var done bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version).Scan(&done); err != nil {
			return nil, fmt.Errorf("check migration %s: %w", name, err)
		}
		if done {
			continue
		}
		sql, err := migrations.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return nil, fmt.Errorf("apply migration %s: %w", name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name); err != nil {
			return nil, fmt.Errorf("record migration %s: %w", name, err)
		}
		applied = append(applied, name)
	}
	return applied, nil
}

// ensureIndexes creates the index the strategy needs. It reports whether the unique index
// exists afterwards and whether it created it.
func ensureIndexes(ctx context.Context, db DB, wantUnique bool, log *slog.Logger) (unique, created bool, err error) {
	hasUnique, err := indexExists(ctx, db, uniqueIndex)
	if err != nil {
		return false, false, err
	}
	switch {
	case wantUnique && !hasUnique:
		_, err := db.Exec(ctx, "CREATE UNIQUE INDEX "+uniqueIndex+" ON customers (merchant_id, external_id)")
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return false, false, fmt.Errorf("create unique index: duplicate customers exist (left by the legacy or return-existing strategy?); use a fresh database: %w", err)
		}
		if err != nil {
			return false, false, fmt.Errorf("create unique index: %w", err)
		}
		// The unique index serves lookups too; a second index would only slow inserts.
		if _, err := db.Exec(ctx, "DROP INDEX IF EXISTS "+lookupIndex); err != nil {
			return false, false, fmt.Errorf("drop lookup index: %w", err)
		}
		return true, true, nil
	case !wantUnique && hasUnique:
		// Dropping it could break a replica running a fixed strategy on this database.
		log.Warn("unique index present: duplicates cannot occur, so the legacy race is only partly reproducible; use a fresh database",
			"index", uniqueIndex)
		return true, false, nil
	case !wantUnique:
		if _, err := db.Exec(ctx, "CREATE INDEX IF NOT EXISTS "+lookupIndex+" ON customers (merchant_id, external_id)"); err != nil {
			return false, false, fmt.Errorf("create lookup index: %w", err)
		}
	}
	return hasUnique, false, nil
}

func indexExists(ctx context.Context, db DB, name string) (bool, error) {
	var ok bool
	if err := db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
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
	if mutant.Is(mutant.ReadyBeforePool) && mutant.Warming() {
		return nil, fmt.Errorf("find customer: %w", errPoolWarming)
	}
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

// IsUnavailable reports whether err means the database could not be reached, refused
// service, or was too slow (as opposed to rejecting a statement), so a retry may succeed.
// A statement timeout counts as too slow: the statement was valid, the server was busy or
// the rows it needed were locked, and nothing was written.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),                                 // insufficient resources
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, cannot connect now
			pgErr.Code == "57014": // query_canceled: statement_timeout, or a cancel request
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
	if mutant.Is(mutant.TenantBlindLookup) {
		return findByExternalID(ctx, db, k)
	}
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
