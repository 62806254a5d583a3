package report

import (
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

func TestBurstSpread(t *testing.T) {
	ms := time.Millisecond
	c := func(i int) history.Customer {
		return history.Customer{Index: i, Tenant: "m", EntityKey: string(rune('a' + i))}
	}
	var ops []history.Op
	// Customer i's burst of 3 leaves over i ms, starting at i*100 ms.
	for i := range 100 {
		for k := range 3 {
			ops = append(ops, history.Op{Customer: c(i), Seq: k, Phase: history.PhaseBurst, Call: time.Duration(i)*100*ms + time.Duration(k*i)*ms/2})
		}
	}
	// Retries and a lone request do not count.
	ops = append(ops, history.Op{Customer: c(0), Seq: 0, Attempt: 1, Phase: history.PhaseRetry, Call: time.Hour},
		history.Op{Customer: c(200), Phase: history.PhaseBurst, Call: 9900 * ms})
	s := BurstSpread(ops)
	if s.Customers != 100 || s.P50 != 49*ms || s.P99 != 98*ms || s.Max != 99*ms {
		t.Errorf("spread %+v, want 100 customers, p50 49ms, p99 98ms, max 99ms", s)
	}
	// 301 burst requests from 0 to 9.9 s.
	if s.Rate < 30 || s.Rate > 30.4 {
		t.Errorf("rate %.2f/s, want about 30.3", s.Rate)
	}
	if z := BurstSpread(nil); z.Customers != 0 || z.Rate != 0 || z.String() == "" {
		t.Errorf("no ops: %+v", z)
	}
}
