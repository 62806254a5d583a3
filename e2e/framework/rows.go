package framework

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// ReadRows reads every row of the given tenants from the database at dsn with the target's
// truth query: the ground truth the checker compares the responses and the requests with. Rows
// of other tenants are left out; those of earlier runs on the same tenants are the checker's
// to tell apart (check.Params.Earlier).
func ReadRows(ctx context.Context, dsn string, truth target.Truth, tenants []string) ([]check.Row, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, truth.Query, tenants)
	if err != nil {
		return nil, fmt.Errorf("truth query: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (check.Row, error) {
		return rowOf(truth.Columns, r)
	})
	if err != nil {
		return nil, fmt.Errorf("read the truth: %w", err)
	}
	return out, nil
}

// rowOf reads one row of the truth query by the names of its columns.
func rowOf(cols target.Columns, r pgx.CollectableRow) (check.Row, error) {
	values, err := r.Values()
	if err != nil {
		return check.Row{}, err
	}
	byName := map[string]any{}
	for i, f := range r.FieldDescriptions() {
		byName[f.Name] = values[i]
	}
	var row check.Row
	var errs []error
	text := func(col string) string {
		s, err := textOf(byName, col)
		if err != nil {
			errs = append(errs, err)
		}
		return s
	}
	row.ID, row.Tenant, row.Key = text(cols.ID), text(cols.Tenant), text(cols.Key)
	switch t := byName[cols.CreatedAt].(type) {
	case time.Time:
		row.CreatedAt = t
	default:
		errs = append(errs, fmt.Errorf("column %s is %T, not a time", cols.CreatedAt, byName[cols.CreatedAt]))
	}
	if len(cols.Agree) > 0 {
		row.Agree = make(map[string]*string, len(cols.Agree))
		for field, col := range cols.Agree {
			if byName[col] == nil {
				row.Agree[field] = nil
				continue
			}
			s := text(col)
			row.Agree[field] = &s
		}
	}
	if len(errs) > 0 {
		return check.Row{}, errs[0]
	}
	return row, nil
}

// textOf returns the value of column col as text: a string, a UUID in its canonical form, or
// any other value as fmt prints it.
func textOf(byName map[string]any, col string) (string, error) {
	v, ok := byName[col]
	if !ok {
		return "", fmt.Errorf("the truth query has no column %s", col)
	}
	switch t := v.(type) {
	case string:
		return t, nil
	case [16]byte:
		return fmt.Sprintf("%x-%x-%x-%x-%x", t[0:4], t[4:6], t[6:8], t[8:10], t[10:16]), nil
	case nil:
		return "", fmt.Errorf("column %s is NULL", col)
	default:
		return fmt.Sprint(t), nil
	}
}
