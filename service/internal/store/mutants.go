package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// errPoolWarming is the ready-before-pool mutant's failure: the replica reported ready before
// its pool could reach the database. Not a server answer, so IsUnavailable takes it for an
// unreachable database and the handler answers 503 unavailable. Only a self-test build returns it.
var errPoolWarming = errors.New("database pool not open yet")

// beginWithoutCommit is the ack-uncommitted mutant's half of a transaction: it begins one on
// db and returns it with the deferred call that ends it, a rollback, because the commit that
// should come before the answer was forgotten. When db cannot begin one (it already is a
// transaction) it returns db itself. Only a self-test build calls it.
func beginWithoutCommit(ctx context.Context, db DB) (DB, func(), error) {
	b, ok := db.(interface {
		Begin(context.Context) (pgx.Tx, error)
	})
	if !ok {
		return db, func() {}, nil
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	return tx, func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }, nil
}

// findByExternalID is the tenant-blind-lookup mutant's find: the classic multi-tenant bug, a
// lookup on external_id alone, which finds another merchant's customer under the same external
// id. Only a self-test build calls it.
func findByExternalID(ctx context.Context, db DB, k Key) (*Customer, error) {
	c, err := scanCustomer(db.QueryRow(ctx, "SELECT "+columns+` FROM customers
		WHERE external_id = $1 ORDER BY created_at, id LIMIT 1`, k.ExternalID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return c, err
}

// insertShadow is the stray-row mutant's extra write: a second row of nc's merchant under
// external id <external_id>-shadow, which no request asked for. Only a self-test build calls it.
func insertShadow(ctx context.Context, db DB, nc NewCustomer) error {
	shadow := NewCustomer{Key: Key{MerchantID: nc.MerchantID, ExternalID: nc.ExternalID + "-shadow"}}
	if _, err := insert(ctx, db, shadow); err != nil {
		return fmt.Errorf("insert shadow row: %w", err)
	}
	return nil
}

// truncatedNameBytes is how much of a name the truncated-name mutant keeps.
const truncatedNameBytes = 8

// truncatedName is the truncated-name mutant's name column: the first truncatedNameBytes bytes
// of name. Only a self-test build calls it.
func truncatedName(name string) string {
	if len(name) > truncatedNameBytes {
		return name[:truncatedNameBytes]
	}
	return name
}
