package httpapi

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stampede-e2e/stampede/service/apikey"
	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/store"
	"github.com/stampede-e2e/stampede/service/internal/token"
)

// fakeStore scripts the database: what Find and Create return, and what was asked.
type fakeStore struct {
	mu        sync.Mutex
	found     *store.Customer
	findErr   error
	created   *store.Customer
	createNew bool
	createErr error
	pingErr   error
	pings     int
	calls     []string
}

func (f *fakeStore) Find(context.Context, store.Key) (*store.Customer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "find")
	return f.found, f.findErr
}

func (f *fakeStore) Create(context.Context, store.NewCustomer) (*store.Customer, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "create")
	return f.created, f.createNew, f.createErr
}

func (f *fakeStore) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pings++
	return f.pingErr
}

func (f *fakeStore) setPingErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pingErr = err
}

func (f *fakeStore) pingCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pings
}

func testSigner(t testing.TB) *token.Signer {
	t.Helper()
	s, err := token.NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)),
		token.SignerParams{Issuer: "test-issuer", Audience: "test-audience", TTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestServer(t testing.TB, st Store, strategy config.Strategy) (*Server, *Metrics) {
	t.Helper()
	s, m, _ := newServerWith(t, Params{Store: st, Strategy: strategy})
	return s, m
}

// testKey is the API key of merchant "m", the merchant of the tests' requests.
const testKey = "sk_test_key_of_m"

// otherKey is the API key of merchant "m-other": another merchant's key for the tests' requests.
const otherKey = "sk_test_key_of_m-other"

// testKeys hold testKey for "m", and otherKey for "m-other".
var testKeys = func() apikey.Set {
	set, err := apikey.ParseFile(strings.NewReader(apikey.FileLine("m", testKey) + "\n" + apikey.FileLine("m-other", otherKey)))
	if err != nil {
		panic(err)
	}
	return set
}()

// authorize makes r present testKey.
func authorize(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testKey) }

// newServerWith returns a Server with p, whose Signer, APIKeys (testKeys, unless auth is
// disabled), PodName, Logger and Metrics the test need not set, its metrics and their registry.
func newServerWith(t testing.TB, p Params) (*Server, *Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if p.Signer == nil {
		p.Signer = testSigner(t)
	}
	if p.PodName == "" {
		p.PodName = "pod-test"
	}
	if p.APIKeys == nil && !p.AuthDisabled {
		p.APIKeys = testKeys
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if pinger, ok := p.Store.(Pinger); ok && p.DBCheck == nil {
		p.DBCheck = pinger
	}
	p.Metrics = NewMetrics(reg)
	s, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	return s, p.Metrics, reg
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func post(h http.Handler, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	authorize(r)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var row = &store.Customer{
	ID: "6f1c1c6e-8d0c-4d6e-9a55-2f0b8f1d3a11", MerchantID: "m", ExternalID: "e",
	CreatedAt: time.Date(2025, 5, 6, 7, 8, 9, 123456000, time.UTC),
}

const validBody = `{"merchant_id":"m","external_id":"e"}`

// TestRegisterStrategies covers the handler's part of each strategy's logic with
// scripted store answers, including the legacy bug and the empty-subject guard.
func TestRegisterStrategies(t *testing.T) {
	for _, tc := range []struct {
		name        string
		strategy    config.Strategy
		store       *fakeStore
		wantStatus  int
		wantCode    string
		wantSubject string
		wantCreated bool
		wantOutcome string
	}{
		{"existing", config.StrategyAtomic, &fakeStore{found: row}, 200, "", row.ID, false, outcomeExisting},
		{"created", config.StrategyAtomic, &fakeStore{created: row, createNew: true}, 200, "", row.ID, true, outcomeCreated},
		{"atomic lost race", config.StrategyAtomic, &fakeStore{created: row}, 200, "", row.ID, false, outcomeExisting},
		{"legacy signs nil", config.StrategyLegacy, &fakeStore{}, 200, "", "", false, outcomeNullSubject},
		{"return-existing guards nil", config.StrategyReturnExisting, &fakeStore{}, 500, "empty_subject", "", false, outcomeRefused},
		{"fail-fast guards nil", config.StrategyFailFast, &fakeStore{}, 500, "empty_subject", "", false, outcomeRefused},
		{"atomic guards nil", config.StrategyAtomic, &fakeStore{}, 500, "empty_subject", "", false, outcomeRefused},
		{"fail-fast conflict", config.StrategyFailFast, &fakeStore{createErr: fmt.Errorf("create: %w", store.ErrConflict)}, 409, "conflict", "", false, outcomeConflict},
		{"database down", config.StrategyAtomic, &fakeStore{findErr: errors.New("dial tcp: connection refused")}, 503, "unavailable", "", false, outcomeUnavailable},
		// The statement was valid; the server was too slow or the rows locked: retry.
		{"statement timeout", config.StrategyAtomic, &fakeStore{createErr: &pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}}, 503, "unavailable", "", false, outcomeUnavailable},
		{"statement error", config.StrategyAtomic, &fakeStore{createErr: &pgconn.PgError{Code: "42P01"}}, 500, "internal", "", false, outcomeError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, m := newTestServer(t, tc.store, tc.strategy)
			w := post(srv, validBody)
			if w.Code != tc.wantStatus || w.Header().Get("X-Served-By") != "pod-test" {
				t.Fatalf("status %d served-by %q, want %d; body %s", w.Code, w.Header().Get("X-Served-By"), tc.wantStatus, w.Body)
			}
			if got := counterValue(t, m.registrations.WithLabelValues(string(tc.strategy), tc.wantOutcome)); got != 1 {
				t.Errorf("registrations{outcome=%s} = %v, want 1", tc.wantOutcome, got)
			}
			if tc.wantCode != "" {
				var e Error
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != tc.wantCode || e.Message == "" {
					t.Fatalf("error body %s, want code %s", w.Body, tc.wantCode)
				}
				if (w.Code == 409 || w.Code == 503) && w.Header().Get("Retry-After") != "1" {
					t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
				}
				return
			}
			var resp TokenResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			claims, err := token.UnmarshalClaims(resp.Token)
			if err != nil {
				t.Fatal(err)
			}
			if claims.Subject != tc.wantSubject || resp.CustomerID != tc.wantSubject || resp.Created != tc.wantCreated {
				t.Fatalf("sub %q customer_id %q created %v; want %q, %v", claims.Subject, resp.CustomerID, resp.Created, tc.wantSubject, tc.wantCreated)
			}
			if tc.wantSubject != "" && claims.IssuedAt != row.CreatedAt.Unix() {
				t.Errorf("iat = %d, want the row's creation second %d", claims.IssuedAt, row.CreatedAt.Unix())
			}
			if claims.Audience != "test-audience" || claims.ExpiresAt != claims.IssuedAt+24*3600 {
				t.Errorf("aud %q exp %d; want test-audience and iat+24h", claims.Audience, claims.ExpiresAt)
			}
		})
	}
}

func TestTokenVerifiesAgainstJWKS(t *testing.T) {
	srv, _ := newTestServer(t, &fakeStore{found: row}, config.StrategyAtomic)
	w := post(srv, validBody)
	var resp TokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	jw := httptest.NewRecorder()
	srv.ServeHTTP(jw, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	var set token.JWKS
	if err := json.Unmarshal(jw.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier("test-issuer", "test-audience", set)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.VerifyAt(resp.Token, row.CreatedAt.Add(time.Hour))
	if err != nil || c.Subject != row.ID || c.MerchantID != "m" || c.ExternalID != "e" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	// Same row, another replica: the same bytes.
	other, _ := newTestServer(t, &fakeStore{found: row}, config.StrategyFailFast)
	if again := post(other, validBody); !strings.Contains(again.Body.String(), resp.Token) {
		t.Fatal("a second server signed a different token for the same row")
	}
}

// TestBadInput checks every kind of bad request gets its 4xx and never reaches the database.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, contentType, body string
		wantStatus                            int
		wantCode, wantAllow                   string
	}{
		{"wrong method", http.MethodGet, "/v1/tokens", "", "", 405, "method_not_allowed", "POST"},
		{"post to jwks", http.MethodPost, "/.well-known/jwks.json", "application/json", "{}", 405, "method_not_allowed", "GET, HEAD"},
		{"unknown path", http.MethodGet, "/v2/tokens", "", "", 404, "not_found", ""},
		{"no content type", http.MethodPost, "/v1/tokens", "", validBody, 415, "unsupported_media_type", ""},
		{"form", http.MethodPost, "/v1/tokens", "application/x-www-form-urlencoded", "merchant_id=m", 415, "unsupported_media_type", ""},
		{"too large", http.MethodPost, "/v1/tokens", "application/json", `{"merchant_id":"` + strings.Repeat("m", MaxBodyBytes) + `"}`, 413, "body_too_large", ""},
		{"bad json", http.MethodPost, "/v1/tokens", "application/json; charset=utf-8", `{"merchant_id":`, 400, "invalid_json", ""},
		{"unknown field", http.MethodPost, "/v1/tokens", "application/json", `{"merchant_id":"m","external_id":"e","x":1}`, 400, "unknown_field", ""},
		{"missing id", http.MethodPost, "/v1/tokens", "application/json", `{"merchant_id":"m"}`, 400, "invalid_field", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{found: row}
			srv, _ := newTestServer(t, st, config.StrategyAtomic)
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			authorize(r)
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			var e Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != tc.wantStatus || e.Code != tc.wantCode {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, tc.wantStatus, tc.wantCode)
			}
			if w.Header().Get("Allow") != tc.wantAllow || w.Header().Get("X-Served-By") != "pod-test" {
				t.Errorf("Allow %q X-Served-By %q", w.Header().Get("Allow"), w.Header().Get("X-Served-By"))
			}
			if len(st.calls) != 0 {
				t.Errorf("bad input reached the store: %v", st.calls)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	st := &fakeStore{pingErr: errors.New("down")}
	srv, _, reg := newServerWith(t, Params{Store: st, Strategy: config.StrategyAtomic})
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	if w := get(srv, "/livez"); w.Code != 200 {
		t.Errorf("livez = %d", w.Code)
	}
	for range 3 {
		if w := get(srv, "/readyz"); w.Code != 200 || w.Body.String() != `{"status":"ok","database":"up"}`+"\n" {
			t.Errorf("readyz = %d %s", w.Code, w.Body)
		}
	}
	// Readiness reads the cached state: a probe storm never reaches the database.
	if n := st.pingCount(); n != 0 {
		t.Errorf("readyz pinged the database %d times", n)
	}
	srv.SetDraining()
	if w := get(srv, "/readyz"); w.Code != 503 || !strings.Contains(w.Body.String(), `"status":"draining"`) {
		t.Errorf("readyz while draining = %d %s", w.Code, w.Body)
	}
	if w := get(srv, "/livez"); w.Code != 200 {
		t.Errorf("livez while draining = %d", w.Code)
	}

	// Metrics are not on the API's listener, only on their own.
	if w := get(srv, "/metrics"); w.Code != 404 || !strings.Contains(w.Body.String(), `"error":"not_found"`) {
		t.Errorf("/metrics on the API = %d %s, want the JSON 404 of any unknown path", w.Code, w.Body)
	}
	metrics := MetricsHandler(reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w := get(metrics, "/metrics")
	for _, want := range []string{
		`tokensvc_http_requests_total{code="503",route="/readyz"} 1`,
		`tokensvc_http_requests_total{code="200",route="/readyz"} 3`,
		`tokensvc_http_requests_total{code="404",route="other"} 1`,
		`tokensvc_http_request_duration_seconds_count{route="/livez"} 2`,
		`tokensvc_database_up 1`,
	} {
		if w.Code != 200 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics (%d) lack %s", w.Code, want)
		}
	}
	for _, path := range []string{"/", "/v1/tokens", "/readyz", "/metrics/"} {
		if w := get(metrics, path); w.Code != 404 || !strings.Contains(w.Body.String(), `"error":"not_found"`) {
			t.Errorf("%s on the metrics listener = %d %s, want 404", path, w.Code, w.Body)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/metrics", nil)
	w = httptest.NewRecorder()
	metrics.ServeHTTP(w, r)
	if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /metrics = %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

// TestWatchDatabase: the background check follows the database down and up again, readiness
// stays 200 and reports it, the gauge follows, and the watcher stops with its context.
func TestWatchDatabase(t *testing.T) {
	st := &fakeStore{}
	srv, m, _ := newServerWith(t, Params{Store: st, Strategy: config.StrategyAtomic, DBCheckInterval: 10 * time.Millisecond})
	readyz := func() (int, readiness) {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var r readiness
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
			t.Fatalf("readyz body %q: %v", w.Body, err)
		}
		return w.Code, r
	}
	// waitFor polls readyz until it reports database, or fails after a generous bound.
	waitFor := func(database string) readiness {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			code, r := readyz()
			if code != http.StatusOK || r.Status != "ok" {
				t.Fatalf("readyz = %d %+v; the database must not fail readiness", code, r)
			}
			if r.Database == database {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("readyz still reports database %q, want %q", r.Database, database)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); srv.WatchDatabase(ctx) }()
	defer func() { cancel(); <-stopped }()

	waitFor("up")
	st.setPingErr(errors.New("dial tcp: connection refused"))
	r := waitFor("down")
	if r.DatabaseDownFor == "" {
		t.Errorf("readyz while down = %+v; want database_down_for", r)
	}
	if got := gaugeValue(t, m.databaseUp); got != 0 {
		t.Errorf("tokensvc_database_up = %v while down, want 0", got)
	}
	time.Sleep(250 * time.Millisecond) // pacing on purpose: the outage lasts a while
	if _, r := readyz(); r.DatabaseDownFor == "0s" {
		t.Errorf("database_down_for = %s after 250ms down", r.DatabaseDownFor)
	}
	st.setPingErr(nil)
	if r := waitFor("up"); r.DatabaseDownFor != "" {
		t.Errorf("readyz once up again = %+v", r)
	}
	if got := gaugeValue(t, m.databaseUp); got != 1 {
		t.Errorf("tokensvc_database_up = %v once up again, want 1", got)
	}

	cancel()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		t.Fatal("WatchDatabase did not return after its context was cancelled")
	}
	n := st.pingCount()
	time.Sleep(50 * time.Millisecond) // pacing on purpose: five intervals without a ping
	if st.pingCount() != n {
		t.Error("the database is still pinged after WatchDatabase returned")
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// TestRegisterRefusedDatabaseIsQuick: with the database's port closed, a registration answers
// 503 unavailable with Retry-After at once, not after the request timeout.
func TestRegisterRefusedDatabaseIsQuick(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	pool, err := store.Open(context.Background(), "postgres://nobody@"+addr+"/x?sslmode=disable",
		store.WithConnectTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	srv, m, _ := newServerWith(t, Params{Store: store.New(pool, store.Atomic{}, nil), Strategy: config.StrategyAtomic,
		RequestTimeout: 5 * time.Second})
	start := time.Now()
	w := post(srv, validBody)
	took := time.Since(start)
	var e Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != 503 || e.Code != "unavailable" || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("registration with the database refusing connections = %d %s %v", w.Code, w.Body, w.Header())
	}
	if took > time.Second {
		t.Fatalf("503 after %s; a refused connection should answer at once, not near the 5s request timeout", took)
	}
	if got := counterValue(t, m.registrations.WithLabelValues("atomic", outcomeUnavailable)); got != 1 {
		t.Errorf("unavailable outcomes = %v, want 1", got)
	}
}

func TestPanicBecomesJSON500(t *testing.T) {
	srv, _ := newTestServer(t, &fakeStore{}, config.StrategyAtomic)
	srv.routes["/livez"] = route{[]string{http.MethodGet}, func(http.ResponseWriter, *http.Request) { panic("boom") }}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/livez", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"internal"`) {
		t.Fatalf("panic answered %d %s", w.Code, w.Body)
	}
}

// blockingStore is a Store whose Find waits for release, announcing each caller on entered.
type blockingStore struct {
	fakeStore
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Find(ctx context.Context, k store.Key) (*store.Customer, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.fakeStore.Find(ctx, k)
}

// TestInFlightCap: with MaxInFlight registrations stuck in the database, one more is shed at
// once with 503 overloaded and Retry-After, and the slots come back when they finish.
func TestInFlightCap(t *testing.T) {
	const limit = 3
	st := &blockingStore{fakeStore: fakeStore{found: row}, entered: make(chan struct{}), release: make(chan struct{})}
	srv, m, _ := newServerWith(t, Params{Store: st, Strategy: config.StrategyAtomic, MaxInFlight: limit})
	var wg sync.WaitGroup
	codes := make([]int, limit)
	for i := range limit {
		wg.Go(func() { codes[i] = post(srv, validBody).Code })
	}
	for range limit {
		<-st.entered // all of them are inside the database call now
	}
	if got := gaugeValue(t, m.inFlight); got != limit {
		t.Errorf("tokensvc_registrations_in_flight = %v, want %d", got, limit)
	}

	start := time.Now()
	w := post(srv, validBody)
	took := time.Since(start)
	var e Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != 503 || e.Code != "overloaded" || e.Message == "" ||
		w.Header().Get("Retry-After") != "1" {
		t.Fatalf("request over the cap = %d %s %v; want 503 overloaded with Retry-After: 1", w.Code, w.Body, w.Header())
	}
	if took > 500*time.Millisecond {
		t.Errorf("shedding took %s; it must not wait for a slot", took)
	}
	if got := counterValue(t, m.registrations.WithLabelValues("atomic", outcomeOverloaded)); got != 1 {
		t.Errorf("overloaded outcomes = %v, want 1", got)
	}

	close(st.release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("held request %d = %d, want 200", i, c)
		}
	}
	// The slots came back: a full set of requests goes through again.
	go func() {
		for range st.entered {
		}
	}()
	defer close(st.entered)
	for i := range limit + 1 {
		if w := post(srv, validBody); w.Code != http.StatusOK {
			t.Fatalf("request %d after the others finished = %d %s", i, w.Code, w.Body)
		}
	}
	if got := gaugeValue(t, m.inFlight); got != 0 {
		t.Errorf("tokensvc_registrations_in_flight = %v when idle, want 0", got)
	}
}

// TestAuth: authentication comes first, before the body is even read; then the body is
// validated; then the key's merchant must be the body's. Each refusal is counted.
func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		name, authorization, contentType, body string
		wantStatus                             int
		wantCode, wantOutcome, wantMessage     string
	}{
		{"no key", "", "application/json", validBody, 401, "unauthenticated", outcomeUnauthenticated, "missing Authorization"},
		{"basic auth", "Basic bTpwYXNz", "application/json", validBody, 401, "unauthenticated", outcomeUnauthenticated, "Bearer <API key>"},
		{"empty bearer", "Bearer ", "application/json", validBody, 401, "unauthenticated", outcomeUnauthenticated, "Bearer <API key>"},
		{"two words", "Bearer " + testKey + " x", "application/json", validBody, 401, "unauthenticated", outcomeUnauthenticated, "Bearer <API key>"},
		{"unknown key", "Bearer sk_guess", "application/json", validBody, 401, "unauthenticated", outcomeUnauthenticated, "unknown API key"},
		{"the hash as key", "Bearer " + apikey.Hash(testKey), "application/json", validBody, 401, "unauthenticated", outcomeUnauthenticated, "unknown API key"},
		// Authentication before the body: a bad body without a key is a 401, not a 400.
		{"no key, bad body", "", "text/plain", "junk", 401, "unauthenticated", outcomeUnauthenticated, ""},
		{"key, bad body", "Bearer " + testKey, "application/json", `{"merchant_id":`, 400, "invalid_json", outcomeInvalidInput, ""},
		{"another merchant's key", "Bearer " + otherKey, "application/json", validBody, 403, "forbidden", outcomeForbidden,
			"this API key may not act for merchant m"},
		{"scheme in lower case", "bearer " + testKey, "application/json", validBody, 200, "", outcomeExisting, ""},
		{"own key", "Bearer " + testKey, "application/json", validBody, 200, "", outcomeExisting, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{found: row}
			srv, m := newTestServer(t, st, config.StrategyAtomic)
			r := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.contentType)
			if tc.authorization != "" {
				r.Header.Set("Authorization", tc.authorization)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, tc.wantStatus)
			}
			if got := counterValue(t, m.registrations.WithLabelValues("atomic", tc.wantOutcome)); got != 1 {
				t.Errorf("outcome %s counted %v times, want 1", tc.wantOutcome, got)
			}
			if wantChallenge := tc.wantStatus == 401; (w.Header().Get("WWW-Authenticate") == "Bearer") != wantChallenge {
				t.Errorf("WWW-Authenticate = %q on a %d", w.Header().Get("WWW-Authenticate"), w.Code)
			}
			if tc.wantStatus == 200 {
				return
			}
			var e Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != tc.wantCode || !strings.Contains(e.Message, tc.wantMessage) {
				t.Fatalf("body %s, want error %s with a message containing %q", w.Body, tc.wantCode, tc.wantMessage)
			}
			if len(st.calls) != 0 {
				t.Errorf("a refused request reached the store: %v", st.calls)
			}
		})
	}
}

// TestAuthNeverLogsTheKey: whatever a client presents, the logs do not hold it.
func TestAuthNeverLogsTheKey(t *testing.T) {
	var logs strings.Builder
	srv, _, _ := newServerWith(t, Params{Store: &fakeStore{found: row}, Strategy: config.StrategyAtomic,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for _, key := range []string{"sk_guessed_secret", testKey} {
		for _, body := range []string{validBody, `{"merchant_id":"m-other","external_id":"e"}`} {
			r := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+key)
			srv.ServeHTTP(httptest.NewRecorder(), r)
		}
	}
	if !strings.Contains(logs.String(), "unauthenticated registration") || !strings.Contains(logs.String(), "api key used for another merchant") {
		t.Fatalf("refusals not logged:\n%s", logs.String())
	}
	for _, secret := range []string{"sk_guessed_secret", testKey, "sk_test"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the logs hold the key %q:\n%s", secret, logs.String())
		}
	}
}

// TestUnauthenticatedLoggedAtDebug: a burst of registrations without a key writes nothing at the
// service's default level (Info), and one line each at Debug; the counter counts them all.
func TestUnauthenticatedLoggedAtDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logs strings.Builder
		srv, m, _ := newServerWith(t, Params{Store: &fakeStore{found: row}, Strategy: config.StrategyAtomic,
			Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: level}))})
		const burst = 100
		for range burst {
			r := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(validBody))
			r.Header.Set("Content-Type", "application/json")
			srv.ServeHTTP(httptest.NewRecorder(), r)
		}
		lines := strings.Count(logs.String(), "unauthenticated registration")
		if want := map[slog.Level]int{slog.LevelInfo: 0, slog.LevelDebug: burst}[level]; lines != want {
			t.Errorf("at level %s, %d requests without a key logged %d lines, want %d", level, burst, lines, want)
		}
		if got := counterValue(t, m.registrations.WithLabelValues("atomic", outcomeUnauthenticated)); got != burst {
			t.Errorf("at level %s, unauthenticated counted %v times, want %d", level, got, burst)
		}
	}
}

// TestAuthDisabled: with TOKENSVC_AUTH=disabled any client registers for any merchant.
func TestAuthDisabled(t *testing.T) {
	srv, m, _ := newServerWith(t, Params{Store: &fakeStore{found: row}, Strategy: config.StrategyAtomic, AuthDisabled: true})
	r := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(validBody))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != 200 || counterValue(t, m.registrations.WithLabelValues("atomic", outcomeExisting)) != 1 {
		t.Fatalf("unauthenticated registration with auth disabled = %d %s", w.Code, w.Body)
	}
	if _, err := New(Params{Store: &fakeStore{}, Signer: testSigner(t), Strategy: config.StrategyAtomic,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(prometheus.NewRegistry())}); err == nil {
		t.Fatal("New without API keys and with auth enabled succeeded")
	}
}
