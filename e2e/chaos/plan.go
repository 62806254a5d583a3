package chaos

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// The ranges a Plan draws from.
const (
	// MinOffset and MaxOffset bound when a fault fires after the traffic started: late enough
	// that bursts are in flight on every pod, early enough that the traffic outlasts it.
	MinOffset = 3 * time.Second
	MaxOffset = 6 * time.Second
	// MinHold and MaxHold bound how long a fault with a cause to remove (a toxic, a paused
	// node, a blackhole route, extra replicas) is held before it is recovered. Under the node
	// monitor's grace period (40 s), so that a lost node's pods are not evicted.
	MinHold = 5 * time.Second
	MaxHold = 12 * time.Second
)

// Plan is what the seed decides about one fault: when it fires, how long it holds, which of
// the candidate targets it hits and which variant it takes. The same seed and fault name give
// the same Plan.
type Plan struct {
	Fault string `json:"fault"`
	Seed  uint64 `json:"seed"`
	// Offset is when the fault fires, counted from the start of the traffic.
	Offset time.Duration `json:"offset_ns"`
	// Hold is how long the fault is held before it is recovered.
	Hold time.Duration `json:"hold_ns"`
	// Draw picks among targets and variants; see Pick and Variant.
	Draw uint64 `json:"draw"`
	// Draw2 is a second independent draw, for a fault that picks two things.
	Draw2 uint64 `json:"draw2"`
}

// NewPlan derives the plan of fault from seed: a PCG stream keyed by the seed and the fault's
// name, so that adding a fault does not change the plans of the others.
func NewPlan(seed uint64, fault string) Plan {
	h := fnv.New64a()
	_, _ = h.Write([]byte(fault)) // a hash.Hash never fails to write
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	return Plan{
		Fault:  fault,
		Seed:   seed,
		Offset: between(r, MinOffset, MaxOffset),
		Hold:   between(r, MinHold, MaxHold),
		Draw:   r.Uint64(),
		Draw2:  r.Uint64(),
	}
}

// between draws a duration in [lo, hi], rounded to 100 ms so that plans read well.
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	d := lo + time.Duration(r.Int64N(int64(hi-lo)+1))
	return d.Round(100 * time.Millisecond)
}

// Pick returns the index of the target among n candidates, sorted by the caller in a stable
// order (by name), or -1 when there is none.
func (p Plan) Pick(n int) int {
	if n <= 0 {
		return -1
	}
	return int(p.Draw % uint64(n))
}

// Variant returns which of n variants of the fault the plan takes.
func (p Plan) Variant(n int) int {
	if n <= 0 {
		return 0
	}
	return int(p.Draw2 % uint64(n))
}

// String gives the plan in one line for logs and reports.
func (p Plan) String() string {
	return fmt.Sprintf("%s at +%s for %s (draw %d, variant draw %d, seed %d)", p.Fault, p.Offset, p.Hold, p.Draw%1000, p.Draw2%1000, p.Seed)
}
