package report

import (
	"encoding/json"

	"github.com/stampede-e2e/stampede/e2e/check"
)

// savedRow is a row of rows.json as either format wrote it: check.Row's, or the token service's
// columns by name, as rows.json held them before the checker read rows with the target's truth
// query (then the only target was the token service).
type savedRow struct {
	check.Row
	Tenant    *string `json:"merchant_id"`
	EntityKey string  `json:"external_id"`
	Email     *string `json:"email"`
	Name      *string `json:"name"`
}

// decodeRows reads rows.json, of either format.
func decodeRows(b []byte) ([]check.Row, error) {
	var saved []savedRow
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, err
	}
	if saved == nil {
		return nil, nil
	}
	rows := make([]check.Row, len(saved))
	for i, s := range saved {
		rows[i] = s.Row
		if s.Tenant != nil {
			// The token service kept the request's email and name, NULL when not sent.
			rows[i].Tenant, rows[i].Key = *s.Tenant, s.EntityKey
			rows[i].Agree = map[string]*string{"email": s.Email, "name": s.Name}
		}
	}
	return rows, nil
}
