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

// DefaultMerchants is how many merchants Customers spreads customers over when
// asked for zero.
const DefaultMerchants = 4

// MaxMerchants bounds the merchants Customers spreads customers over. Merchant ids do not
// depend on the seed, so a deployment can give each of MerchantIDs(MaxMerchants) its API key
// before any plan exists, and every plan's merchants have one.
const MaxMerchants = 8

// MerchantIDs returns the ids of the first n merchants, "m-0" to "m-<n-1>": those of every
// customer that Customers spreads over n merchants.
func MerchantIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = merchantID(i)
	}
	return ids
}

func merchantID(i int) string { return "m-" + strconv.Itoa(i) }

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

// Customers derives n customers from seed: customer i of merchant "m-<i%merchants>" with
// external id "c-<seed>-<i-i%2>" when there are two merchants or more, so that every two
// consecutive customers (bursts sent one Gap apart) are two merchants' customers under one
// external id: tenants that collide, which the service must keep apart (a lookup or a unique
// key on the natural key alone mixes them up). With one merchant the external id is "c-<seed>-<i>".
// It is deterministic, so a run is replayed by its seed, and a new seed gives natural keys that
// no earlier run registered, its external ids being new. merchants is at most MaxMerchants:
// more is a bug in the caller, whose extra merchants would have no API key, and panics.
func Customers(seed uint64, n, merchants int) []history.Customer {
	if merchants <= 0 {
		merchants = DefaultMerchants
	}
	if merchants > MaxMerchants {
		panic(fmt.Sprintf("traffic.Customers: %d merchants, at most MaxMerchants (%d) have API keys", merchants, MaxMerchants))
	}
	cs := make([]history.Customer, n)
	for i := range cs {
		ext := i
		if merchants >= 2 {
			ext = i - i%2 // i and i+1 have merchants i%merchants and (i+1)%merchants, never one
		}
		cs[i] = history.Customer{
			Index:      i,
			MerchantID: merchantID(i % merchants),
			ExternalID: fmt.Sprintf("c-%d-%d", seed, ext),
		}
		cs[i].Email = cs[i].ExternalID + "@stampede.test"
		cs[i].Name = fmt.Sprintf("Customer %d", i)
	}
	return cs
}

// Tenants returns the external ids that two or more merchants' customers of cs share, each with
// those customers in the order of cs: the colliding tenants that a run exercises.
func Tenants(cs []history.Customer) map[string][]history.Customer {
	by := map[string][]history.Customer{}
	for _, c := range cs {
		by[c.ExternalID] = append(by[c.ExternalID], c)
	}
	for ext, group := range by {
		merchants := map[string]bool{}
		for _, c := range group {
			merchants[c.MerchantID] = true
		}
		if len(merchants) < 2 {
			delete(by, ext)
		}
	}
	return by
}
