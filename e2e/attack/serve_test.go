package attack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// tokenService is a stand-in for the token service (the round server's dependency, not what
// these tests check): it answers every registration 200 and records the key each carried;
// until release is closed, it holds every request.
type tokenService struct {
	mu      sync.Mutex
	keys    map[string]string // key -> Authorization
	release chan struct{}
	arrived chan struct{}
}

func newTokenService(t *testing.T, hold bool) (*tokenService, string) {
	ts := &tokenService{keys: map[string]string{}, release: make(chan struct{}), arrived: make(chan struct{}, 64)}
	if !hold {
		close(ts.release)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req registerRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		ts.mu.Lock()
		ts.keys[req.Tenant+"/"+req.EntityKey] = r.Header.Get(traffic.AuthorizationHeader)
		ts.mu.Unlock()
		ts.arrived <- struct{}{}
		<-ts.release
		fmt.Fprint(w, `{"token":"t","id":"x","created":true}`)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-ts.release:
		default:
			close(ts.release)
		}
	})
	return ts, srv.URL
}

func roundPlan(url string, cs []history.Customer, shard traffic.Shard) Plan {
	return Plan{URL: url, Request: bearerRequest, Customers: cs, Burst: 4, Gap: 5 * time.Millisecond, Start: time.Now().Add(50 * time.Millisecond), Shard: shard}
}

func post(t *testing.T, h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader(body)))
	return rec
}

// TestServerRunsAPlan: a posted plan runs with the server's own keys and is answered with the
// output of its shard, which the suite parses as it parses a Job pod's log.
func TestServerRunsAPlan(t *testing.T) {
	ts, url := newTokenService(t, false)
	cs := traffic.Customers(9, 3, 2)
	keys := map[string]string{}
	for _, c := range cs {
		keys[c.Tenant] = "sk_" + c.Tenant
	}
	s := NewServer(keys, 2, "pod-a", "node-b", slog.New(slog.DiscardHandler))
	body, err := EncodePlan(roundPlan(url, cs, traffic.Shard{Index: 1, Count: 2}))
	if err != nil {
		t.Fatal(err)
	}
	rec := post(t, s, http.MethodPost, RoundsPath, body)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	out, err := ParseOutput(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if out.Pod != "pod-a" || out.Node != "node-b" || out.Index != 1 || out.Shards != 2 || out.Error != "" {
		t.Errorf("trailer %+v", out.Trailer)
	}
	if len(out.Ops) != len(cs)*2 { // requests 1 and 3 of each burst of 4
		t.Fatalf("%d ops, want %d", len(out.Ops), len(cs)*2)
	}
	for _, op := range out.Ops {
		if op.Seq%2 != 1 {
			t.Errorf("shard 1 of 2 sent request %d", op.Seq)
		}
		if want := "Bearer sk_" + op.Customer.Tenant; ts.keys[op.Customer.Tenant+"/"+op.Customer.EntityKey] != want {
			t.Errorf("customer %s sent %q, want its tenant's key", op.Customer.EntityKey, ts.keys[op.Customer.Tenant+"/"+op.Customer.EntityKey])
		}
	}
}

// TestServerRefuses: bad plans, plans that carry keys, wrong methods and paths get a 4xx with a
// JSON error and send nothing.
func TestServerRefuses(t *testing.T) {
	ts, url := newTokenService(t, false)
	cs := traffic.Customers(9, 2, 1)
	s := NewServer(map[string]string{cs[0].Tenant: "sk_x"}, 1, "", "", slog.New(slog.DiscardHandler))
	good, err := EncodePlan(roundPlan(url, cs, traffic.Shard{Count: 1}))
	if err != nil {
		t.Fatal(err)
	}
	withKeys := bytes.Replace(good, []byte(`{"URL"`), []byte(`{"Keys":{"m-0":"sk_stolen"},"URL"`), 1)
	if bytes.Equal(withKeys, good) {
		t.Fatalf("the plan's JSON does not start as expected: %s", good)
	}
	noCustomers, _ := EncodePlan(roundPlan(url, nil, traffic.Shard{Count: 1}))
	badShard, _ := EncodePlan(roundPlan(url, cs, traffic.Shard{Index: 3, Count: 2}))
	otherTenant, _ := EncodePlan(roundPlan(url, traffic.Customers(9, 20, 2), traffic.Shard{Count: 1}))
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		status             int
		message            string
	}{
		{"keys in the plan", http.MethodPost, RoundsPath, withKeys, 400, "unknown field"},
		{"not JSON", http.MethodPost, RoundsPath, []byte("burst=6"), 400, "decode the plan"},
		{"two plans", http.MethodPost, RoundsPath, append(append([]byte{}, good...), good...), 400, "more than one"},
		{"no customers", http.MethodPost, RoundsPath, noCustomers, 400, "no customers"},
		{"bad shard", http.MethodPost, RoundsPath, badShard, 400, "shard 3 of 2"},
		{"a tenant without a key", http.MethodPost, RoundsPath, otherTenant, 400, "no API key"},
		{"GET rounds", http.MethodGet, RoundsPath, nil, 405, "use POST"},
		{"POST health", http.MethodPost, HealthPath, nil, 405, "use GET or HEAD"},
		{"unknown path", http.MethodGet, "/metrics", nil, 404, "no such path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := post(t, s, tc.method, tc.path, tc.body)
			var e struct{ Error, Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != tc.status || e.Error == "" ||
				!strings.Contains(e.Message, tc.message) || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("got %d %q (%v), want %d with a JSON error saying %q", rec.Code, rec.Body, err, tc.status, tc.message)
			}
		})
	}
	if len(ts.keys) != 0 {
		t.Errorf("refused plans sent requests: %v", ts.keys)
	}
	if rec := post(t, s, http.MethodGet, HealthPath, nil); rec.Code != 200 {
		t.Errorf("health: %d %s", rec.Code, rec.Body)
	}
}

// TestServerBusy: a server running its maximum of rounds refuses another with 429 at once,
// sending nothing of it, and takes rounds again once one has finished.
func TestServerBusy(t *testing.T) {
	ts, url := newTokenService(t, true)
	s := NewServer(nil, 1, "", "", slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	first, _ := EncodePlan(Plan{URL: url, Request: bearerRequest, Customers: traffic.Customers(1, 1, 1), Burst: 1, Gap: time.Millisecond, Start: time.Now(), Shard: traffic.Shard{Count: 1}})
	done := make(chan int)
	go func() {
		resp, err := http.Post(srv.URL+RoundsPath, "application/json", bytes.NewReader(first))
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-ts.arrived // the first round is running, held by the service
	second, _ := EncodePlan(Plan{URL: url, Request: bearerRequest, Customers: traffic.Customers(2, 1, 1), Burst: 1, Gap: time.Millisecond, Start: time.Now(), Shard: traffic.Shard{Count: 1}})
	if rec := post(t, s, http.MethodPost, RoundsPath, second); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second round while the first runs: %d %s, want 429", rec.Code, rec.Body)
	}
	close(ts.release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("first round: %d", code)
	}
	if rec := post(t, s, http.MethodPost, RoundsPath, second); rec.Code != http.StatusOK {
		t.Errorf("a round after the first finished: %d %s", rec.Code, rec.Body)
	}
	if len(ts.keys) != 2 {
		t.Errorf("the service saw %d customers, want 2 (the refused post sent nothing, its retry did)", len(ts.keys))
	}
}

// TestPlanJSONRoundTrip: what the suite posts is the plan the server runs, keys aside.
func TestPlanJSONRoundTrip(t *testing.T) {
	p := plan(traffic.Customers(5, 7, 2))
	p.Foreign = traffic.ForeignKeys{Customers: 0.5, Every: 2}
	p.KeysFile, p.Keys = "/etc/keys", map[string]string{"m-0": "sk_secret"}
	b, err := EncodePlan(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("sk_secret")) || bytes.Contains(b, []byte("/etc/keys")) {
		t.Fatalf("the posted plan carries keys: %s", b)
	}
	got, err := DecodePlan(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	p.KeysFile, p.Keys = "", nil
	if !got.Start.Equal(p.Start) {
		t.Errorf("start %v, want %v", got.Start, p.Start)
	}
	got.Start = p.Start
	if !reflect.DeepEqual(got, p) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, p)
	}
}

// TestClockOffset: the reading against the midpoint of the exchange with the shortest round
// trip, and the server's clock path that it reads.
func TestClockOffset(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ms := time.Millisecond
	// The server is 2 s ahead. Exchange 0 is slow and its reply was delayed on the way back;
	// exchange 1 is quick.
	sent := []time.Time{at(0), at(100 * ms)}
	answered := []time.Time{at(40 * ms), at(104 * ms)}
	readings := []int64{at(2*time.Second + 5*ms).UnixNano(), at(2*time.Second + 103*ms).UnixNano()}
	offset, bound, ok := ClockOffset(sent, answered, readings)
	if !ok || offset != 2*time.Second+time.Millisecond || bound != 2*ms {
		t.Errorf("offset %s within %s (%t), want 2.001s within 2ms from the quick exchange", offset, bound, ok)
	}
	if _, _, ok := ClockOffset(nil, nil, nil); ok {
		t.Error("an offset from no exchange")
	}
	s := NewServer(nil, 1, "", "", slog.New(slog.DiscardHandler))
	before := time.Now()
	rec := post(t, s, http.MethodGet, ClockPath, nil)
	var c Clock
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil || rec.Code != 200 || c.UnixNano < before.UnixNano() || c.UnixNano > time.Now().UnixNano() {
		t.Errorf("clock: %d %s (%v)", rec.Code, rec.Body, err)
	}
	if rec := post(t, s, http.MethodPost, ClockPath, nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST clock: %d", rec.Code)
	}
}
