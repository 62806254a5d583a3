package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

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
