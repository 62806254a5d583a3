package traffic

import (
	"fmt"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// BurstPacer is a vegeta.Pacer that releases Size hits at once, then waits until
// Gap has passed since the start of that burst before releasing the next one,
// and stops after Bursts bursts. The Attacker needs at least Size idle workers
// for a burst to leave together.
//
// With Start set, burst j is due at Start + j*Gap on the wall clock rather than j*Gap after
// vegeta's own start: clients in several processes (the attacker pods) that agree on Start
// release their shares of each burst at the same instant, however late each one's vegeta began.
type BurstPacer struct {
	Size   int
	Gap    time.Duration
	Bursts int
	Start  time.Time
}

var _ vegeta.Pacer = BurstPacer{}

// Pace implements vegeta.Pacer: zero wait inside a burst, the rest of the gap at
// a burst boundary.
func (p BurstPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if p.Size <= 0 || p.Bursts <= 0 || hits >= uint64(p.Size)*uint64(p.Bursts) {
		return 0, true
	}
	due := time.Duration(hits/uint64(p.Size)) * p.Gap
	if !p.Start.IsZero() {
		elapsed = time.Since(p.Start)
	}
	if elapsed >= due {
		return 0, false
	}
	return due - elapsed, false
}

// Rate implements vegeta.Pacer with the mean rate in hits per second.
func (p BurstPacer) Rate(time.Duration) float64 {
	if p.Gap <= 0 {
		return 0
	}
	return float64(p.Size) / p.Gap.Seconds()
}

// String describes p for logs.
func (p BurstPacer) String() string {
	if !p.Start.IsZero() {
		return fmt.Sprintf("Burst{%d hits every %s, %d bursts, from %s}", p.Size, p.Gap, p.Bursts, p.Start.UTC().Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("Burst{%d hits every %s, %d bursts}", p.Size, p.Gap, p.Bursts)
}
