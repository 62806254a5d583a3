package traffic

import (
	"testing"
	"time"
)

func TestBurstPacer(t *testing.T) {
	p := BurstPacer{Size: 3, Gap: 100 * time.Millisecond, Bursts: 2}
	for _, tc := range []struct {
		elapsed time.Duration
		hits    uint64
		wait    time.Duration
		stop    bool
	}{
		{0, 0, 0, false},
		{time.Millisecond, 2, 0, false}, // inside the first burst: no wait
		{10 * time.Millisecond, 3, 90 * time.Millisecond, false}, // boundary: rest of the gap
		{150 * time.Millisecond, 3, 0, false},                    // late: go at once
		{150 * time.Millisecond, 5, 0, false},
		{150 * time.Millisecond, 6, 0, true}, // all bursts sent
	} {
		wait, stop := p.Pace(tc.elapsed, tc.hits)
		if wait != tc.wait || stop != tc.stop {
			t.Errorf("Pace(%s, %d) = %s, %v; want %s, %v", tc.elapsed, tc.hits, wait, stop, tc.wait, tc.stop)
		}
	}
	if _, stop := (BurstPacer{Size: 0, Bursts: 1}).Pace(0, 0); !stop {
		t.Error("a pacer with burst size 0 must stop, not spin")
	}
}
