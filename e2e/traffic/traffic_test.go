package traffic

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
)

// fakeService stands in for the token service: it is the dependency of the
// traffic code under test. respond decides each response.
type fakeService struct {
	*httptest.Server
	conns atomic.Int64
}

func newFakeService(t *testing.T, respond http.HandlerFunc) *fakeService {
	t.Helper()
	f := &fakeService{}
	f.Server = httptest.NewUnstartedServer(respond)
	f.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.Start()
	t.Cleanup(f.Close)
	return f
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testRequest is the create request of the tests' fake target: a bearer key, a JSON body that
// names the tenant and the key.
var testRequest = request.Template{
	Method:  http.MethodPost,
	Path:    "/create",
	Observe: request.Observe{PodHeader: testPodHeader, IntervalHeader: ServerTimingHeader},
	Headers: map[string]string{"Content-Type": "application/json"},
	Auth:    request.Auth{Header: AuthorizationHeader, Bearer: true},
	Body:    map[string]string{"tenant": "{{tenant}}", "key": "{{key}}", "email": "{{email}}", "name": "{{name}}"},
}

// registerRequest is testRequest's body as the fake target reads it.
type registerRequest struct {
	Tenant    string `json:"tenant"`
	EntityKey string `json:"key"`
	Email     string `json:"email,omitempty"`
	Name      string `json:"name,omitempty"`
}

func decodeRegister(t *testing.T, r *http.Request) registerRequest {
	var req registerRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		t.Errorf("decode request body: %v", err)
	}
	return req
}

// TestRunReleasesBurstsTogether checks that each customer's K requests are in
// flight at the same time, on K distinct connections, and that every record
// belongs to the customer whose request it was.
func TestRunReleasesBurstsTogether(t *testing.T) {
	const customers, burst = 5, 4
	var (
		mu      sync.Mutex
		arrived = map[string]chan struct{}{}
		count   = map[string]int{}
	)
	// The handler holds each request until all K of its customer have arrived:
	// a burst that was not released together times out with 504.
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		req := decodeRegister(t, r)
		k := req.Tenant + "/" + req.EntityKey // two tenants' customers share keys
		mu.Lock()
		ch, ok := arrived[k]
		if !ok {
			ch = make(chan struct{})
			arrived[k] = ch
		}
		count[k]++
		if count[k] == burst {
			close(ch)
		}
		n := count[k]
		mu.Unlock()
		w.Header().Set(testPodHeader, fmt.Sprintf("pod-%d", n%2))
		select {
		case <-ch:
			fmt.Fprintf(w, `{"token":"t","id":%q,"created":%t}`, req.Tenant+"|"+req.EntityKey, n == 1)
		case <-time.After(2 * time.Second):
			w.WriteHeader(http.StatusGatewayTimeout)
		}
	})

	cs := Customers(42, customers, 2)
	out, err := Run(context.Background(), Params{Request: testRequest,
		URL: svc.URL, Customers: cs, Burst: burst, Gap: 60 * time.Millisecond, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := len(out.History), customers*burst; got != want {
		t.Fatalf("history has %d ops, want %d", got, want)
	}
	if got := svc.conns.Load(); got != customers*burst {
		t.Errorf("server saw %d connections for %d requests: keep-alive is on", got, customers*burst)
	}

	locals := map[string]bool{}
	seqs := map[history.Key]map[int]bool{}
	calls := map[history.Key][2]time.Duration{}
	for _, op := range out.History {
		if op.Status != http.StatusOK || op.Error != "" {
			t.Errorf("op %s: status %d error %q body %q", op.ID(), op.Status, op.Error, op.Body)
			continue
		}
		// The fake echoes the key it received: the record must name the same one.
		if want := op.Customer.Tenant + "|" + op.Customer.EntityKey; !strings.Contains(op.Body, want) {
			t.Errorf("op %s recorded for %s but the server answered %s", op.ID(), op.Customer, op.Body)
		}
		if op.Customer != cs[op.Customer.Index] {
			t.Errorf("op %s: customer %v, plan says %v", op.ID(), op.Customer, cs[op.Customer.Index])
		}
		if op.Pod == "" || op.ConnReused || locals[op.LocalAddr] {
			t.Errorf("op %s: pod %q, reused %v, local addr %q seen before", op.ID(), op.Pod, op.ConnReused, op.LocalAddr)
		}
		locals[op.LocalAddr] = true
		k := op.Customer.Key()
		if seqs[k] == nil {
			seqs[k] = map[int]bool{}
			calls[k] = [2]time.Duration{op.Call, op.Call}
		}
		seqs[k][op.Seq] = true
		c := calls[k]
		calls[k] = [2]time.Duration{min(c[0], op.Call), max(c[1], op.Call)}
		if op.Return <= op.Call {
			t.Errorf("op %s returned at %s before its call at %s", op.ID(), op.Return, op.Call)
		}
	}
	for k, s := range seqs {
		if len(s) != burst {
			t.Errorf("customer %v: seqs %v, want 0..%d", k, s, burst-1)
		}
		// The requests of a burst leave together; the next burst is 60ms later.
		if spread := calls[k][1] - calls[k][0]; spread > 30*time.Millisecond {
			t.Errorf("customer %v: call times spread over %s", k, spread)
		}
	}
}

// TestRunRetries checks that 409, 503 and transport errors are retried, that
// the wait honours Retry-After up to MaxWait, and that retries are recorded.
func TestRunRetries(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		req := decodeRegister(t, r)
		mu.Lock()
		seen[r.Header.Get(RequestHeader)]++
		mu.Unlock()
		id := r.Header.Get(RequestHeader) // customer/seq/attempt
		w.Header().Set(testPodHeader, "pod-a")
		switch {
		case strings.HasSuffix(id, "/0") && req.EntityKey == "c-1-0": // honoured
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":"conflict"}`)
		case strings.HasSuffix(id, "/0") && req.EntityKey == "c-1-1": // capped
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"unavailable"}`)
		case strings.HasSuffix(id, "/0") && req.EntityKey == "c-1-2": // transport error
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case req.EntityKey == "c-1-3": // never succeeds: the chain stops at MaxAttempts
			w.Header().Set("Retry-After", "garbage")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"unavailable"}`)
		default:
			io.WriteString(w, `{"token":"t"}`)
		}
	})

	var (
		wmu   sync.Mutex
		waits = map[time.Duration]int{}
	)
	retry := RetryParams{
		MaxAttempts: 2,
		MaxWait:     1500 * time.Millisecond,
		Backoff:     7 * time.Millisecond,
		sleep: func(_ context.Context, d time.Duration) error {
			wmu.Lock()
			waits[d]++
			wmu.Unlock()
			return nil
		},
	}
	out, err := Run(context.Background(), Params{Request: testRequest,
		URL: svc.URL, Customers: Customers(1, 5, 1), Burst: 1, Gap: 5 * time.Millisecond,
		Retry: retry, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := map[time.Duration]int{
		time.Second:             1, // Retry-After: 1
		1500 * time.Millisecond: 1, // Retry-After: 3600, capped
		7 * time.Millisecond:    3, // transport error once, bad header twice
	}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", waits, want)
	}

	final := map[int]history.Op{}
	attempts := map[int]int{}
	for _, op := range out.History {
		final[op.Customer.Index] = op
		attempts[op.Customer.Index]++
		if (op.Attempt > 0) != (op.Phase == history.PhaseRetry) {
			t.Errorf("op %s: attempt %d in phase %s", op.ID(), op.Attempt, op.Phase)
		}
	}
	for i, wantAttempts := range []int{2, 2, 2, 3, 1} {
		if attempts[i] != wantAttempts {
			t.Errorf("customer %d: %d requests, want %d", i, attempts[i], wantAttempts)
		}
	}
	for i := range 5 {
		if op := final[i]; op.Succeeded() != (i != 3) {
			t.Errorf("customer %d ends with %s status %d error %q", i, op.ID(), op.Status, op.Error)
		}
	}
	for _, op := range out.History {
		if op.Customer.Index == 2 && op.Attempt == 0 && (!op.Unknown() || op.Pod != "") {
			t.Errorf("a dropped connection must be an unknown outcome without a pod: %+v", op)
		}
	}
	retries := 0
	for _, op := range out.History {
		if op.Phase == history.PhaseRetry {
			retries++
		}
	}
	if retries != 5 {
		t.Errorf("history holds %d retries, want 5", retries)
	}
}

// TestRetryChainsWaitAtOnce checks that every retry chain waits its Retry-After at the same
// time, as the clients would, and that Concurrency bounds only the requests in flight: a
// sleep that returns only once every chain sleeps would never return if the chains took turns.
func TestRetryChainsWaitAtOnce(t *testing.T) {
	const customers, concurrency = 8, 2
	var (
		mu             sync.Mutex
		inFlight, peak int
	)
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		w.Header().Set(testPodHeader, "pod-a")
		if strings.HasSuffix(r.Header.Get(RequestHeader), "/0") {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":"conflict"}`)
			return
		}
		time.Sleep(20 * time.Millisecond) // long enough for requests to meet in flight
		io.WriteString(w, `{"token":"t"}`)
	})
	var sleeping sync.WaitGroup
	sleeping.Add(customers)
	all := make(chan struct{})
	go func() { sleeping.Wait(); close(all) }()
	retry := RetryParams{MaxAttempts: 1, Concurrency: concurrency,
		sleep: func(ctx context.Context, _ time.Duration) error {
			sleeping.Done()
			select {
			case <-all:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return fmt.Errorf("the chains did not wait at once")
			}
		},
	}
	out, err := Run(context.Background(), Params{Request: testRequest,
		URL: svc.URL, Customers: Customers(1, customers, 1), Burst: 1, Gap: time.Millisecond,
		Retry: retry, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	ok := 0
	for _, op := range out.History {
		if op.Phase == history.PhaseRetry && op.Succeeded() {
			ok++
		}
	}
	if ok != customers {
		t.Errorf("%d retries succeeded, want %d", ok, customers)
	}
	if peak > concurrency {
		t.Errorf("%d requests in flight at once, want at most %d (Concurrency)", peak, concurrency)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"2", 2 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second, true},
	} {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRecorderRefusesUnplannedRequests(t *testing.T) {
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("an unplanned request reached the server")
	})
	rec := NewRecorder(history.NewClock(time.Now()), NewTransport(), 0)
	rec.SetObserve(testRequest.Observe)
	resp, err := (&http.Client{Transport: rec}).Post(svc.URL+testRequest.Path, "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("unplanned request was sent")
	}
	if len(rec.Ops()) != 0 {
		t.Errorf("recorded %v", rec.Ops())
	}
}

// TestRecorderKeepsOneCopyOfEachBody sends three requests that the service answers with the
// same body and wants the recorded ops to share it: replicas answer a customer's burst alike,
// and a history of a million requests would otherwise hold a million bodies.
func TestRecorderKeepsOneCopyOfEachBody(t *testing.T) {
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(testPodHeader, "app-a")
		fmt.Fprintln(w, `{"token":"t","id":"id","created":false}`)
	})
	rec := NewRecorder(history.NewClock(time.Now()), NewTransport(), 0)
	rec.SetObserve(testRequest.Observe)
	client := &http.Client{Transport: rec}
	c := history.Customer{Tenant: "m-1", EntityKey: "c-1"}
	for seq := range 3 {
		req, err := http.NewRequest(http.MethodPost, svc.URL+testRequest.Path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(RequestHeader, rec.Expect(history.Op{Customer: c, Seq: seq, Phase: history.PhaseBurst}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ops := rec.Ops()
	if len(ops) != 3 {
		t.Fatalf("recorded %d ops, want 3", len(ops))
	}
	for _, op := range ops[1:] {
		if op.Body != ops[0].Body || unsafe.StringData(op.Body) != unsafe.StringData(ops[0].Body) {
			t.Errorf("%s: body %q is a copy of its own, not %s's", op.ID(), op.Body, ops[0].ID())
		}
		if unsafe.StringData(op.Pod) != unsafe.StringData(ops[0].Pod) {
			t.Errorf("%s: pod %q is a copy of its own", op.ID(), op.Pod)
		}
	}
}

func TestCustomersAreDerivedFromSeed(t *testing.T) {
	a, b := Customers(7, 5, 2), Customers(7, 5, 2)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different customers: %v vs %v", a, b)
	}
	if a[3].Tenant != "m-1" || a[3].EntityKey != "c-7-2" || a[3].Index != 3 {
		t.Errorf("customer 3 = %+v", a[3])
	}
	if one := Customers(7, 5, 1); one[3].EntityKey != "c-7-3" {
		t.Errorf("one tenant: customer 3 = %+v, want key c-7-3", one[3])
	}
	if c := Customers(8, 1, 2); c[0] == a[0] || c[0].Key() == a[0].Key() {
		t.Errorf("different seeds gave the same customer %v", c[0])
	}
}

// TestTenantsCollide: with two tenants or more, every plan puts each key under two
// tenants at once (consecutive bursts), and never one natural key twice.
func TestTenantsCollide(t *testing.T) {
	for n := 1; n <= MaxTenants; n++ {
		cs := Customers(3, 21, n)
		keys := map[history.Key]bool{}
		for _, c := range cs {
			if keys[c.Key()] {
				t.Fatalf("%d tenants: customer %s planned twice", n, c)
			}
			keys[c.Key()] = true
		}
		colliding := Tenants(cs)
		if n == 1 {
			if len(colliding) != 0 {
				t.Errorf("one tenant, colliding tenants %v", colliding)
			}
			continue
		}
		// 21 customers: ten pairs, and the last one alone.
		if len(colliding) != 10 {
			t.Errorf("%d tenants: %d colliding keys, want 10: %v", n, len(colliding), colliding)
		}
		for ext, group := range colliding {
			if len(group) != 2 || group[1].Index != group[0].Index+1 || group[0].Tenant == group[1].Tenant {
				t.Errorf("%d tenants: key %s under %v, want two tenants' consecutive customers", n, ext, group)
			}
		}
	}
}

// TestTenantsDoNotDependOnTheSeed: the tenants of any plan are among TenantIDs, whatever
// its seed, so that API keys made for TenantIDs(MaxTenants) before the plan cover it.
func TestTenantsDoNotDependOnTheSeed(t *testing.T) {
	if got := fmt.Sprint(TenantIDs(3)); got != "[m-0 m-1 m-2]" {
		t.Errorf("TenantIDs(3) = %s", got)
	}
	keyed := TenantIDs(MaxTenants)
	for _, seed := range []uint64{0, 1, 987654321} {
		for tenants := 1; tenants <= MaxTenants; tenants++ {
			seen := map[string]bool{}
			for _, c := range Customers(seed, 3*MaxTenants, tenants) {
				if !slices.Contains(keyed, c.Tenant) {
					t.Errorf("seed %d, %d tenants: customer %s has a tenant without a key", seed, tenants, c)
				}
				seen[c.Tenant] = true
			}
			if len(seen) != tenants {
				t.Errorf("seed %d: %d tenants asked, %d used", seed, tenants, len(seen))
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Customers spread customers over more tenants than have keys")
		}
	}()
	Customers(1, 10, MaxTenants+1)
}

// TestRunsShareOneClockAndNumbering checks that two traffic runs of one spec, given the spec's
// clock and request numbering, record on one time base with ids that never repeat: what lets the
// chaos runner join rounds and a catch-up pass without re-basing or patching.
func TestRunsShareOneClockAndNumbering(t *testing.T) {
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		req := decodeRegister(t, r)
		w.Header().Set(testPodHeader, "pod-0")
		fmt.Fprintf(w, `{"token":"t","id":%q,"created":false}`, req.Tenant+"|"+req.EntityKey)
	})
	clock, seqs := history.NewClock(time.Now()), history.NewSeqs()
	cs := Customers(7, 3, 1)
	first, err := Run(context.Background(), Params{Request: testRequest, URL: svc.URL, Customers: cs, Burst: 2, Gap: 10 * time.Millisecond,
		Logger: quietLogger(), Clock: clock, Seqs: seqs})
	if err != nil {
		t.Fatal(err)
	}
	between := clock.Since()
	second, err := Run(context.Background(), Params{Request: testRequest, URL: svc.URL, Customers: cs, Burst: 1, Gap: 10 * time.Millisecond,
		Logger: quietLogger(), Clock: clock, Seqs: seqs})
	if err != nil {
		t.Fatal(err)
	}
	if first.Clock != clock || second.Clock != clock {
		t.Fatal("an outcome is not on the clock it was given")
	}
	ids := map[string]bool{}
	for _, op := range append(first.History, second.History...) {
		if ids[op.ID()] {
			t.Errorf("request id %s recorded twice", op.ID())
		}
		ids[op.ID()] = true
	}
	for _, op := range second.History {
		if op.Call < between {
			t.Errorf("second run's %s called at %v, before the first run ended (%v): not on the shared clock", op.ID(), op.Call, between)
		}
		if op.Seq != 2 {
			t.Errorf("second run's %s has seq %d, want 2 (after the first run's 0 and 1)", op.ID(), op.Seq)
		}
	}
}

func TestShardSeqs(t *testing.T) {
	for _, tc := range []struct {
		shard Shard
		burst int
		want  string
	}{
		{Shard{}, 4, "[0 1 2 3]"},
		{Shard{Index: 0, Count: 1}, 3, "[0 1 2]"},
		{Shard{Index: 0, Count: 3}, 6, "[0 3]"},
		{Shard{Index: 2, Count: 3}, 6, "[2 5]"},
		{Shard{Index: 1, Count: 4}, 6, "[1 5]"},
		{Shard{Index: 3, Count: 4}, 6, "[3]"},
		{Shard{Index: 2, Count: 3}, 2, "[]"}, // more clients than requests: this one sends none
	} {
		if got := fmt.Sprint(tc.shard.Seqs(tc.burst)); got != tc.want {
			t.Errorf("%+v.Seqs(%d) = %s, want %s", tc.shard, tc.burst, got, tc.want)
		}
	}
	// Every request of a burst falls to exactly one shard.
	for count := 1; count <= 7; count++ {
		for burst := 1; burst <= 9; burst++ {
			seen := map[int]int{}
			for i := range count {
				for _, s := range (Shard{Index: i, Count: count}).Seqs(burst) {
					seen[s]++
				}
			}
			for s := range burst {
				if seen[s] != 1 {
					t.Errorf("%d shards, burst %d: seq %d sent %d times", count, burst, s, seen[s])
				}
			}
			if len(seen) != burst {
				t.Errorf("%d shards, burst %d: seqs %v", count, burst, seen)
			}
		}
	}
	for _, bad := range []Shard{{Index: 3, Count: 3}, {Index: -1, Count: 2}, {Index: 1}, {Count: -1}} {
		if bad.validate() == nil {
			t.Errorf("shard %+v accepted", bad)
		}
	}
}

// TestShardsShareOneBurstFromStart runs three sharded clients, each from its own goroutine
// with its own clock, that agree on a start instant: together they must send each customer's
// whole burst once, at the same moment, with call times counted from the start.
func TestShardsShareOneBurstFromStart(t *testing.T) {
	const customers, burst, shards = 4, 6, 3
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		req := decodeRegister(t, r)
		w.Header().Set(testPodHeader, "pod-0")
		fmt.Fprintf(w, `{"token":"t","id":%q,"created":false}`, req.Tenant+"|"+req.EntityKey)
	})
	cs := Customers(9, customers, 2)
	// A gap wide enough that a busy machine's scheduling delays cannot carry one burst into the
	// next: the test is about where each burst is anchored, not how tight it is.
	const gap = 250 * time.Millisecond
	start := time.Now().Add(200 * time.Millisecond)
	outs := make([]*Outcome, shards)
	errs := make([]error, shards)
	var wg sync.WaitGroup
	for i := range shards {
		wg.Go(func() {
			outs[i], errs[i] = Run(context.Background(), Params{Request: testRequest, URL: svc.URL, Customers: cs, Burst: burst,
				Gap: gap, Start: start, Shard: Shard{Index: i, Count: shards}, Logger: quietLogger()})
		})
	}
	wg.Wait()
	seqs := map[string]int{}
	first := map[int][]time.Duration{}
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatalf("shard %d: %v", i, errs[i])
		}
		if !out.Clock.Base().Equal(start) {
			t.Errorf("shard %d: clock base %v, want the start %v", i, out.Clock.Base(), start)
		}
		if len(out.History) != customers*burst/shards {
			t.Errorf("shard %d sent %d requests, want %d", i, len(out.History), customers*burst/shards)
		}
		for _, op := range out.History {
			seqs[op.ID()]++
			if op.Seq%shards != i {
				t.Errorf("shard %d sent seq %d", i, op.Seq)
			}
			if op.Call < 0 {
				t.Errorf("shard %d: %s called %s before the start", i, op.ID(), op.Call)
			}
			first[op.Customer.Index] = append(first[op.Customer.Index], op.Call)
		}
	}
	if len(seqs) != customers*burst {
		t.Errorf("%d distinct requests, want %d: %v", len(seqs), customers*burst, seqs)
	}
	for c, calls := range first {
		lo, hi := slices.Min(calls), slices.Max(calls)
		// Customer c's burst is due at c*gap after the start, from every shard alike: never
		// before, and well before the next one.
		due := time.Duration(c) * gap
		if lo < due || hi > due+gap*4/5 {
			t.Errorf("customer %d: calls %v, due at %s: not one burst at its scheduled instant", c, calls, due)
		}
	}
}

// TestRecorderKeepsTheAnswersHeaders: the headers the API promises per answer are recorded as
// sent, an absent one as empty, and the Op says it recorded them.
func TestRecorderKeepsTheAnswersHeaders(t *testing.T) {
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Bearer realm="tokens"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"unauthenticated","message":"no key"}`)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, `{"token":"t","id":"c","created":true}`) // no Content-Type: sniffed
	})
	rec := NewRecorder(history.NewClock(time.Now()), NewTransport(), 0)
	rec.SetObserve(testRequest.Observe)
	client := &http.Client{Transport: rec}
	for i, key := range []string{"", "sk_x"} {
		req, err := http.NewRequest(http.MethodPost, svc.URL+testRequest.Path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(RequestHeader, rec.Expect(history.Op{Customer: history.Customer{Index: i}}))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ops := rec.Ops()
	if len(ops) != 2 {
		t.Fatalf("%d ops, want 2", len(ops))
	}
	byIndex := map[int]history.Op{ops[0].Customer.Index: ops[0], ops[1].Customer.Index: ops[1]}
	type headers struct{ contentType, cacheControl, wwwAuthenticate string }
	for i, want := range []headers{
		{"application/json", "", `Bearer realm="tokens"`},
		{"text/plain; charset=utf-8", "no-store", ""},
	} {
		op := byIndex[i]
		if got := (headers{op.ContentType, op.CacheControl, op.WWWAuthenticate}); got != want || !op.HeadersRecorded {
			t.Errorf("op %d: headers %+v (recorded %v), want %+v", i, got, op.HeadersRecorded, want)
		}
	}
}

// The create request goes where Params.Request says, bursts and retries alike, its path's
// placeholders filled and escaped.
func TestRunSendsTheTargetsMethodAndPath(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Method+" "+r.URL.EscapedPath()]++
		mu.Unlock()
		w.Header().Set(testPodHeader, "pod-a")
		if strings.HasSuffix(r.Header.Get(RequestHeader), "/0") {
			w.WriteHeader(http.StatusServiceUnavailable) // every burst request is retried once
			return
		}
		io.WriteString(w, `{"token":"t"}`)
	})
	retry := RetryParams{MaxAttempts: 1, Backoff: time.Millisecond, sleep: func(context.Context, time.Duration) error { return nil }}
	req := request.Template{Method: http.MethodPut, Path: "/api/v2/{{tenant}}/signups/{{name}}", Body: map[string]string{"k": "{{key}}"}}
	cs := Customers(1, 2, 1)
	_, err := Run(context.Background(), Params{URL: svc.URL + "/", Request: req, Customers: cs, Burst: 2, Retry: retry, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{ // 2 customers x 2, each retried once
		"PUT /api/v2/m-0/signups/Customer%200": 4,
		"PUT /api/v2/m-0/signups/Customer%201": 4,
	}
	if !maps.Equal(seen, want) {
		t.Errorf("the service saw %v, want %v", seen, want)
	}
}
