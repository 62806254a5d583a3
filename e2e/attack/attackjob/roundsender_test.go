package attackjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

func portOf(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// closedPort is a local port nothing listens on: a port-forward that has gone.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return p
}

// TestRoundServersSend: every run is posted to each server with its shard, and the outputs
// merge into one history on the spec's clock in which every request of every burst appears
// once, numbered from the spec's sequence (a second run continues it). A server whose
// port-forward is gone is reached again through a new one, once; a server that answers with an
// error is not posted to again (it may have sent requests), and the run fails naming it.
func TestRoundServersSend(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Tenant    string `json:"tenant"`
			EntityKey string `json:"key"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		seen[req.Tenant+"/"+req.EntityKey]++
		mu.Unlock()
		w.Header().Set(testPodHeader, "app-0")
		fmt.Fprint(w, `{"token":"t","id":"x","created":false}`)
	}))
	t.Cleanup(svc.Close)
	customers := traffic.Customers(3, 4, 2)
	keys := map[string]string{}
	for _, c := range customers {
		keys[c.Tenant] = "sk_" + c.Tenant
	}
	var ports []int
	for range 3 {
		s := httptest.NewServer(attack.NewServer(keys, 4, "", "", slog.New(slog.DiscardHandler)))
		t.Cleanup(s.Close)
		ports = append(ports, portOf(t, s.URL))
	}
	c := testCluster(svc.URL, true)
	var opens atomic.Int32
	gone := closedPort(t)
	rs := NewRoundSender(c, []string{"rounds-a", "rounds-b", "rounds-c"}, func(_ context.Context, i int) (int, func(), error) {
		opens.Add(1)
		if opens.Load() == 2 { // server 1's first port-forward is already gone
			return gone, func() {}, nil
		}
		return ports[i], func() {}, nil
	})
	ctx := context.Background()
	for i := range ports {
		if err := rs.forward(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ports {
		if i == 1 {
			continue // its port-forward is gone until a round reopens it
		}
		if err := rs.measureClock(ctx, i); err != nil {
			t.Fatal(err)
		}
		// The servers share this host's clock: measured within the bound, nothing to move.
		if c := rs.clocks[i]; c.Shift != 0 || c.Offset > c.Bound || c.Offset < -c.Bound {
			t.Errorf("server %d on this host's clock: %+v", i, c)
		}
	}
	for run := range 2 {
		ops, err := rs.Send(ctx, attack.Batch{Customers: customers, Burst: 6, Gap: 20 * time.Millisecond})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if len(ops) != 4*6 {
			t.Fatalf("run %d: %d ops, want 24", run, len(ops))
		}
		ids := map[string]bool{}
		for _, op := range ops {
			if op.Seq < run*6 || op.Seq >= (run+1)*6 || ids[op.ID()] {
				t.Errorf("run %d: request %s numbered outside the run's or twice", run, op.ID())
			}
			ids[op.ID()] = true
			if op.Call < RoundLead/2 || op.Status != 200 {
				t.Errorf("run %d: %s called at %s on the spec's clock (the plan starts %s after the post), status %d", run, op.ID(), op.Call, RoundLead, op.Status)
			}
		}
	}
	if got := opens.Load(); got != 4 {
		t.Errorf("%d port-forwards opened, want 3 and one again for the gone one", got)
	}
	for _, c := range customers {
		if seen[c.Tenant+"/"+c.EntityKey] != 12 {
			t.Errorf("customer %s got %d requests, want 12", c.EntityKey, seen[c.Tenant+"/"+c.EntityKey])
		}
	}

	// A server that fails a round: the run fails, and the server is asked once.
	var posts atomic.Int32
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	rs.mu.Lock()
	rs.ports[2] = portOf(t, broken.URL)
	rs.mu.Unlock()
	if _, err := rs.Send(ctx, attack.Batch{Customers: customers, Burst: 6, Gap: 20 * time.Millisecond}); err == nil || posts.Load() != 1 ||
		!strings.Contains(err.Error(), "rounds-c") {
		t.Errorf("with a failing server: err %v after %d posts, want an error after 1", err, posts.Load())
	}
}

// TestRoundServersCorrectClocks: a round server whose clock is 5 s ahead of this host's times
// its ops 5 s late; in existing mode they are moved back onto this host's clock, on which the
// fault's event is timed, by the offset measured before the first round (within its bound);
// elsewhere the clocks are one and the ops stay as timed. The handler intervals are the token
// service's clock, not the server's, and never move with the correction.
func TestRoundServersCorrectClocks(t *testing.T) {
	const ahead = 5 * time.Second
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received := time.Now().Add(ahead)
		if r.URL.Path == attack.ClockPath {
			_ = json.NewEncoder(w).Encode(attack.Clock{UnixNano: received.UnixNano()})
			return
		}
		p, err := attack.DecodePlan(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var ops []history.Op
		for _, c := range p.Customers {
			for _, s := range p.Shard.Seqs(p.Burst) {
				ops = append(ops, history.Op{Customer: c, Seq: s, Phase: history.PhaseBurst, Call: 100 * time.Millisecond,
					Return: 110 * time.Millisecond, Status: 200, ServerStart: 102 * time.Millisecond, ServerEnd: 108 * time.Millisecond})
			}
		}
		tr := attack.Trailer{Index: p.Shard.Index, Shards: p.Shard.Count, Start: p.Start.UnixNano()}
		_ = attack.WriteOutput(w, ops, tr)
	}))
	t.Cleanup(fake.Close)
	customers := traffic.Customers(4, 2, 1)
	for _, correct := range []bool{false, true} {
		rs := NewRoundSender(testCluster(fake.URL, correct), []string{"rounds-a"}, func(context.Context, int) (int, func(), error) { return portOf(t, fake.URL), func() {}, nil })
		if err := rs.forward(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if err := rs.measureClock(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		c := rs.clocks[0]
		if c.Offset < ahead-c.Bound || c.Offset > ahead+c.Bound || c.Bound > 50*time.Millisecond || (c.Shift != 0) != correct {
			t.Fatalf("correct=%t: measured %s within %s, shift %s; want 5s, shifted only when correcting", correct, c.Offset, c.Bound, c.Shift)
		}
		before := rs.Clock.Since()
		ops, err := rs.Send(context.Background(), attack.Batch{Customers: customers, Burst: 2, Gap: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// The plan starts RoundLead after the post; its ops 100 ms after that.
		want := before + RoundLead + 100*time.Millisecond
		if correct {
			want -= c.Shift
		}
		for _, op := range ops {
			if d := op.Call - want; d < 0 || d > 100*time.Millisecond {
				t.Errorf("correct=%t: %s called at %s on the spec's clock, want about %s", correct, op.ID(), op.Call, want)
			}
			if got := op.ServerStart - op.Call; got != 2*time.Millisecond+c.Shift || op.ServerEnd-op.ServerStart != 6*time.Millisecond {
				t.Errorf("correct=%t: %s handler %s..%s, call %s: the handler's interval moved with the server's clock",
					correct, op.ID(), op.ServerStart, op.ServerEnd, op.Call)
			}
		}
	}
}

// testCluster is a Cluster that reaches the target at url, its attackers' clocks corrected or
// not, on a spec's fresh clock and numbering.
func testCluster(url string, correct bool) Cluster {
	return Cluster{Namespace: "stampede-atomic-test", URL: url,
		Request: request.Template{Method: http.MethodPost, Path: "/create", Auth: request.Auth{Header: traffic.AuthorizationHeader, Bearer: true},
			Body: map[string]string{"tenant": "{{tenant}}", "key": "{{key}}"}},
		Clock: history.NewClock(time.Now()), Seqs: history.NewSeqs(), CorrectClocks: correct, Log: slog.New(slog.DiscardHandler)}
}

func TestAttackersLog(t *testing.T) {
	r := &Result{Took: 12 * time.Second, Pods: []Pod{
		{Name: "a-0", Index: 0, Node: "w1", Phase: corev1.PodSucceeded,
			Output: attack.Output{Trailer: attack.Trailer{Slack: 3 * time.Second}, Log: []string{"time=1 msg=plan"}}},
		{Name: "a-1", Index: 1, Node: "w2", Phase: corev1.PodFailed, Log: []byte("panic: boom\n"), OutputErr: errors.New("no trailer")},
	}}
	got := AttackersLog(r, []attack.NodeClock{attack.NewNodeClock(40*time.Millisecond, time.Millisecond, true)})
	for _, want := range []string{"2 pods, 12s", "== pod a-0, index 0, node w1, Succeeded: slack 3s", "time=1 msg=plan",
		"output unreadable: no trailer", "panic: boom", "clock: 40ms ahead of this host's, within 1ms; ops moved by -40ms",
		"clock: not measured"} {
		if !strings.Contains(got, want) {
			t.Errorf("attackers.log lacks %q:\n%s", want, got)
		}
	}
}
