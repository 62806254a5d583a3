package traffic

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// AuthorizationHeader carries a request's API key, as "Bearer <key>".
const AuthorizationHeader = "Authorization"

// ForeignKeys picks the requests that carry another merchant's API key than their customer's:
// cross-merchant requests, which the service must refuse with 403. The pick depends only on
// the customer's natural key (and so on the seed that derived it) and the request's seq, so a
// run is replayed by its seed and the pods that share a burst agree on it. The zero
// ForeignKeys picks nothing.
type ForeignKeys struct {
	// Customers is the fraction of customers, 0 to 1, picked by a hash of their natural key:
	// about that many of a big run, exactly none at 0 and every one at 1.
	Customers float64
	// Every says which requests of a picked customer carry the foreign key: those whose seq is
	// a multiple of Every, so that at 2 the customer's burst mixes foreign and own keys. 0 or
	// 1 means every request: then the customer never sends its own key and must end without a
	// row. A retry carries the key of the request it retries.
	Every int
}

// hashSpan is the resolution of ForeignKeys.Customers: the hash of a key, modulo hashSpan,
// against the fraction scaled to it.
const hashSpan = 1_000_000

func keyHash(c history.Customer) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(c.MerchantID + "\x00" + c.ExternalID)) // a hash.Hash never fails to write
	return h.Sum64()
}

// Picks reports whether c's requests (some or all, by Every) carry another merchant's key.
func (f ForeignKeys) Picks(c history.Customer) bool {
	return keyHash(c)%hashSpan < uint64(math.Round(f.Customers*hashSpan))
}

// Foreign reports whether request seq of c carries another merchant's key.
func (f ForeignKeys) Foreign(c history.Customer, seq int) bool {
	return f.Picks(c) && (f.Every <= 1 || seq%f.Every == 0)
}

// Validate says in one line what is wrong with f.
func (f ForeignKeys) Validate() error {
	if f.Customers < 0 || f.Customers > 1 || math.IsNaN(f.Customers) {
		return fmt.Errorf("foreign keys for %v of the customers: want 0 to 1", f.Customers)
	}
	if f.Every < 0 {
		return fmt.Errorf("foreign key every %d requests: want 0 or more", f.Every)
	}
	return nil
}

// keyring chooses each request's key: the customer's merchant's, or by ForeignKeys another's.
type keyring struct {
	keys      map[string]string
	merchants []string // sorted, to choose a foreign one deterministically
	foreign   ForeignKeys
}

// newKeyring checks that keys cover every customer's merchant, and, when foreign keys are
// asked for, that there is another merchant's key to send. No keys and no foreign keys is a run
// without any key, for a service from before API keys.
func newKeyring(keys map[string]string, foreign ForeignKeys, customers []history.Customer) (*keyring, error) {
	if err := foreign.Validate(); err != nil {
		return nil, err
	}
	r := &keyring{keys: keys, merchants: slices.Sorted(maps.Keys(keys)), foreign: foreign}
	if len(keys) == 0 {
		if foreign.Customers > 0 {
			return nil, errors.New("foreign keys asked for, but no API keys")
		}
		return r, nil
	}
	for m, k := range keys {
		if k == "" {
			return nil, fmt.Errorf("merchant %q has an empty API key", m)
		}
	}
	for _, c := range customers {
		if _, ok := keys[c.MerchantID]; !ok {
			return nil, fmt.Errorf("customer %s: merchant %q has no API key", c, c.MerchantID)
		}
	}
	if foreign.Customers > 0 && len(keys) < 2 {
		return nil, fmt.Errorf("foreign keys asked for, but only merchant %v has an API key", r.merchants)
	}
	return r, nil
}

// forRequest returns the merchant whose key request seq of c carries ("" for none) and the key.
func (r *keyring) forRequest(c history.Customer, seq int) (merchant, key string) {
	if len(r.keys) == 0 {
		return "", ""
	}
	if !r.foreign.Foreign(c, seq) {
		return c.MerchantID, r.keys[c.MerchantID]
	}
	others := slices.DeleteFunc(slices.Clone(r.merchants), func(m string) bool { return m == c.MerchantID })
	// By the key's hash, not always the next merchant: every merchant's key is tried on others.
	m := others[(keyHash(c)/hashSpan)%uint64(len(others))]
	return m, r.keys[m]
}

// header returns the Authorization value for the key of merchant, "" for none.
func (r *keyring) header(merchant string) string {
	if merchant == "" {
		return ""
	}
	return "Bearer " + r.keys[merchant]
}
