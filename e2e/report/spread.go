package report

import (
	"fmt"
	"slices"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

// BurstSpreadStats is how close together each customer's burst left: for every customer with two or
// more burst requests, the time from its first request's call to its last's (max(Call) -
// min(Call)), and over those customers the median, the 99th percentile and the maximum. It is
// what one client, or several attacker pods that agree on a start instant, can do: the race
// needs the requests in flight together, and a spread wider than a request's latency sends
// them one after another.
type BurstSpreadStats struct {
	Customers int           `json:"customers"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	Max       time.Duration `json:"max_ns"`
	// Rate is the burst requests sent per second, from the first burst call to the last.
	Rate float64 `json:"rate"`
}

// BurstSpread computes the BurstSpreadStats of the burst requests of ops.
func BurstSpread(ops []history.Op) BurstSpreadStats {
	type span struct{ lo, hi time.Duration }
	spans := map[history.Key]*span{}
	counts := map[history.Key]int{}
	var (
		first, last time.Duration
		requests    int
	)
	for _, op := range ops {
		if op.Phase != history.PhaseBurst {
			continue
		}
		if requests == 0 || op.Call < first {
			first = op.Call
		}
		if requests == 0 || op.Call > last {
			last = op.Call
		}
		requests++
		k := op.Customer.Key()
		counts[k]++
		if s, ok := spans[k]; ok {
			s.lo, s.hi = min(s.lo, op.Call), max(s.hi, op.Call)
		} else {
			spans[k] = &span{op.Call, op.Call}
		}
	}
	var widths []time.Duration
	for k, s := range spans {
		if counts[k] > 1 {
			widths = append(widths, s.hi-s.lo)
		}
	}
	var out BurstSpreadStats
	if last > first {
		out.Rate = float64(requests-1) / (last - first).Seconds()
	}
	if len(widths) == 0 {
		return out
	}
	slices.Sort(widths)
	out.Customers = len(widths)
	out.P50 = quantile(widths, 0.5)
	out.P99 = quantile(widths, 0.99)
	out.Max = widths[len(widths)-1]
	return out
}

// quantile is the nearest-rank q-quantile of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// String formats s for the summary, in the neutral words (Describe).
func (s BurstSpreadStats) String() string { return s.Describe(check.Names{}) }

// Describe is String in the target's words n.
func (s BurstSpreadStats) Describe(n check.Names) string {
	n = n.WithDefaults()
	if s.Customers == 0 {
		return fmt.Sprintf("no %s had two burst requests; %.0f burst requests/s", n.Entity, s.Rate)
	}
	return fmt.Sprintf("first to last request of %s's burst leaving: p50 %s, p99 %s, max %s over %d %s; %.0f burst requests/s",
		n.AnEntity(), s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.Max.Round(time.Microsecond), s.Customers, n.Entities, s.Rate)
}
