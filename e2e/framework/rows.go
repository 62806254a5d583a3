package framework

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stampede-e2e/stampede/e2e/check"
)

// ReadRows reads every customer row of the given merchants from the database at dsn, every
// column the service writes: the ground truth the checker compares the responses and the
// requests with. Rows of other merchants are left out; those of earlier runs on the same
// merchants are the checker's to tell apart (check.Params.Earlier).
func ReadRows(ctx context.Context, dsn string, merchants []string) ([]check.Row, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx,
		`SELECT id::text, merchant_id, external_id, email, name, created_at FROM customers WHERE merchant_id = ANY($1) ORDER BY created_at, id`,
		merchants)
	if err != nil {
		return nil, fmt.Errorf("query customers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (check.Row, error) {
		var row check.Row
		err := r.Scan(&row.ID, &row.MerchantID, &row.ExternalID, &row.Email, &row.Name, &row.CreatedAt)
		return row, err
	})
	if err != nil {
		return nil, fmt.Errorf("read customers: %w", err)
	}
	return out, nil
}
