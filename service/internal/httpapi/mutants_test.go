//go:build selftest

package httpapi

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/mutant"
	"github.com/stampede-e2e/stampede/service/internal/store"
	"github.com/stampede-e2e/stampede/service/internal/token"
	"github.com/stampede-e2e/stampede/service/mutants"
)

// mutantEnv is the atomic service with one mutant active, over a fresh database.
type mutantEnv struct {
	srv *Server
	// loser shares srv's store, but its lookup never finds anything: each request through it
	// replays a loser of the insert race (its lookup ran before the winner's row landed).
	loser *Server
	pool  *pgxpool.Pool
	// counts and loserCounts read srv's and loser's tokensvc_registrations_total by outcome.
	counts, loserCounts func() map[string]float64
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// blindLookup is a Store whose Find always misses.
type blindLookup struct{ *store.Store }

func (blindLookup) Find(context.Context, store.Key) (*store.Customer, error) { return nil, nil }

// withMutant activates mutant name (before the pool opens and the schema is prepared, as
// at start) and builds the service over a fresh database.
func withMutant(t *testing.T, name string) mutantEnv {
	t.Helper()
	if err := mutant.Set(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mutant.Set("") })
	ctx := context.Background()
	pool, err := store.Open(ctx, postgres(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	strategy, err := store.StrategyFor(config.StrategyAtomic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Prepare(ctx, pool, strategy, quietLog); err != nil {
		t.Fatal(err)
	}
	st := store.New(pool, strategy, nil)
	srv, _, reg := newServerWith(t, Params{Store: st, Strategy: config.StrategyAtomic})
	loser, _, loserReg := newServerWith(t, Params{Store: blindLookup{st}, Strategy: config.StrategyAtomic})
	return mutantEnv{srv: srv, loser: loser, pool: pool,
		counts:      func() map[string]float64 { return registrationCounts(t, reg) },
		loserCounts: func() map[string]float64 { return registrationCounts(t, loserReg) },
	}
}

// reply is one answer of POST /v1/tokens.
type reply struct {
	status int
	header http.Header
	TokenResponse
	err    Error
	claims token.Claims // unverified
}

// register registers customer externalID of merchant "m" with m's own key.
func register(t *testing.T, h http.Handler, externalID string) reply {
	t.Helper()
	return registerWith(t, h, testKey, externalID)
}

// registerWith registers customer externalID of merchant "m" presenting key.
func registerWith(t *testing.T, h http.Handler, key, externalID string) reply {
	t.Helper()
	return registerAs(t, h, key, "m", externalID)
}

func mustOK(t *testing.T, r reply) reply {
	t.Helper()
	if r.status != http.StatusOK || r.CustomerID == "" {
		t.Fatalf("status %d %+v, want 200 with a customer", r.status, r.err)
	}
	return r
}

// jwks is the key set the service publishes.
func jwks(t *testing.T, h http.Handler) token.JWKS {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	var set token.JWKS
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// verify checks tok against the published key and the configured issuer.
func verify(t *testing.T, h http.Handler, tok string) (token.Claims, error) {
	t.Helper()
	v, err := token.NewVerifier("test-issuer", "test-audience", jwks(t, h))
	if err != nil {
		t.Fatal(err)
	}
	return v.Verify(tok)
}

// jwksBody is the JWKS the service publishes, as bytes.
func jwksBody(t *testing.T, h http.Handler) string {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET jwks: %d", w.Code)
	}
	return w.Body.String()
}

// headerKid returns the kid of tok's header, and whether it has one.
func headerKid(t *testing.T, tok string) (string, bool) {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, ok := parsed.Header["kid"].(string)
	return kid, ok
}

// insertRow stores a customer as another replica would have, and returns its id.
func insertRow(t *testing.T, pool *pgxpool.Pool, externalID string, createdAt time.Time) string {
	t.Helper()
	var id string
	err := pool.QueryRow(context.Background(), `INSERT INTO customers (merchant_id, external_id, created_at)
		VALUES ('m', $1, $2) RETURNING id::text`, externalID, createdAt).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func rowCount(t *testing.T, pool *pgxpool.Pool, where string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM customers WHERE "+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// syncCommit returns a connection's synchronous_commit and where it came from: "client" when
// the connection asked for it. (pgtest's server runs with synchronous_commit=off for speed,
// so the value alone does not tell the mutant's connections from production's.)
func syncCommit(t *testing.T, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (setting, source string) {
	t.Helper()
	err := db.QueryRow(context.Background(),
		"SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'").Scan(&setting, &source)
	if err != nil {
		t.Fatal(err)
	}
	return setting, source
}

// registerOverTheWire registers customer externalID of merchant "m" through a real server in
// front of h, as a client does: what a mutant that never answers does shows only on a real
// connection. It returns the status, or the transport error.
func registerOverTheWire(t *testing.T, h http.Handler, externalID string) (int, error) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/tokens", strings.NewReader(`{"merchant_id":"m","external_id":"`+externalID+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testKey)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

// abandonsTheLoser shows a mutant under which the loser of the insert race gets no answer,
// over a real connection, while the winner and an existing customer's request get theirs.
func abandonsTheLoser(t *testing.T, e mutantEnv) {
	t.Helper()
	if status, err := registerOverTheWire(t, e.srv, "c1"); err != nil || status != http.StatusOK {
		t.Fatalf("the winner: %d, %v; want 200", status, err)
	}
	if status, err := registerOverTheWire(t, e.srv, "c1"); err != nil || status != http.StatusOK {
		t.Fatalf("an existing customer: %d, %v; want 200", status, err)
	}
	status, err := registerOverTheWire(t, e.loser, "c1")
	if err == nil || status != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("the loser: status %d, %v; want no answer at all (EOF)", status, err)
	}
	if n := rowCount(t, e.pool, "external_id = 'c1'"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

// mutantChecks shows, per mutant, its defect through the real handler and database; "" is
// the self-test build with no mutant, which must behave as production.
var mutantChecks = map[string]func(t *testing.T, e mutantEnv){
	"": func(t *testing.T, e mutantEnv) {
		first := mustOK(t, register(t, e.srv, "c1"))
		c, err := verify(t, e.srv, first.Token)
		if err != nil || !first.Created || c.Subject != first.CustomerID || c.ExternalID != "c1" {
			t.Fatalf("first registration: created %v, claims %+v, %v", first.Created, c, err)
		}
		var createdAt time.Time
		if err := e.pool.QueryRow(context.Background(), "SELECT created_at FROM customers WHERE id = $1",
			first.CustomerID).Scan(&createdAt); err != nil || c.IssuedAt != createdAt.Unix() {
			t.Fatalf("iat %d, row created %v (%v)", c.IssuedAt, createdAt, err)
		}
		again := mustOK(t, register(t, e.srv, "c1"))
		lost := mustOK(t, register(t, e.loser, "c1"))
		if again.Created || lost.Created || again.Token != first.Token || lost.Token != first.Token {
			t.Fatalf("existing %+v, lost race %+v; want the first token, created false", again, lost)
		}
		// A client selects the published key by the token's kid: one key, named by it.
		if set := jwks(t, e.srv); len(set.Keys) != 1 || set.Keys[0].KeyID == "" {
			t.Fatalf("JWKS %+v, want one key with a kid", set)
		} else if kid, ok := headerKid(t, first.Token); !ok || kid != set.Keys[0].KeyID {
			t.Fatalf("token kid %q (%v), JWKS kid %q", kid, ok, set.Keys[0].KeyID)
		}
		if v, src := syncCommit(t, e.pool); src == "client" {
			t.Fatalf("the service's connection set synchronous_commit = %s", v)
		}
		if n := rowCount(t, e.pool, "true"); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
		// The row holds what was sent, and nothing else is written (issue 18's rows mutants).
		if _, email, name := registerContact(t, e, "c3", "c3@example.com", "Customer Number 3"); email == nil || *email != "c3@example.com" ||
			name == nil || *name != "Customer Number 3" || rowCount(t, e.pool, "true") != 2 {
			t.Fatalf("row of c3: email %v, name %v, %d rows; want what was sent, 2 rows", email, name, rowCount(t, e.pool, "true"))
		}
		// Another merchant's key: refused, whether the customer exists or not, and nothing created.
		for _, ext := range []string{"c1", "c2"} {
			if r := registerWith(t, e.srv, otherKey, ext); r.status != 403 || r.err.Code != "forbidden" {
				t.Fatalf("m-other's key for m's customer %s: %d %+v, want 403 forbidden", ext, r.status, r.err)
			}
		}
		if n := rowCount(t, e.pool, "external_id = 'c2'"); n != 0 {
			t.Fatalf("a refused request created %d rows", n)
		}
		if got, want := e.counts(), map[string]float64{outcomeCreated: 2, outcomeExisting: 1, outcomeForbidden: 2}; !maps.Equal(got, want) {
			t.Fatalf("outcomes counted %v, want %v", got, want)
		}
		if got, want := e.loserCounts(), map[string]float64{outcomeExisting: 1}; !maps.Equal(got, want) {
			t.Fatalf("the loser counted %v, want %v", got, want)
		}
	},
	mutants.LoserEmptySubject: func(t *testing.T, e mutantEnv) {
		mustOK(t, register(t, e.srv, "c1"))
		if r := register(t, e.loser, "c1"); r.status != 500 || r.err.Code != "empty_subject" {
			t.Fatalf("loser: %d %+v, want 500 empty_subject", r.status, r.err)
		}
	},
	mutants.LoserConflict: func(t *testing.T, e mutantEnv) {
		mustOK(t, register(t, e.srv, "c1"))
		if r := register(t, e.loser, "c1"); r.status != 409 || r.err.Code != "conflict" || r.header.Get("Retry-After") != "1" {
			t.Fatalf("loser: %d %+v %v, want 409 conflict with Retry-After", r.status, r.err, r.header)
		}
	},
	mutants.LoserUnavailable: func(t *testing.T, e mutantEnv) {
		mustOK(t, register(t, e.srv, "c1"))
		if r := register(t, e.loser, "c1"); r.status != 503 || r.err.Code != "unavailable" || r.header.Get("Retry-After") != "1" {
			t.Fatalf("loser: %d %+v %v, want 503 unavailable with Retry-After", r.status, r.err, r.header)
		}
		if err := e.srv.p.DBCheck.Ping(context.Background()); err != nil {
			t.Fatalf("the database is up: %v", err)
		}
	},
	mutants.CreatedAlways: func(t *testing.T, e mutantEnv) {
		first := mustOK(t, register(t, e.srv, "c1"))
		again := mustOK(t, register(t, e.srv, "c1"))
		lost := mustOK(t, register(t, e.loser, "c1"))
		if !first.Created || !again.Created || !lost.Created || again.Token != first.Token {
			t.Fatalf("created: first %v, existing %v, lost race %v; want true every time, one token", first.Created, again.Created, lost.Created)
		}
	},
	mutants.CreatedNever: func(t *testing.T, e mutantEnv) {
		first := mustOK(t, register(t, e.srv, "c1"))
		if first.Created || rowCount(t, e.pool, "external_id = 'c1'") != 1 {
			t.Fatalf("the registration that created the row says created %v", first.Created)
		}
	},
	mutants.IatNow: func(t *testing.T, e mutantEnv) {
		created := time.Date(2025, 1, 2, 3, 4, 5, 600000000, time.UTC)
		insertRow(t, e.pool, "old", created)
		r := mustOK(t, register(t, e.srv, "old"))
		if _, err := verify(t, e.srv, r.Token); err != nil {
			t.Fatal(err)
		}
		if r.claims.IssuedAt == created.Unix() || time.Since(time.Unix(r.claims.IssuedAt, 0)) > time.Minute {
			t.Fatalf("iat %d for a row created at %d; want the signing time", r.claims.IssuedAt, created.Unix())
		}
	},
	mutants.IatRounded: func(t *testing.T, e mutantEnv) {
		late := time.Date(2025, 1, 2, 3, 4, 5, 600000000, time.UTC)
		early := time.Date(2025, 1, 2, 3, 4, 5, 400000000, time.UTC)
		insertRow(t, e.pool, "late", late)
		insertRow(t, e.pool, "early", early)
		if r := mustOK(t, register(t, e.srv, "late")); r.claims.IssuedAt != late.Unix()+1 {
			t.Fatalf("iat %d for a row created at %s; want the second after", r.claims.IssuedAt, late)
		}
		if r := mustOK(t, register(t, e.srv, "early")); r.claims.IssuedAt != early.Unix() {
			t.Fatalf("iat %d for a row created at %s; rounding down is right", r.claims.IssuedAt, early)
		}
	},
	mutants.ForeignKey: func(t *testing.T, e mutantEnv) {
		r := mustOK(t, register(t, e.srv, "c1"))
		if _, err := verify(t, e.srv, r.Token); err == nil || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("verify against the JWKS = %v, want a signature failure", err)
		}
		set := jwks(t, e.srv)
		set.Keys[0].X = base64.RawURLEncoding.EncodeToString(mutant.StartupKey().Public().(ed25519.PublicKey))
		v, err := token.NewVerifier("test-issuer", "test-audience", set)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := v.Verify(r.Token); err != nil || c.Subject != r.CustomerID {
			t.Fatalf("the token is not a well-formed token signed by the startup key: %+v, %v", c, err)
		}
	},
	mutants.WrongIssuer: func(t *testing.T, e mutantEnv) {
		r := mustOK(t, register(t, e.srv, "c1"))
		if _, err := verify(t, e.srv, r.Token); err == nil || !strings.Contains(err.Error(), "issuer") {
			t.Fatalf("verify = %v, want an issuer failure", err)
		}
		v, err := token.NewVerifier("tokensvc-staging", "test-audience", jwks(t, e.srv))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(r.Token); err != nil {
			t.Fatalf("signature with the published key: %v", err)
		}
	},
	mutants.SubExternalID: func(t *testing.T, e mutantEnv) {
		r := mustOK(t, register(t, e.srv, "c1"))
		c, err := verify(t, e.srv, r.Token)
		if err != nil || c.Subject != "c1" || c.Subject == r.CustomerID {
			t.Fatalf("claims %+v (%v), customer %s; want sub = external_id", c, err, r.CustomerID)
		}
	},
	mutants.SharedLastCustomer: func(t *testing.T, e mutantEnv) {
		// Nothing created by this process yet: the loser falls back to the winner.
		b := insertRow(t, e.pool, "b", time.Now())
		if r := mustOK(t, register(t, e.loser, "b")); r.CustomerID != b {
			t.Fatalf("loser before any creation got %s, want the winner %s", r.CustomerID, b)
		}
		a := mustOK(t, register(t, e.srv, "a")) // this process creates a
		c := insertRow(t, e.pool, "c", time.Now())
		r := mustOK(t, register(t, e.loser, "c")) // another replica won c's race
		claims, err := verify(t, e.srv, r.Token)
		if err != nil || r.CustomerID != a.CustomerID || claims.ExternalID != "a" || r.Token != a.Token {
			t.Fatalf("loser for c (row %s) got customer %s, claims %+v (%v); want a's token", c, r.CustomerID, claims, err)
		}
	},
	mutants.NoUniqueIndex: func(t *testing.T, e mutantEnv) {
		var unique bool
		if err := e.pool.QueryRow(context.Background(), "SELECT to_regclass('customers_merchant_external_key') IS NOT NULL").Scan(&unique); err != nil || unique {
			t.Fatalf("unique index present: %v, %v", unique, err)
		}
		first := mustOK(t, register(t, e.srv, "c1"))
		again := mustOK(t, register(t, e.loser, "c1")) // its re-check finds the row
		if !first.Created || again.Created || again.Token != first.Token {
			t.Fatalf("first %+v, then %+v", first, again)
		}
		// Nothing stops a second row (the store test replays two simultaneous creates).
		insertRow(t, e.pool, "c1", time.Now())
		if n := rowCount(t, e.pool, "external_id = 'c1'"); n != 2 {
			t.Fatalf("%d rows for c1, want 2", n)
		}
	},
	mutants.AckUncommitted: func(t *testing.T, e mutantEnv) {
		first := mustOK(t, register(t, e.srv, "c1"))
		if !first.Created || rowCount(t, e.pool, "id = $1", first.CustomerID) != 0 || rowCount(t, e.pool, "true") != 0 {
			t.Fatalf("created %v, yet the acknowledged row exists", first.Created)
		}
		again := mustOK(t, register(t, e.srv, "c1"))
		if !again.Created || again.CustomerID == first.CustomerID {
			t.Fatalf("second registration %+v; want another 'new' customer", again)
		}
	},
	mutants.AsyncCommit: func(t *testing.T, e mutantEnv) {
		mustOK(t, register(t, e.srv, "c1"))
		// Every connection of the pool, not just one: hold them all at once.
		conns := make([]*pgxpool.Conn, 3)
		for i := range conns {
			c, err := e.pool.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			conns[i] = c
			if v, src := syncCommit(t, c); v != "off" || src != "client" {
				t.Fatalf("connection %d: synchronous_commit = %s from %s; want off, set by the service", i, v, src)
			}
		}
	},
	mutants.AnyMerchantKey: func(t *testing.T, e mutantEnv) {
		// m-other's key registers m's new customer, and gets the token of m's existing one.
		created := mustOK(t, registerWith(t, e.srv, otherKey, "c1"))
		c, err := verify(t, e.srv, created.Token)
		if err != nil || !created.Created || c.MerchantID != "m" || rowCount(t, e.pool, "merchant_id = 'm' AND external_id = 'c1'") != 1 {
			t.Fatalf("m-other's key for m's new customer: %+v, claims %+v (%v); want m's customer created", created, c, err)
		}
		own := mustOK(t, register(t, e.srv, "c2"))
		if r := mustOK(t, registerWith(t, e.srv, otherKey, "c2")); r.Token != own.Token || r.Created {
			t.Fatalf("m-other's key for m's existing customer: %+v; want m's token %s", r, own.Token)
		}
		// The pod counts what it answered: only the key the request carried gives the defect away.
		if got, want := e.counts(), map[string]float64{outcomeCreated: 2, outcomeExisting: 1}; !maps.Equal(got, want) {
			t.Fatalf("outcomes counted %v, want %v", got, want)
		}
	},
	mutants.UncountedExisting: func(t *testing.T, e mutantEnv) {
		first := mustOK(t, register(t, e.srv, "c1"))
		again := mustOK(t, register(t, e.srv, "c1"))
		lost := mustOK(t, register(t, e.loser, "c1"))
		if !first.Created || again.Created || lost.Created || again.Token != first.Token || lost.Token != first.Token {
			t.Fatalf("answers: first %+v, existing %+v, lost race %+v; want production's", first, again, lost)
		}
		// Three answers, one count: the existing customer's two 200s are counted nowhere, not
		// even as errors.
		if got, want := e.counts(), map[string]float64{outcomeCreated: 1}; !maps.Equal(got, want) {
			t.Fatalf("outcomes counted %v, want %v", got, want)
		}
		if got := e.loserCounts(); len(got) != 0 {
			t.Fatalf("the loser counted %v, want nothing", got)
		}
	},
	// issue 18, answer shape
	mutants.Created201: func(t *testing.T, e mutantEnv) {
		first := registerRaw(t, e.srv, testKey, "c1")
		var body TokenResponse
		if err := json.Unmarshal(first.Body.Bytes(), &body); err != nil || first.Code != http.StatusCreated || !body.Created ||
			first.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("first registration: %d %s %q (%v); want 201 with the token answer", first.Code, first.Header().Get("Content-Type"), first.Body, err)
		}
		if _, err := verify(t, e.srv, body.Token); err != nil {
			t.Fatalf("the 201's token: %v", err)
		}
		again := registerRaw(t, e.srv, testKey, "c1")
		if again.Code != http.StatusOK || !strings.Contains(again.Body.String(), body.Token) {
			t.Fatalf("existing customer: %d %q; want 200 with the same token", again.Code, again.Body)
		}
		// Counted as what it is: only the status gives the defect away.
		if got, want := e.counts(), map[string]float64{outcomeCreated: 1, outcomeExisting: 1}; !maps.Equal(got, want) {
			t.Fatalf("outcomes counted %v, want %v", got, want)
		}
	},
	mutants.SniffedContentType: func(t *testing.T, e mutantEnv) {
		w := registerRaw(t, e.srv, testKey, "c1")
		var body TokenResponse
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusOK || !body.Created ||
			w.Header().Get("Content-Type") != "text/plain; charset=utf-8" || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("registration: %d %v %q (%v); want 200 with the token answer as text/plain", w.Code, w.Header(), w.Body, err)
		}
		if refused := registerRaw(t, e.srv, otherKey, "c1"); refused.Code != http.StatusForbidden || refused.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("a refusal: %d %v; errors keep their type", refused.Code, refused.Header())
		}
	},
	mutants.TerseErrors: func(t *testing.T, e mutantEnv) {
		for key, want := range map[string]int{otherKey: http.StatusForbidden, "": http.StatusUnauthorized} {
			w := registerRaw(t, e.srv, key, "c1")
			if w.Code != want || w.Body.String() != `{"error":"`+map[int]string{403: "forbidden", 401: "unauthenticated"}[want]+`"}`+"\n" ||
				w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("key %q: %d %v %q; want %d with only the error code", key, w.Code, w.Header(), w.Body, want)
			}
		}
		if r := mustOK(t, register(t, e.srv, "c1")); !r.Created {
			t.Fatalf("registration: %+v", r)
		}
	},
	mutants.Bare401: func(t *testing.T, e mutantEnv) {
		for _, key := range []string{"", "sk_unknown"} {
			w := registerRaw(t, e.srv, key, "c1")
			var body Error
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusUnauthorized ||
				body.Code != "unauthenticated" || body.Message == "" || len(w.Header().Values("WWW-Authenticate")) != 0 {
				t.Fatalf("key %q: %d %v %q (%v); want 401 unauthenticated without a challenge", key, w.Code, w.Header(), w.Body, err)
			}
		}
		if refused := registerRaw(t, e.srv, otherKey, "c1"); refused.Code != http.StatusForbidden {
			t.Fatalf("another merchant's key: %d", refused.Code)
		}
		mustOK(t, register(t, e.srv, "c1"))
	},
	// issue 18, answers that never arrive
	mutants.LoserDropsConnection: func(t *testing.T, e mutantEnv) {
		var exits []int
		t.Cleanup(mutant.SetExit(func(code int) { exits = append(exits, code) }))
		abandonsTheLoser(t, e)
		if len(exits) != 0 {
			t.Fatalf("exited %v: this mutant only drops the connection", exits)
		}
	},
	mutants.LoserExits: func(t *testing.T, e mutantEnv) {
		// The exit is the test's: it records the call and returns, and the mutant then drops
		// the connection, which is what the client of an exited process sees.
		var exits []int
		t.Cleanup(mutant.SetExit(func(code int) { exits = append(exits, code) }))
		abandonsTheLoser(t, e)
		if !slices.Equal(exits, []int{1}) {
			t.Fatalf("exits %v over a winner, an existing customer and a loser; want exit(1) once, the loser's", exits)
		}
	},
	// issue 18, auth surface and colliding tenants
	mutants.TenantBlindLookup: func(t *testing.T, e mutantEnv) {
		// m's customer c1 first, then m-other's customer under the same external id.
		first := mustOK(t, register(t, e.srv, "c1"))
		second := mustOK(t, registerAs(t, e.srv, otherKey, "m-other", "c1"))
		if second.CustomerID != first.CustomerID || second.Token != first.Token || second.Created || second.claims.MerchantID != "m" {
			t.Fatalf("m-other's c1: %+v, claims %+v; want m's customer %s and its token", second, second.claims, first.CustomerID)
		}
		if n := rowCount(t, e.pool, "merchant_id = 'm-other' AND external_id = 'c1'"); n != 0 {
			t.Fatalf("m-other's c1 has %d rows, want none: the lookup found m's", n)
		}
	},
	mutants.UnknownKeyForbidden: func(t *testing.T, e mutantEnv) {
		// A well-formed key of no merchant: 403 forbidden, without the challenge a 401 carries.
		unknown := registerWith(t, e.srv, "sk_"+strings.Repeat("A", 43), "c1")
		if unknown.status != http.StatusForbidden || unknown.err.Code != "forbidden" || unknown.header.Get("WWW-Authenticate") != "" {
			t.Fatalf("unknown key: %d %+v, WWW-Authenticate %q; want 403 forbidden without it", unknown.status, unknown.err, unknown.header.Get("WWW-Authenticate"))
		}
		// No key and a malformed one are still 401, and nothing is registered.
		for _, key := range []string{"", "two words"} {
			if r := registerWith(t, e.srv, key, "c1"); r.status != http.StatusUnauthorized || r.err.Code != "unauthenticated" {
				t.Fatalf("key %q: %d %+v; want 401 unauthenticated", key, r.status, r.err)
			}
		}
		if n := rowCount(t, e.pool, "true"); n != 0 {
			t.Fatalf("%d rows after refused requests, want none", n)
		}
		if got, want := e.counts(), map[string]float64{outcomeForbidden: 1, outcomeUnauthenticated: 2}; !maps.Equal(got, want) {
			t.Fatalf("outcomes counted %v, want %v", got, want)
		}
	},
}

// registerRaw sends a registration of customer externalID of merchant "m" with key ("" for none) and
// returns the answer as it is: status, headers and body.
func registerRaw(t *testing.T, h http.Handler, key, externalID string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(`{"merchant_id":"m","external_id":"`+externalID+`"}`))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// issue 18, jwks
func init() {
	mutantChecks[mutants.UnknownKid] = func(t *testing.T, e mutantEnv) {
		r := mustOK(t, register(t, e.srv, "c1"))
		set := jwks(t, e.srv)
		kid, ok := headerKid(t, r.Token)
		if !ok || len(set.Keys) != 1 || kid == set.Keys[0].KeyID {
			t.Fatalf("token kid %q (%v), JWKS %+v; want a kid the JWKS does not publish", kid, ok, set)
		}
		if _, err := verify(t, e.srv, r.Token); err == nil || !strings.Contains(err.Error(), "unknown kid") {
			t.Fatalf("verify against the JWKS = %v, want unknown kid", err)
		}
		// Signed by the published key all the same: only the kid gives it away.
		set.Keys[0].KeyID = kid
		v, err := token.NewVerifier("test-issuer", "test-audience", set)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := v.Verify(r.Token); err != nil || c.Subject != r.CustomerID {
			t.Fatalf("the published key under the token's kid: %+v, %v", c, err)
		}
	}
	mutantChecks[mutants.ReplicaJWKS] = func(t *testing.T, e mutantEnv) {
		r := mustOK(t, register(t, e.srv, "c1"))
		if _, err := verify(t, e.srv, r.Token); err != nil {
			t.Fatalf("the token verifies with this replica's JWKS: %v", err)
		}
		set := jwks(t, e.srv)
		if len(set.Keys) != 2 || set.Keys[0].KeyID == set.Keys[1].KeyID || set.Keys[0].X == set.Keys[1].X {
			t.Fatalf("JWKS %+v, want the configured key and a stray one", set)
		}
		// Another process (replica) of the same build and configuration publishes another stray key.
		here := jwksBody(t, e.srv)
		if err := mutant.Set(mutants.ReplicaJWKS); err != nil {
			t.Fatal(err)
		}
		other, _, _ := newServerWith(t, Params{Store: e.srv.p.Store, Strategy: config.StrategyAtomic})
		if there := jwksBody(t, other); there == here {
			t.Fatalf("two replicas publish the same JWKS %s", here)
		}
		if _, err := verify(t, other, r.Token); err != nil {
			t.Fatalf("the token verifies with the other replica's JWKS too: %v", err)
		}
	}
	mutantChecks[mutants.NoKid] = func(t *testing.T, e mutantEnv) {
		r := mustOK(t, register(t, e.srv, "c1"))
		if kid, ok := headerKid(t, r.Token); ok {
			t.Fatalf("token header kid %q, want none", kid)
		}
		if body := jwksBody(t, e.srv); strings.Contains(body, `"kid"`) {
			t.Fatalf("JWKS %s carries a kid", body)
		}
		if _, err := verify(t, e.srv, r.Token); err != nil {
			// token.Verifier maps a missing kid to the key published without one; a client that
			// selects by kid, as RFC 7517 expects, has none to select.
			t.Fatalf("the token is not signed by the published key: %v", err)
		}
	}
}

// registerAs registers customer externalID of merchantID presenting key, and reads the answer:
// its token's claims on a 200, its error body otherwise.
func registerAs(t *testing.T, h http.Handler, key, merchantID, externalID string) reply {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/tokens",
		strings.NewReader(`{"merchant_id":"`+merchantID+`","external_id":"`+externalID+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	r := reply{status: w.Code, header: w.Header()}
	if w.Code != http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &r.err); err != nil {
			t.Fatalf("error body %q: %v", w.Body, err)
		}
		return r
	}
	if err := json.Unmarshal(w.Body.Bytes(), &r.TokenResponse); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	c, err := token.UnmarshalClaims(r.Token)
	if err != nil {
		t.Fatalf("token of %q: %v", w.Body, err)
	}
	r.claims = c
	return r
}

// TestMutants shows each mutant's defect through the handler and a real database.
func TestMutants(t *testing.T) {
	for _, name := range append([]string{""}, mutants.Names()...) {
		check, ok := mutantChecks[name]
		if !ok {
			t.Errorf("mutant %q has no check", name)
			continue
		}
		label := name
		if label == "" {
			label = "none"
		}
		t.Run(label, func(t *testing.T) { check(t, withMutant(t, name)) })
	}
	if len(mutantChecks) != len(mutants.All)+1 {
		t.Errorf("%d checks for %d mutants and none", len(mutantChecks), len(mutants.All))
	}
}
