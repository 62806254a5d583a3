package attack

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

func TestDeadline(t *testing.T) {
	p := Plan{Customers: traffic.Customers(1, 40, 4), Gap: 100 * time.Millisecond, Retry: traffic.RetryParams{MaxAttempts: 5, MaxWait: 2 * time.Second}}
	got := Deadline(p, 10*time.Second)
	// lead 10s + bursts 4s + a timeout 10s + twice 5 retries of (2s wait + 10s timeout) + 1 min.
	if want := 204 * time.Second; got != want {
		t.Errorf("deadline %s, want %s", got, want)
	}
}

// TestHostSends: the host sender sends a batch as the target's request says, on the spec's
// clock and numbering: a second batch of the same customers continues their request numbers.
func TestHostSends(t *testing.T) {
	var (
		mu   sync.Mutex
		keys = map[string]int{}
	)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req registerRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		keys[r.Header.Get("X-Api-Key")+" "+r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		w.Header().Set(testPodHeader, "pod-0")
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(svc.Close)
	cs := traffic.Customers(5, 2, 2)
	var s Sender = &Host{URL: svc.URL, Request: headerRequest, Keys: map[string]string{"m-0": "k0", "m-1": "k1"},
		Clock: history.NewClock(time.Now()), Seqs: history.NewSeqs(), Log: slog.New(slog.DiscardHandler)}
	for run := range 2 {
		ops, err := s.Send(context.Background(), Batch{Customers: cs, Burst: 3, Gap: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			if op.Seq < 3*run || op.Seq >= 3*(run+1) || op.Status != http.StatusCreated {
				t.Errorf("run %d: %s status %d", run, op.ID(), op.Status)
			}
		}
	}
	if want := map[string]int{"k0 c-5-0": 6, "k1 c-5-0": 6}; len(keys) != 2 || keys["k0 c-5-0"] != want["k0 c-5-0"] || keys["k1 c-5-0"] != want["k1 c-5-0"] {
		t.Errorf("keys and idempotency keys seen %v, want %v", keys, want)
	}
	if _, err := (&Host{Request: headerRequest}).Send(context.Background(), Batch{Customers: cs, Burst: 1}); err == nil {
		t.Error("a host sender without a URL sent")
	}
}

// TestClockDisagreement: two attackers' clocks, once corrected, disagree by at most the sum of
// their two largest residuals (what is left of each offset, plus its bound); an uncorrected
// clock's residual is its whole offset.
func TestClockDisagreement(t *testing.T) {
	ms := time.Millisecond
	corrected := NewNodeClock(40*ms, 2*ms, true)    // shifted: residual 2 ms
	uncorrected := NewNodeClock(40*ms, 2*ms, false) // kept: residual 42 ms
	withinBound := NewNodeClock(1*ms, 3*ms, true)   // not measurably off: residual 4 ms
	behind := NewNodeClock(-30*ms, 1*ms, true)      // shifted: residual 1 ms
	for _, tc := range []struct {
		name   string
		clocks []NodeClock
		want   time.Duration
	}{
		{"one clock", []NodeClock{uncorrected}, 0},
		{"corrected clocks", []NodeClock{corrected, behind}, 3 * ms},
		{"one not measurably off", []NodeClock{corrected, withinBound, behind}, 6 * ms},
		{"one left uncorrected", []NodeClock{corrected, uncorrected, behind}, 44 * ms},
	} {
		if got := ClockDisagreement(tc.clocks); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if corrected.Shift != 40*ms || uncorrected.Shift != 0 || withinBound.Shift != 0 || behind.Shift != -30*ms {
		t.Errorf("shifts %s %s %s %s", corrected.Shift, uncorrected.Shift, withinBound.Shift, behind.Shift)
	}
}
