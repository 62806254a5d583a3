package framework

import (
	"fmt"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// APIKeys are the tenants' API keys of one deployment, tenant -> key: the suite sends them, the
// service holds them as its keys file lists them (File).
type APIKeys map[string]string

// NewAPIKeys generates a fresh key for each tenant, in the target's format (create.auth.keys).
func NewAPIKeys(f target.KeyFormat, tenants []string) (APIKeys, error) {
	keys := APIKeys{}
	for _, m := range tenants {
		k, err := f.NewKey()
		if err != nil {
			return nil, fmt.Errorf("api key for %s: %w", m, err)
		}
		keys[m] = k
	}
	return keys, nil
}

// File is the service's keys file: one line per key as the target's format writes it, sorted by
// tenant.
func (k APIKeys) File(f target.KeyFormat) []byte { return f.File(k) }
