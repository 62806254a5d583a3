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

// TestBurstPacerFromStart checks that a pacer with a Start schedules each burst on the wall
// clock from Start, whatever elapsed vegeta reports: what lines up the shares of several pods.
func TestBurstPacerFromStart(t *testing.T) {
	start := time.Now().Add(-150 * time.Millisecond)
	p := BurstPacer{Size: 2, Gap: 100 * time.Millisecond, Bursts: 4, Start: start}
	// Burst 1 was due 50 ms ago: at once, even though vegeta thinks no time has passed.
	if wait, stop := p.Pace(0, 2); wait != 0 || stop {
		t.Errorf("burst 1, due 50 ms ago: wait %s, stop %v; want 0, false", wait, stop)
	}
	// Burst 2 is due 50 ms from now; vegeta's elapsed of an hour changes nothing.
	wait, stop := p.Pace(time.Hour, 4)
	if stop || wait <= 0 || wait > 50*time.Millisecond {
		t.Errorf("burst 2, due in 50 ms: wait %s, stop %v", wait, stop)
	}
	// Inside burst 2, once it is due: no wait.
	if wait, _ := p.Pace(0, 5); wait > 50*time.Millisecond {
		t.Errorf("inside burst 2: wait %s", wait)
	}
	if _, stop := p.Pace(0, 8); !stop {
		t.Error("all 4 bursts sent: must stop")
	}
	future := BurstPacer{Size: 1, Gap: time.Second, Bursts: 1, Start: time.Now().Add(time.Hour)}
	if wait, _ := future.Pace(0, 0); wait < 59*time.Minute {
		t.Errorf("first burst an hour ahead: wait %s", wait)
	}
}
