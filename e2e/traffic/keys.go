package traffic

import (
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
)

// AuthorizationHeader is the header of a bearer key, "Bearer <key>".
const AuthorizationHeader = request.AuthorizationHeader

// ForeignKeys picks the requests that carry another tenant's API key than their customer's:
// cross-tenant requests, which the service must refuse with 403. The pick depends only on
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
	_, _ = h.Write([]byte(c.Tenant + "\x00" + c.EntityKey)) // a hash.Hash never fails to write
	return h.Sum64()
}

// Picks reports whether c's requests (some or all, by Every) carry another tenant's key.
func (f ForeignKeys) Picks(c history.Customer) bool {
	return keyHash(c)%hashSpan < uint64(math.Round(f.Customers*hashSpan))
}

// Foreign reports whether request seq of c carries another tenant's key.
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

// WrongKeys picks, for some customers, requests of their burst that carry a key the service
// must refuse: in turn no key, a malformed one, an unknown one and another tenant's valid one,
// while the customer's other requests carry its own key and race with them on several pods. The
// pick depends only on the customer's natural key and the request's seq, like ForeignKeys', so
// that a run is replayed by its seed and the pods that share a burst agree on it. A request that
// ForeignKeys picks stays foreign. The zero WrongKeys picks nothing.
type WrongKeys struct {
	// Customers is the fraction of customers, 0 to 1, picked by a hash of their natural key
	// (another hash than ForeignKeys', so that the two picks are independent).
	Customers float64
	// Every says which requests of a picked customer carry a wrong key: those whose seq is one
	// less than a multiple of Every (seqs 2, 5, 8... at 3), never seq 0, so that a customer
	// registered by a single request registers. 0 or 1 means every request: the customer then
	// never sends its own key and must end without a row. A retry carries the key of the
	// request it retries.
	Every int
}

// DefaultWrongKeys is the auth surface every spec's traffic carries: a quarter of the
// customers send every third request of their burst with a wrong key (seqs 2 and 5 of a burst
// of 8), so that each kind is refused under the race while the own-key requests still race to
// register the customer.
var DefaultWrongKeys = WrongKeys{Customers: 0.25, Every: 3}

// Picks reports whether some of c's requests carry a wrong key.
func (w WrongKeys) Picks(c history.Customer) bool {
	return wrongHash(c)%hashSpan < uint64(math.Round(w.Customers*hashSpan))
}

// Wrong reports whether request seq of c carries a wrong key.
func (w WrongKeys) Wrong(c history.Customer, seq int) bool {
	return w.Picks(c) && (w.Every <= 1 || seq%w.Every == w.Every-1)
}

// Validate says in one line what is wrong with w.
func (w WrongKeys) Validate() error {
	if w.Customers < 0 || w.Customers > 1 || math.IsNaN(w.Customers) {
		return fmt.Errorf("wrong keys for %v of the customers: want 0 to 1", w.Customers)
	}
	if w.Every < 0 {
		return fmt.Errorf("wrong key every %d requests: want 0 or more", w.Every)
	}
	return nil
}

func wrongHash(c history.Customer) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("wrong\x00" + c.Tenant + "\x00" + c.EntityKey)) // a hash.Hash never fails to write
	return h.Sum64()
}

// wrongKinds are the kinds WrongKeys sends, in turn.
var wrongKinds = []history.KeyKind{history.KeyNone, history.KeyMalformed, history.KeyUnknown, history.KeyForeign}

// malformed are key values that are not a key: for a bearer key a wrong scheme, a bare scheme,
// a value that is no key, a cut key and a key with a space; for a key in a header of its own a
// bearer value, a value that is no key, a cut key and a key with a space. prefix is what every
// tenant's key begins with (keyPrefix), so that a cut key looks like one. A malformed request
// carries one of them, by its seq.
func malformed(a request.Auth, prefix, unknown string) []string {
	if a.Bearer {
		return []string{
			"Basic " + base64.StdEncoding.EncodeToString([]byte("m-0:secret")),
			"Bearer",
			"Bearer not-an-api-key",
			"Bearer " + prefix + "short",
			"Bearer " + prefix + "two words",
		}
	}
	return []string{"Bearer " + unknown, "not-an-api-key", prefix + "short", prefix + "two words"}
}

// keyPrefix is the prefix every key of keys begins with, up to and with its first character
// that is no letter or digit ("sk_" of "sk_3fa..."): "" when they share none that ends so.
func keyPrefix(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	common := keys[0]
	for _, k := range keys[1:] {
		n := 0
		for n < len(common) && n < len(k) && common[n] == k[n] {
			n++
		}
		common = common[:n]
	}
	if i := strings.IndexFunc(common, func(r rune) bool { return !isAlnum(r) }); i >= 0 {
		return common[:i+1]
	}
	return ""
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// unknownKey is a key in the tenants' format that no tenant has: the first key (keys sorted)
// with every letter and digit after the prefix turned into another of its kind, by a shift
// that grows until the key differs from every tenant's. It depends only on the keys, so the pods
// that share a burst send the same. Keys with no letter or digit to turn give one of them back,
// which newKeyring refuses.
func unknownKey(keys []string, prefix string) string {
	if len(keys) == 0 {
		return ""
	}
	first := slices.Min(keys)
	var k string
	for shift := range 9 {
		k = prefix + strings.Map(func(r rune) rune { return rotate(r, shift) }, first[len(prefix):])
		if !slices.Contains(keys, k) {
			break
		}
	}
	return k
}

// rotate turns a digit into another digit, a letter into another letter of its case; shift 0
// to 8 gives nine different turns.
func rotate(r rune, shift int) rune {
	switch n := rune(shift); {
	case r >= '0' && r <= '9':
		return '0' + (r-'0'+5+n)%10
	case r >= 'a' && r <= 'z':
		return 'a' + (r-'a'+13+n)%26
	case r >= 'A' && r <= 'Z':
		return 'A' + (r-'A'+13+n)%26
	}
	return r
}

// keyring chooses each request's key: the customer's tenant's, by ForeignKeys another's, or
// by WrongKeys a wrong one.
type keyring struct {
	keys    map[string]string
	tenants []string // sorted, to choose a foreign one deterministically
	auth    request.Auth
	foreign ForeignKeys
	wrong   WrongKeys
	// unknown is a well-formed key of no tenant, malformed the values that are no key.
	unknown   string
	malformed []string
}

// newKeyring checks that keys cover every customer's tenant, and, when foreign or wrong keys
// are asked for, that there are keys to be wrong about. No keys and neither is a run without
// any key, for a service from before API keys.
func newKeyring(keys map[string]string, auth request.Auth, foreign ForeignKeys, wrong WrongKeys, customers []history.Customer) (*keyring, error) {
	if err := errors.Join(foreign.Validate(), wrong.Validate()); err != nil {
		return nil, err
	}
	r := &keyring{keys: keys, tenants: slices.Sorted(maps.Keys(keys)), auth: auth, foreign: foreign, wrong: wrong}
	all := slices.Collect(maps.Values(keys))
	prefix := keyPrefix(all)
	r.unknown = unknownKey(all, prefix)
	r.malformed = malformed(auth, prefix, r.unknown)
	if len(keys) > 0 && auth.Header == "" {
		return nil, errors.New("tenants' keys given, but the request has no header to carry them")
	}
	if wrong.Customers > 0 && slices.Contains(all, r.unknown) {
		return nil, errors.New("wrong keys asked for, but the tenants' keys hold no letter or digit to make an unknown key of")
	}
	if len(keys) == 0 {
		if foreign.Customers > 0 || wrong.Customers > 0 {
			return nil, errors.New("foreign or wrong keys asked for, but no API keys")
		}
		return r, nil
	}
	for m, k := range keys {
		if k == "" {
			return nil, fmt.Errorf("tenant %q has an empty API key", m)
		}
		if len(strings.Fields(k)) != 1 || strings.Fields(k)[0] != k {
			return nil, fmt.Errorf("tenant %q has a key with a blank", m)
		}
	}
	for _, c := range customers {
		if _, ok := keys[c.Tenant]; !ok {
			return nil, fmt.Errorf("customer %s: tenant %q has no API key", c, c.Tenant)
		}
	}
	if foreign.Customers > 0 && len(keys) < 2 {
		return nil, fmt.Errorf("foreign keys asked for, but only tenant %v has an API key", r.tenants)
	}
	return r, nil
}

// forRequest returns the kind of key request seq of c carries, and the tenant whose key it is
// ("" for a key of none). A run without keys records no kind, as runs before API keys did.
func (r *keyring) forRequest(c history.Customer, seq int) (tenant string, kind history.KeyKind) {
	switch {
	case len(r.keys) == 0:
		return "", ""
	case r.foreign.Foreign(c, seq):
		return r.foreignTenant(c), history.KeyForeign
	case !r.wrong.Wrong(c, seq):
		return c.Tenant, history.KeyOwn
	}
	// In turn along the burst, from a start that the customer's hash sets: over the picked
	// customers, every kind is sent from every position of a burst.
	kinds := wrongKinds
	if len(r.keys) < 2 {
		kinds = kinds[:3] // no other tenant's key to send
	}
	switch kind := kinds[(uint64(seq/max(1, r.wrong.Every))+wrongHash(c)/hashSpan)%uint64(len(kinds))]; kind {
	case history.KeyForeign:
		return r.foreignTenant(c), kind
	default:
		return "", kind
	}
}

// foreignTenant returns another tenant than c's whose key c's foreign requests carry.
func (r *keyring) foreignTenant(c history.Customer) string {
	others := slices.DeleteFunc(slices.Clone(r.tenants), func(m string) bool { return m == c.Tenant })
	// By the key's hash, not always the next tenant: every tenant's key is tried on others.
	return others[(keyHash(c)/hashSpan)%uint64(len(others))]
}

// header returns the value of the auth header that op carries, "" for none: its tenant's key,
// or the malformed or unknown one its kind says (the malformed one chosen by its seq, so that a
// retry carries the same).
func (r *keyring) header(op history.Op) string {
	switch op.SentKey() {
	case history.KeyOwn, history.KeyForeign:
		return r.auth.Value(r.keys[op.KeyTenant])
	case history.KeyMalformed:
		return r.malformed[(op.Seq+op.Customer.Index)%len(r.malformed)]
	case history.KeyUnknown:
		return r.auth.Value(r.unknown)
	}
	return ""
}
