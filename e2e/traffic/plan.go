// Package traffic sends the stampede: K simultaneous first-registration requests
// per customer through vegeta, then the retries a real client would make, and
// records every request and response as a history.Op.
package traffic

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// DefaultTenants is how many tenants Customers spreads customers over when
// asked for zero.
const DefaultTenants = 4

// MaxTenants bounds the tenants Customers spreads customers over. Tenant ids do not
// depend on the seed, so a deployment can give each of TenantIDs(MaxTenants) its API key
// before any plan exists, and every plan's tenants have one.
const MaxTenants = 8

// TenantIDs returns the ids of the first n tenants, "m-0" to "m-<n-1>": those of every
// customer that Customers spreads over n tenants.
func TenantIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = tenantID(i)
	}
	return ids
}

func tenantID(i int) string { return "m-" + strconv.Itoa(i) }

// NewSeed returns a random seed for Customers. Print it: the same seed replays
// the same customers.
func NewSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on Linux; a fixed seed still gives a valid run.
		return 1
	}
	// Keep it positive and short enough to read in a repro line.
	return binary.LittleEndian.Uint64(b[:]) % 1_000_000_000
}

// Customers derives n customers from seed: customer i of tenant "m-<i%tenants>" with
// key "c-<seed>-<i-i%2>" when there are two tenants or more, so that every two
// consecutive customers (bursts sent one Gap apart) are two tenants' customers under one
// key: tenants that collide, which the service must keep apart (a lookup or a unique
// key on the natural key alone mixes them up). With one tenant the key is "c-<seed>-<i>".
// It is deterministic, so a run is replayed by its seed, and a new seed gives natural keys that
// no earlier run registered, its keys being new. tenants is at most MaxTenants:
// more is a bug in the caller, whose extra tenants would have no API key, and panics.
func Customers(seed uint64, n, tenants int) []history.Customer {
	if tenants <= 0 {
		tenants = DefaultTenants
	}
	if tenants > MaxTenants {
		panic(fmt.Sprintf("traffic.Customers: %d tenants, at most MaxTenants (%d) have API keys", tenants, MaxTenants))
	}
	cs := make([]history.Customer, n)
	for i := range cs {
		ext := i
		if tenants >= 2 {
			ext = i - i%2 // i and i+1 have tenants i%tenants and (i+1)%tenants, never one
		}
		cs[i] = history.Customer{
			Index:     i,
			Tenant:    tenantID(i % tenants),
			EntityKey: fmt.Sprintf("c-%d-%d", seed, ext),
		}
		cs[i].Email = cs[i].EntityKey + "@stampede.test"
		cs[i].Name = fmt.Sprintf("Customer %d", i)
	}
	return cs
}

// Tenants returns the keys that two or more tenants' customers of cs share, each with
// those customers in the order of cs: the colliding tenants that a run exercises.
func Tenants(cs []history.Customer) map[string][]history.Customer {
	by := map[string][]history.Customer{}
	for _, c := range cs {
		by[c.EntityKey] = append(by[c.EntityKey], c)
	}
	for ext, group := range by {
		tenants := map[string]bool{}
		for _, c := range group {
			tenants[c.Tenant] = true
		}
		if len(tenants) < 2 {
			delete(by, ext)
		}
	}
	return by
}
