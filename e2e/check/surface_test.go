package check

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	template "github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// surfaceService answers the create request as the fixture target promises, with API keys, over rows in
// memory, or with one of two defects: tenantBlind looks customers up by key alone,
// unknownForbidden refuses a key of no tenant 403. Each customer's first two own-key burst
// requests wait for each other, one on each of two pods, so that the race is exercised.
type surfaceService struct {
	t                             *testing.T
	keys                          map[string]string // key header value -> tenant
	tenantBlind, unknownForbidden bool

	mu     sync.Mutex
	rows   map[history.Key]Row
	order  []history.Key
	waits  map[history.Key]chan struct{}
	served map[history.Key]int
}

func newSurfaceService(t *testing.T, keys map[string]string) *surfaceService {
	s := &surfaceService{t: t, keys: map[string]string{}, rows: map[history.Key]Row{}, waits: map[history.Key]chan struct{}{},
		served: map[history.Key]int{}}
	for m, k := range keys {
		s.keys[k] = m
	}
	return s
}

func (s *surfaceService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req surfaceRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.t.Errorf("decode: %v", err)
	}
	k := history.Key{Tenant: req.Tenant, EntityKey: req.EntityKey}
	auth := r.Header.Get(surfaceCreate.Auth.Header)
	tenant, known := s.keys[auth]
	s.mu.Lock()
	s.served[k]++
	pod := fmt.Sprintf("pod-%d", s.served[k]%2)
	s.mu.Unlock()
	w.Header().Set(testPodHeader, pod)
	w.Header().Set("Content-Type", "application/json")
	unknown := strings.HasPrefix(auth, "wk_") && len(auth) == len("wk_test_key_of_m-0") // the test keys' shape
	switch {
	case !known && unknown && s.unknownForbidden:
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":"forbidden","message":"this API key may not act for tenant `+req.Tenant+`"}`)
		return
	case !known:
		w.Header().Set("WWW-Authenticate", "WidgetKey")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"unauthenticated","message":"unknown API key"}`)
		return
	case tenant != req.Tenant:
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":"forbidden","message":"this API key may not act for tenant `+req.Tenant+`"}`)
		return
	}
	s.rendezvous(k, r.Header.Get(traffic.RequestHeader))
	s.mu.Lock()
	row, found := s.rows[k]
	if s.tenantBlind {
		for _, o := range s.order {
			if o.EntityKey == k.EntityKey {
				row, found = s.rows[o], true
				break
			}
		}
	}
	if !found {
		row = Row{ID: fmt.Sprintf("0b6c8a52-0000-4000-8000-%012d", len(s.rows)), Tenant: k.Tenant, Key: k.EntityKey,
			Agree: map[string]*string{"owner_email": nullable(req.Email), "label": nullable(req.Name)}, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
		s.rows[k] = row
		s.order = append(s.order, k)
	}
	s.mu.Unlock()
	body, _ := json.Marshal(tokenResponse{Token: tokenFor(s.t, row, nil), CustomerID: row.ID, Created: &[]bool{!found}[0]})
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// rendezvous holds the first own-key burst request of a customer until its second arrives (a
// bound keeps a lone one from hanging the test).
func (s *surfaceService) rendezvous(k history.Key, id string) {
	if !strings.HasSuffix(id, "/0") { // a retry
		return
	}
	s.mu.Lock()
	ch, waiting := s.waits[k]
	if waiting {
		// Under the lock: the second and third requests of a burst may both arrive here.
		select {
		case <-ch:
		default:
			close(ch)
		}
		s.mu.Unlock()
		return
	}
	ch = make(chan struct{})
	s.waits[k] = ch
	s.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
	}
}

// surfaceCreate is the surface service's create request, the fixture target's: a key in a header
// of its own, a body naming the entity;
// surfaceRequest its body as the service reads it.
var surfaceCreate = template.Template{Method: http.MethodPost, Path: "/create",
	Observe: template.Observe{PodHeader: testPodHeader},
	Headers: map[string]string{"Content-Type": "application/json"},
	Auth:    template.Auth{Header: "X-Widgets-Key"},
	Body:    map[string]string{"tenant_ref": "{{tenant}}", "widget_ref": "{{key}}", "owner_email": "{{email}}", "label": "{{name}}"}}

type surfaceRequest struct {
	Tenant    string `json:"tenant_ref"`
	EntityKey string `json:"widget_ref"`
	Email     string `json:"owner_email"`
	Name      string `json:"label"`
}

// surfaceRun sends a plan with colliding tenants and the default auth surface to svc, and judges
// it by the atomic contract.
func surfaceRun(t *testing.T, svc *surfaceService, keys map[string]string) Result {
	t.Helper()
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	cs := traffic.Customers(18, 48, 4)
	out, err := traffic.Run(context.Background(), traffic.Params{URL: srv.URL, Request: surfaceCreate, Customers: cs, Burst: 8, Gap: 2 * time.Millisecond,
		Keys: keys, Wrong: traffic.DefaultWrongKeys, Retry: traffic.RetryParams{MaxAttempts: 2, Backoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[history.KeyKind]int{}
	for _, op := range out.History {
		kinds[op.SentKey()]++
	}
	if len(kinds) != 5 || len(traffic.Tenants(cs)) != len(cs)/2 {
		t.Fatalf("kinds of key sent %v, %d colliding keys: the plan lacks the auth surface or the collisions", kinds, len(traffic.Tenants(cs)))
	}
	var rows []Row
	for _, r := range svc.rows {
		rows = append(rows, r)
	}
	p := params()
	p.Contract, p.Faults, p.Base, p.Customers = contract(t, modeAtomic), nil, out.Clock.Base(), cs
	p.Coverage = CoverageParams{MinCovered: len(cs) / 2, MinFraction: 0.5, AllowClientOnly: true} // the simulated service reports no handler intervals
	res, err := Check(out.History, rows, p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestAuthSurfaceAndTenantsEndToEnd: traffic's plan (colliding tenants, every kind of wrong key
// racing with own keys) against a service that keeps tenants apart and refuses every wrong key
// as documented passes every rule, final-credential, created and coverage included; each defect
// fails by its rule.
func TestAuthSurfaceAndTenantsEndToEnd(t *testing.T) {
	keys := map[string]string{}
	for _, m := range traffic.TenantIDs(4) {
		keys[m] = "wk_test_key_of_" + m
	}
	res := surfaceRun(t, newSurfaceService(t, keys), keys)
	if res.Verdict != VerdictPass || res.Refused == 0 {
		var b strings.Builder
		_ = res.WriteText(&b)
		t.Fatalf("a correct service: verdict %s, %d refused; want pass with refusals\n%s", res.Verdict, res.Refused, b.String())
	}

	blind := newSurfaceService(t, keys)
	blind.tenantBlind = true
	if res := surfaceRun(t, blind, keys); res.Counts[RuleTenants] == 0 {
		t.Errorf("a tenant-blind lookup: counts %v, want tenants", res.Counts)
	}
	forbidden := newSurfaceService(t, keys)
	forbidden.unknownForbidden = true
	if res := surfaceRun(t, forbidden, keys); res.Counts[RuleAuth] == 0 || res.Counts[RuleTenants] != 0 {
		t.Errorf("an unknown key refused 403: counts %v, want auth only", res.Counts)
	}
}
