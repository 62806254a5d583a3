package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/store"
)

// allOutcomes are the values of the outcome label, as the e2e suite knows them.
var allOutcomes = []string{
	outcomeCreated, outcomeExisting, outcomeNullSubject, outcomeRefused, outcomeConflict, outcomeUnavailable,
	outcomeOverloaded, outcomeUnauthenticated, outcomeForbidden, outcomeError, outcomeInvalidInput,
}

// panickingStore is a Store whose lookup panics, as a bug would.
type panickingStore struct{ fakeStore }

func (*panickingStore) Find(context.Context, store.Key) (*store.Customer, error) { panic("bug") }

// registrationCounts sums tokensvc_registrations_total by outcome, whatever the strategy.
func registrationCounts(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "tokensvc_registrations_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					counts[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return counts
}

// TestEveryRegistrationCountsOneOutcome drives every path of POST /v1/tokens and checks that
// each request adds exactly one to tokensvc_registrations_total, under the outcome that path
// stands for, and that every outcome the suite knows is reachable.
func TestEveryRegistrationCountsOneOutcome(t *testing.T) {
	type request struct {
		method, contentType, auth, body string
		cancelled                       bool
	}
	reached := map[string]bool{}
	good := request{method: http.MethodPost, contentType: "application/json", auth: "Bearer " + testKey, body: validBody}
	with := func(edit func(*request)) request {
		r := good
		edit(&r)
		return r
	}
	for _, tc := range []struct {
		name     string
		strategy config.Strategy
		store    Store
		prep     func(*Server)
		req      request
		want     string // "" means no outcome: not a registration
		status   int
	}{
		{"created", config.StrategyAtomic, &fakeStore{created: row, createNew: true}, nil, good, outcomeCreated, 200},
		{"existing", config.StrategyAtomic, &fakeStore{found: row}, nil, good, outcomeExisting, 200},
		{"lost race", config.StrategyAtomic, &fakeStore{created: row}, nil, good, outcomeExisting, 200},
		{"legacy null subject", config.StrategyLegacy, &fakeStore{}, nil, good, outcomeNullSubject, 200},
		{"guard", config.StrategyAtomic, &fakeStore{}, nil, good, outcomeRefused, 500},
		{"conflict", config.StrategyFailFast, &fakeStore{createErr: store.ErrConflict}, nil, good, outcomeConflict, 409},
		{"database down", config.StrategyAtomic, &fakeStore{findErr: errors.New("dial tcp: connection refused")}, nil, good, outcomeUnavailable, 503},
		{"create down", config.StrategyAtomic, &fakeStore{createErr: &pgconn.PgError{Code: "57P01"}}, nil, good, outcomeUnavailable, 503},
		{"statement timeout", config.StrategyAtomic, &fakeStore{findErr: &pgconn.PgError{Code: "57014"}}, nil, good, outcomeUnavailable, 503},
		{"client gone", config.StrategyAtomic, &fakeStore{findErr: context.Canceled}, nil, with(func(r *request) { r.cancelled = true }), outcomeUnavailable, 503},
		{"overloaded", config.StrategyAtomic, &fakeStore{found: row}, func(s *Server) {
			for range cap(s.inFlight) {
				s.inFlight <- struct{}{}
			}
		}, good, outcomeOverloaded, 503},
		{"no key", config.StrategyAtomic, &fakeStore{found: row}, nil, with(func(r *request) { r.auth = "" }), outcomeUnauthenticated, 401},
		{"unknown key", config.StrategyAtomic, &fakeStore{found: row}, nil, with(func(r *request) { r.auth = "Bearer sk_nope" }), outcomeUnauthenticated, 401},
		{"no key, bad body", config.StrategyAtomic, &fakeStore{found: row}, nil, request{method: http.MethodPost, body: "x"}, outcomeUnauthenticated, 401},
		{"another merchant", config.StrategyAtomic, &fakeStore{found: row}, nil, with(func(r *request) { r.body = `{"merchant_id":"m-other","external_id":"e"}` }), outcomeForbidden, 403},
		{"statement error", config.StrategyAtomic, &fakeStore{findErr: &pgconn.PgError{Code: "42P01"}}, nil, good, outcomeError, 500},
		{"panic", config.StrategyAtomic, &panickingStore{}, nil, good, outcomeError, 500},
		{"wrong content type", config.StrategyAtomic, &fakeStore{}, nil, with(func(r *request) { r.contentType = "text/plain" }), outcomeInvalidInput, 415},
		{"body too large", config.StrategyAtomic, &fakeStore{}, nil, with(func(r *request) { r.body = strings.Repeat(" ", MaxBodyBytes+1) }), outcomeInvalidInput, 413},
		{"bad json", config.StrategyAtomic, &fakeStore{}, nil, with(func(r *request) { r.body = "{" }), outcomeInvalidInput, 400},
		{"bad field", config.StrategyAtomic, &fakeStore{}, nil, with(func(r *request) { r.body = `{"merchant_id":"m"}` }), outcomeInvalidInput, 400},
		{"GET is not a registration", config.StrategyAtomic, &fakeStore{}, nil, with(func(r *request) { r.method = http.MethodGet }), "", 405},
	} {
		reached[tc.want] = true
		t.Run(tc.name, func(t *testing.T) {
			srv, _, reg := newServerWith(t, Params{Store: tc.store, Strategy: tc.strategy})
			if tc.prep != nil {
				tc.prep(srv)
			}
			r := httptest.NewRequest(tc.req.method, "/v1/tokens", strings.NewReader(tc.req.body))
			if tc.req.contentType != "" {
				r.Header.Set("Content-Type", tc.req.contentType)
			}
			if tc.req.auth != "" {
				r.Header.Set("Authorization", tc.req.auth)
			}
			if tc.req.cancelled {
				ctx, cancel := context.WithCancel(r.Context())
				cancel()
				r = r.WithContext(ctx)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Errorf("status %d %s, want %d", w.Code, w.Body, tc.status)
			}
			counts := registrationCounts(t, reg)
			var sum float64
			for o, n := range counts {
				sum += n
				if !slices.Contains(allOutcomes, o) {
					t.Errorf("outcome %q is not one the suite knows", o)
				}
			}
			switch {
			case tc.want == "" && sum != 0:
				t.Errorf("outcomes %v for a request that is not a registration", counts)
			case tc.want != "" && (sum != 1 || counts[tc.want] != 1):
				t.Errorf("outcomes %v, want exactly one: %s", counts, tc.want)
			}
		})
	}
	for _, o := range allOutcomes {
		if !reached[o] {
			t.Errorf("no request here leads to outcome %s", o)
		}
	}
}

// TestOutcomesMatchRequestsUnderLoad: many registrations down many paths at once; the outcome
// counts add up to the number of requests.
func TestOutcomesMatchRequestsUnderLoad(t *testing.T) {
	st := &blockingStore{fakeStore: fakeStore{found: row}, entered: make(chan struct{}), release: make(chan struct{})}
	srv, _, reg := newServerWith(t, Params{Store: st, Strategy: config.StrategyAtomic, MaxInFlight: 4})
	go func() {
		for range st.entered {
		}
	}()
	defer close(st.entered)
	bodies := []struct{ auth, body string }{
		{"Bearer " + testKey, validBody},
		{"", validBody},
		{"Bearer " + testKey, `{"merchant_id":"m-other","external_id":"e"}`},
		{"Bearer " + testKey, "{"},
	}
	const n = 200
	done := make(chan int, n)
	for i := range n {
		go func() {
			b := bodies[i%len(bodies)]
			r := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(b.body))
			r.Header.Set("Content-Type", "application/json")
			if b.auth != "" {
				r.Header.Set("Authorization", b.auth)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			done <- w.Code
		}()
	}
	// Let the held ones go once some have been shed, so that every path is taken.
	close(st.release)
	codes := map[int]int{}
	for range n {
		codes[<-done]++
	}
	counts := registrationCounts(t, reg)
	var sum float64
	for _, c := range counts {
		sum += c
	}
	if sum != n {
		t.Fatalf("%v outcomes counted for %d requests (%v; statuses %v)", sum, n, counts, codes)
	}
	if counts[outcomeUnauthenticated] != n/4 || counts[outcomeForbidden] != n/4 || counts[outcomeInvalidInput] != n/4 ||
		counts[outcomeExisting]+counts[outcomeOverloaded] != n/4 {
		t.Errorf("outcomes %v, want %d of each kind of request", counts, n/4)
	}
}
