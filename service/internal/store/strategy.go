package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/mutant"
)

// Strategy is one way of implementing create(): what happens when the handler's
// lookup found no customer and it asks for one to be created.
type Strategy interface {
	// Name is the TOKENSVC_CREATE_STRATEGY value.
	Name() config.Strategy
	// UniqueKey reports whether the strategy needs the unique index on
	// (merchant_id, external_id).
	UniqueKey() bool
	// Create returns the customer and whether this call inserted it. Legacy may
	// return a nil customer with a nil error; that is the bug it reproduces.
	Create(ctx context.Context, db DB, nc NewCustomer) (*Customer, bool, error)
}

// StrategyFor returns the Strategy called name.
func StrategyFor(name config.Strategy) (Strategy, error) {
	switch name {
	case config.StrategyLegacy:
		return Legacy{}, nil
	case config.StrategyReturnExisting:
		return ReturnExisting{}, nil
	case config.StrategyFailFast:
		return FailFast{}, nil
	case config.StrategyAtomic:
		return Atomic{}, nil
	}
	return nil, fmt.Errorf("strategy for %q: unknown", name)
}

// Legacy is the seed's create(): re-check, and when the row now exists (another
// replica won the race) return nil, which the handler then signs.
type Legacy struct{}

// Name implements Strategy.
func (Legacy) Name() config.Strategy { return config.StrategyLegacy }

// UniqueKey implements Strategy: the legacy backend had no unique constraint.
func (Legacy) UniqueKey() bool { return false }

// Create implements Strategy.
func (Legacy) Create(ctx context.Context, db DB, nc NewCustomer) (*Customer, bool, error) {
	existing, err := find(ctx, db, nc.Key)
	if err != nil {
		return nil, false, fmt.Errorf("re-check: %w", err)
	}
	if existing != nil {
		// Faithful to the seed: "already exists" comes back as null.
		return nil, false, nil
	}
	c, err := insert(ctx, db, nc)
	if err != nil {
		return nil, false, fmt.Errorf("insert: %w", err)
	}
	return c, true, nil
}

// ReturnExisting is the seed's one-line fix: the re-check returns the row it found.
// Without a unique constraint two requests can both pass the re-check and insert.
type ReturnExisting struct{}

// Name implements Strategy.
func (ReturnExisting) Name() config.Strategy { return config.StrategyReturnExisting }

// UniqueKey implements Strategy.
func (ReturnExisting) UniqueKey() bool { return false }

// Create implements Strategy.
func (ReturnExisting) Create(ctx context.Context, db DB, nc NewCustomer) (*Customer, bool, error) {
	existing, err := find(ctx, db, nc.Key)
	if err != nil {
		return nil, false, fmt.Errorf("re-check: %w", err)
	}
	if existing != nil {
		return existing, false, nil
	}
	c, err := insert(ctx, db, nc)
	if err != nil {
		return nil, false, fmt.Errorf("insert: %w", err)
	}
	return c, true, nil
}

// FailFast inserts and lets the unique constraint decide; the loser gets ErrConflict.
type FailFast struct{}

// Name implements Strategy.
func (FailFast) Name() config.Strategy { return config.StrategyFailFast }

// UniqueKey implements Strategy.
func (FailFast) UniqueKey() bool { return true }

// Create implements Strategy.
func (FailFast) Create(ctx context.Context, db DB, nc NewCustomer) (*Customer, bool, error) {
	c, err := insert(ctx, db, nc)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == uniqueIndex {
		return nil, false, ErrConflict
	}
	if err != nil {
		return nil, false, fmt.Errorf("insert: %w", err)
	}
	return c, true, nil
}

// Atomic inserts with ON CONFLICT DO NOTHING and, when it lost, reads the winner's
// row. ON CONFLICT waits for the winner's transaction, so the read sees its row.
type Atomic struct{}

// Name implements Strategy.
func (Atomic) Name() config.Strategy { return config.StrategyAtomic }

// UniqueKey implements Strategy.
func (Atomic) UniqueKey() bool {
	if mutant.Is(mutant.NoUniqueIndex) {
		return false
	}
	return true
}

// Create implements Strategy. The mutant.Is branches are the self-test build's broken
// variants (service/mutants); a production build compiles them away.
func (Atomic) Create(ctx context.Context, db DB, nc NewCustomer) (*Customer, bool, error) {
	if mutant.Is(mutant.NoUniqueIndex) {
		return ReturnExisting{}.Create(ctx, db, nc) // find, then a plain insert
	}
	if mutant.Is(mutant.ConflictWithoutRace) && mutant.ConflictNow() {
		return nil, false, ErrConflict // no insert ran, so nothing it could have raced
	}
	if mutant.Is(mutant.AckUncommitted) {
		tx, rollback, err := beginWithoutCommit(ctx, db)
		if err != nil {
			return nil, false, err
		}
		defer rollback()
		db = tx
	}
	if mutant.Is(mutant.TruncatedName) {
		nc.Name = truncatedName(nc.Name)
	}
	c, err := scanCustomer(db.QueryRow(ctx, `INSERT INTO customers (merchant_id, external_id, email, name)
		VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id, external_id) DO NOTHING RETURNING `+columns,
		nc.MerchantID, nc.ExternalID, nullIfEmpty(nc.Email), nullIfEmpty(nc.Name)))
	if err == nil {
		if mutant.Is(mutant.SharedLastCustomer) {
			mutant.SetLast(c)
		}
		if mutant.Is(mutant.StrayRow) {
			if err := insertShadow(ctx, db, nc); err != nil {
				return nil, false, err
			}
		}
		return c, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("insert: %w", err)
	}
	switch {
	case mutant.Is(mutant.LoserEmptySubject):
		return nil, false, nil // as if the winner's row could not be read
	case mutant.Is(mutant.LoserConflict):
		return nil, false, ErrConflict
	case mutant.Is(mutant.LoserUnavailable):
		return nil, false, fmt.Errorf("insert: %w", err) // "no row back" taken for a failed statement
	}
	winner, err := find(ctx, db, nc.Key)
	if err != nil {
		return nil, false, fmt.Errorf("read winner: %w", err)
	}
	if mutant.Is(mutant.SharedLastCustomer) {
		if last, ok := mutant.Last().(*Customer); ok {
			winner = last
		}
	}
	// winner is nil only if the row was deleted in between; the handler refuses to
	// sign a nil customer, which is the point of its empty-subject guard.
	return winner, false, nil
}
