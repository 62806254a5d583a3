package traffic

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/service/apikey"
)

// testKeys are API keys of three tenants, as a deployment would make them.
var testKeys = map[string]string{"m-0": "key-zero-secret", "m-1": "key-one-secret", "m-2": "key-two-secret"}

// keyService answers as the token service with API keys would: 401 without a known key, 403 to
// another tenant's, and a 503 with Retry-After to the first own-key request of every customer,
// so that a retry runs. It records which tenant's key each request id carried.
func keyService(t *testing.T) (*fakeService, map[string]string) {
	var (
		mu   sync.Mutex
		got  = map[string]string{}
		seen = map[string]bool{}
	)
	tenantOf := map[string]string{}
	for m, k := range testKeys {
		tenantOf["Bearer "+k] = m
	}
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		req := decodeRegister(t, r)
		auth := r.Header.Get(AuthorizationHeader)
		m, known := tenantOf[auth]
		mu.Lock()
		got[r.Header.Get(RequestHeader)] = m
		first := !seen[req.Tenant+"/"+req.EntityKey] && known && m == req.Tenant
		if first {
			seen[req.Tenant+"/"+req.EntityKey] = true
		}
		mu.Unlock()
		w.Header().Set(testPodHeader, "pod-0")
		switch {
		case auth == "":
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"unauthenticated"}`)
		case !known:
			t.Errorf("request %s carried %q, no tenant's key", r.Header.Get(RequestHeader), auth)
			w.WriteHeader(http.StatusUnauthorized)
		case m != req.Tenant:
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"forbidden"}`)
		case first:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"overloaded"}`)
		default:
			io.WriteString(w, `{"token":"t","id":"x","created":false}`)
		}
	})
	return svc, got
}

// TestRunSendsTheKeys checks that every request, retries too, carries the key its Op names:
// the customer's tenant's, or another tenant's where ForeignKeys picks it; and that no key
// is ever written into the history.
func TestRunSendsTheKeys(t *testing.T) {
	svc, got := keyService(t)
	cs := Customers(3, 6, 3)
	foreign := ForeignKeys{Customers: 0.5, Every: 2}
	out, err := Run(context.Background(), Params{Request: testRequest, URL: svc.URL, Customers: cs, Burst: 4, Gap: 5 * time.Millisecond,
		Keys: testKeys, Foreign: foreign, Retry: RetryParams{MaxAttempts: 2, Backoff: time.Millisecond}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var mixed, own, retries int
	for _, op := range out.History {
		if got[op.ID()] != op.KeyTenant {
			t.Errorf("%s: the service got %q's key, the history says %q", op.ID(), got[op.ID()], op.KeyTenant)
		}
		isForeign := op.KeyTenant != op.Customer.Tenant
		if isForeign != foreign.Foreign(op.Customer, op.Seq) || op.KeyTenant == "" {
			t.Errorf("%s of %s carried %q's key; foreign by the plan: %v", op.ID(), op.Customer, op.KeyTenant, foreign.Foreign(op.Customer, op.Seq))
		}
		switch {
		case op.Phase == history.PhaseRetry:
			retries++
			if isForeign || !op.Succeeded() {
				t.Errorf("retry %s: key of %s, status %d", op.ID(), op.KeyTenant, op.Status)
			}
		case isForeign:
			mixed++
			if op.Status != http.StatusForbidden {
				t.Errorf("%s with another tenant's key: status %d", op.ID(), op.Status)
			}
		default:
			own++
		}
	}
	if mixed == 0 || own == 0 || retries != len(cs) {
		t.Errorf("%d foreign-key and %d own-key burst requests, %d retries: the test exercised too little", mixed, own, retries)
	}
	b, err := json.Marshal(out.History)
	if err != nil {
		t.Fatal(err)
	}
	for m, k := range testKeys {
		if strings.Contains(string(b), k) {
			t.Errorf("the history holds tenant %s's key", m)
		}
	}
}

// TestRunWithoutKeys: a plan without keys sends no Authorization header and records no key.
func TestRunWithoutKeys(t *testing.T) {
	svc, got := keyService(t)
	out, err := Run(context.Background(), Params{Request: testRequest, URL: svc.URL, Customers: Customers(4, 2, 2), Burst: 2, Gap: 5 * time.Millisecond,
		Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range out.History {
		if op.KeyTenant != "" || op.KeyKind != "" || got[op.ID()] != "" || op.Status != http.StatusUnauthorized {
			t.Errorf("%s: recorded key %q, sent key %q, status %d", op.ID(), op.KeyTenant, got[op.ID()], op.Status)
		}
	}
}

func TestForeignKeysPick(t *testing.T) {
	cs := Customers(11, 4000, MaxTenants)
	count := func(f ForeignKeys) int {
		n := 0
		for _, c := range cs {
			if f.Picks(c) {
				n++
			}
		}
		return n
	}
	if n := count(ForeignKeys{}); n != 0 {
		t.Errorf("the zero ForeignKeys picked %d customers", n)
	}
	if n := count(ForeignKeys{Customers: 1}); n != len(cs) {
		t.Errorf("all customers asked, %d of %d picked", n, len(cs))
	}
	if n := count(ForeignKeys{Customers: 0.25}); n < 900 || n > 1100 {
		t.Errorf("a quarter of %d customers asked, %d picked", len(cs), n)
	}
	c := cs[0]
	every := ForeignKeys{Customers: 1, Every: 3}
	var seqs []int
	for seq := range 7 {
		if every.Foreign(c, seq) {
			seqs = append(seqs, seq)
		}
	}
	if fmt.Sprint(seqs) != "[0 3 6]" {
		t.Errorf("every third request asked, seqs %v foreign", seqs)
	}
	if !(ForeignKeys{Customers: 1}).Foreign(c, 5) {
		t.Error("Every 0 must mean every request")
	}
}

// TestForeignKeyIsAnotherTenants: a foreign key is never the customer's own, and over many
// customers every other tenant's key is tried.
func TestForeignKeyIsAnotherTenants(t *testing.T) {
	cs := Customers(5, 300, 3)
	r, err := newKeyring(testKeys, testRequest.Auth, ForeignKeys{Customers: 1}, WrongKeys{}, cs)
	if err != nil {
		t.Fatal(err)
	}
	used := map[[2]string]bool{}
	for _, c := range cs {
		m, kind := r.forRequest(c, 0)
		op := history.Op{Customer: c, KeyTenant: m, KeyKind: kind}
		if m == c.Tenant || kind != history.KeyForeign || r.header(op) != "Bearer "+testKeys[m] {
			t.Fatalf("%s: foreign key of %q, kind %q, header %q", c, m, kind, r.header(op))
		}
		used[[2]string{c.Tenant, m}] = true
	}
	if len(used) != 6 {
		t.Errorf("tenant pairs tried %v, want all 6", used)
	}
}

func TestKeyringRefuses(t *testing.T) {
	cs := Customers(1, 4, 2)
	for _, tc := range []struct {
		name    string
		keys    map[string]string
		foreign ForeignKeys
		want    string
	}{
		{"a tenant without a key", map[string]string{"m-0": "k"}, ForeignKeys{}, `"m-1" has no API key`},
		{"an empty key", map[string]string{"m-0": "k", "m-1": ""}, ForeignKeys{}, "empty API key"},
		{"foreign without keys", nil, ForeignKeys{Customers: 0.5}, "no API keys"},
		{"foreign with one tenant's key", map[string]string{"m-0": "k"}, ForeignKeys{Customers: 1}, "only tenant"},
		{"wrong without keys", nil, ForeignKeys{}, "no API keys"},
		{"a fraction above 1", testKeys, ForeignKeys{Customers: 1.5}, "want 0 to 1"},
		{"a negative Every", testKeys, ForeignKeys{Customers: 1, Every: -1}, "want 0 or more"},
		{"a key with a blank", map[string]string{"m-0": "k", "m-1": "two words"}, ForeignKeys{}, "with a blank"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			customers := cs
			if tc.name == "foreign with one tenant's key" {
				customers = Customers(1, 4, 1)
			}
			var wrong WrongKeys
			if tc.name == "wrong without keys" {
				wrong = DefaultWrongKeys
			}
			_, err := Run(context.Background(), Params{Request: testRequest, URL: "http://127.0.0.1:1", Customers: customers, Burst: 1,
				Keys: tc.keys, Foreign: tc.foreign, Wrong: wrong, Logger: quietLogger()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want an error about %q, got %v", tc.want, err)
			}
		})
	}
}

// authKind classifies an Authorization value as the token service does (service/README.md,
// "Authentication"), and says whose key it is.
func authKind(keys map[string]string, auth, tenant string) (history.KeyKind, string) {
	if auth == "" {
		return history.KeyNone, ""
	}
	for m, k := range keys {
		if auth == "Bearer "+k {
			if m == tenant {
				return history.KeyOwn, m
			}
			return history.KeyForeign, m
		}
	}
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if ok && len(key) == len(apikey.Prefix)+43 && strings.HasPrefix(key, apikey.Prefix) && !strings.ContainsAny(key, " +/=") {
		return history.KeyUnknown, ""
	}
	return history.KeyMalformed, ""
}

// TestRunSendsTheWrongKeys checks that WrongKeys' picked customers send every kind of wrong key,
// each as its Op records it, mixed in one burst with their own key; that a retry carries the
// key of the request it retries; and that customers not picked send only their own.
func TestRunSendsTheWrongKeys(t *testing.T) {
	var (
		mu   sync.Mutex
		sent = map[string]history.KeyKind{}
	)
	keys := testKeysFor(4)
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		req := decodeRegister(t, r)
		kind, _ := authKind(keys, r.Header.Get(AuthorizationHeader), req.Tenant)
		mu.Lock()
		sent[r.Header.Get(RequestHeader)] = kind
		mu.Unlock()
		w.Header().Set(testPodHeader, "pod-0")
		switch kind {
		case history.KeyOwn:
			io.WriteString(w, `{"token":"t","id":"x","created":false}`)
		case history.KeyForeign:
			w.WriteHeader(http.StatusForbidden)
		default:
			// A 503, not the 401 a service gives: so that the retry's key is seen too.
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	cs := Customers(8, 40, 4)
	wrong := WrongKeys{Customers: 0.5, Every: 2}
	out, err := Run(context.Background(), Params{Request: testRequest, URL: svc.URL, Customers: cs, Burst: 8, Gap: time.Millisecond, Keys: keys,
		Wrong: wrong, Retry: RetryParams{MaxAttempts: 1, Backoff: time.Millisecond}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[history.KeyKind]int{}
	mixed := map[history.Key]map[history.KeyKind]bool{}
	for _, op := range out.History {
		if sent[op.ID()] != op.KeyKind {
			t.Errorf("%s: sent a key of kind %q, the history says %q", op.ID(), sent[op.ID()], op.KeyKind)
		}
		if want := wrong.Wrong(op.Customer, op.Seq); want != (op.KeyKind != history.KeyOwn) {
			t.Errorf("%s: kind %q, wrong by the plan: %v", op.ID(), op.KeyKind, want)
		}
		if (op.KeyKind == history.KeyOwn) != (op.KeyTenant == op.Customer.Tenant) ||
			(op.KeyKind == history.KeyForeign) != (op.KeyTenant != "" && op.KeyTenant != op.Customer.Tenant) {
			t.Errorf("%s: kind %q with the key of %q", op.ID(), op.KeyKind, op.KeyTenant)
		}
		if op.Phase == history.PhaseBurst {
			kinds[op.KeyKind]++
			if mixed[op.Customer.Key()] == nil {
				mixed[op.Customer.Key()] = map[history.KeyKind]bool{}
			}
			mixed[op.Customer.Key()][op.KeyKind] = true
		} else {
			kinds["retry "+op.KeyKind]++
		}
	}
	for _, k := range []history.KeyKind{history.KeyOwn, history.KeyForeign, history.KeyNone, history.KeyMalformed, history.KeyUnknown} {
		if kinds[k] == 0 {
			t.Errorf("no burst request with a key of kind %q: %v", k, kinds)
		}
	}
	if kinds["retry "+history.KeyNone] == 0 || kinds["retry "+history.KeyOwn] != 0 {
		t.Errorf("retries %v: want the retries of wrong-key requests only", kinds)
	}
	full := 0
	for _, ks := range mixed {
		if len(ks) == 5 {
			full++
		}
	}
	if full == 0 {
		t.Errorf("no customer's burst mixed its own key with all four wrong kinds")
	}
}

// testKeysFor returns API keys in the service's format for tenants m-0 to m-<n-1>.
func testKeysFor(n int) map[string]string {
	keys := map[string]string{}
	for _, m := range TenantIDs(n) {
		sum := sha256.Sum256([]byte(m))
		keys[m] = apikey.Prefix + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return keys
}

// TestWrongKeyShapes: the malformed values of a bearer key are not "Bearer <API key>" (the
// token service's, the same as before the request was a target's), those of a key in a header of
// its own not a key; the unknown key is in the keys' format and no tenant's.
func TestWrongKeyShapes(t *testing.T) {
	format := func(key string) bool {
		rest, ok := strings.CutPrefix(key, apikey.Prefix)
		b, err := base64.RawURLEncoding.DecodeString(rest)
		return ok && err == nil && len(b) == 32
	}
	keys := testKeysFor(4)
	cs := Customers(1, 4, 4)
	for _, auth := range []request.Auth{{Header: AuthorizationHeader, Bearer: true}, {Header: "X-Api-Key"}} {
		r, err := newKeyring(keys, auth, ForeignKeys{}, DefaultWrongKeys, cs)
		if err != nil {
			t.Fatal(err)
		}
		if !format(r.unknown) || slices.Contains(slices.Collect(maps.Values(keys)), r.unknown) {
			t.Errorf("%+v: unknown key %q is not in the API key format, or a tenant's", auth, r.unknown)
		}
		for _, v := range r.malformed {
			key := v
			if auth.Bearer {
				key, _ = strings.CutPrefix(v, "Bearer ")
			}
			if format(key) {
				t.Errorf("%+v: malformed value %q carries a key in the API key format", auth, v)
			}
		}
	}
	bearer, _ := newKeyring(keys, request.Auth{Header: AuthorizationHeader, Bearer: true}, ForeignKeys{}, DefaultWrongKeys, cs)
	want := []string{"Basic bS0wOnNlY3JldA==", "Bearer", "Bearer not-an-api-key", "Bearer sk_short", "Bearer sk_two words"}
	if !slices.Equal(bearer.malformed, want) {
		t.Errorf("bearer malformed values %q, want the token service's %q", bearer.malformed, want)
	}
}

func TestWrongKeysPick(t *testing.T) {
	cs := Customers(11, 4000, MaxTenants)
	n, both := 0, 0
	for _, c := range cs {
		if DefaultWrongKeys.Picks(c) {
			n++
			if (ForeignKeys{Customers: 0.25}).Picks(c) {
				both++
			}
		}
	}
	if n < 900 || n > 1100 {
		t.Errorf("a quarter of %d customers asked, %d picked", len(cs), n)
	}
	// Independent picks: about a quarter of a quarter, not all of them.
	if both < 150 || both > 350 {
		t.Errorf("%d of %d customers picked by both ForeignKeys and WrongKeys at a quarter each: not independent", both, n)
	}
	if (WrongKeys{}).Picks(cs[0]) {
		t.Error("the zero WrongKeys picked a customer")
	}
	every := WrongKeys{Customers: 1, Every: 3}
	var seqs []int
	for seq := range 8 {
		if every.Wrong(cs[0], seq) {
			seqs = append(seqs, seq)
		}
	}
	// Never seq 0: a customer registered by one request must get its own key.
	if fmt.Sprint(seqs) != "[2 5]" {
		t.Errorf("every third request asked, seqs %v wrong", seqs)
	}
	if !(WrongKeys{Customers: 1}).Wrong(cs[0], 0) {
		t.Error("Every 0 must mean every request")
	}
}

// The unknown key keeps the tenants' prefix and shape, and is no tenant's even when the first
// turn of a key is another tenant's key; keys with nothing to turn are refused for wrong keys.
func TestUnknownKey(t *testing.T) {
	keys := []string{"ak_a1", "ak_n6"} // "ak_n6" is the first turn of "ak_a1"
	if p := keyPrefix(keys); p != "ak_" {
		t.Fatalf("prefix %q, want ak_", p)
	}
	if got := unknownKey(keys, "ak_"); got != "ak_o7" {
		t.Errorf("unknown key %q, want ak_o7: the second turn, since the first is a tenant's", got)
	}
	if got := keyPrefix([]string{"0123", "0199"}); got != "" {
		t.Errorf("prefix of keys without a separator %q, want none", got)
	}
	_, err := newKeyring(map[string]string{"m-0": "__", "m-1": "--"}, testRequest.Auth, ForeignKeys{}, DefaultWrongKeys, Customers(1, 2, 2))
	if err == nil || !strings.Contains(err.Error(), "no letter or digit") {
		t.Errorf("keys with nothing to turn: %v", err)
	}
}
