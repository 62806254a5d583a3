package chaos

import (
	"fmt"
	"slices"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// WindowStats are the figures of the requests whose call time falls inside a window, such as a
// fault's: how many got a 2xx, a non-2xx response, or no response at all.
type WindowStats struct {
	Requests  int `json:"requests"`
	Successes int `json:"successes"`
	// Errors are complete non-2xx responses (the checker judges whether they are clean).
	Errors int `json:"errors"`
	// Unknown are transport errors and timeouts: outcomes unknown, never successes.
	Unknown int `json:"unknown"`
}

// Ratio is the success ratio, 2xx over requests; 0 when there was no request.
func (w WindowStats) Ratio() float64 {
	if w.Requests == 0 {
		return 0
	}
	return float64(w.Successes) / float64(w.Requests)
}

// String gives the figures in one line.
func (w WindowStats) String() string {
	return fmt.Sprintf("%.1f%% (%d of %d 2xx, %d errors, %d unknown)", 100*w.Ratio(), w.Successes, w.Requests, w.Errors, w.Unknown)
}

// Window counts the ops whose call time lies inside e, retries included: a request sent while
// the fault was on counts, whenever it returned. Requests sent with a key that may not register
// are left out (mayRegister): their refusal is by design, fault or not.
func Window(ops []history.Op, e history.Event) WindowStats {
	var w WindowStats
	for _, op := range ops {
		if !e.Contains(op.Call) || !mayRegister(op) {
			continue
		}
		w.Requests++
		switch {
		case op.Unknown():
			w.Unknown++
		case op.Succeeded():
			w.Successes++
		default:
			w.Errors++
		}
	}
	return w
}

// mayRegister reports whether op carried its customer's own key, or was sent by a run without
// keys (no kind recorded): the requests a fault's figures count. One with no key, a malformed,
// an unknown or another tenant's key (traffic's auth surface) is refused whatever the fault.
func mayRegister(op history.Op) bool { return op.KeyKind == "" || op.KeyKind == history.KeyOwn }

// Round is one batch of new customers sent while a fault runs: their bursts, and the retries a
// client made, on the run's base time.
type Round struct {
	Index int `json:"index"`
	// Start is when the round was launched.
	Start time.Duration `json:"start_ns"`
	Ops   []history.Op  `json:"-"`
}

// Recovery returns how long after end the service served a whole round of new bursts: the
// first round launched at or after end in which every burst request with its customer's own key
// (or, in a run without keys, every one) got a 2xx or an answer byDesign accepts (nil: none),
// and every customer of the round got at least one 2xx, measured to the return of its last
// burst request. byDesign is for the answers a mode gives the losers of a race by contract (409
// in-progress): they are the service working, not failing, and a mode that gives them would
// otherwise never recover. Retries do not count: a round that needed one did not succeed at
// the first burst. It returns false if no round did.
func Recovery(rounds []Round, end time.Duration, byDesign func(history.Op) bool) (time.Duration, bool) {
	ordered := slices.Clone(rounds)
	slices.SortStableFunc(ordered, func(a, b Round) int { return int(a.Start - b.Start) })
	for _, r := range ordered {
		if r.Start < end {
			continue
		}
		if last, ok := servedWhole(r, byDesign); ok {
			return last - end, true
		}
	}
	return 0, false
}

// servedWhole reports whether round r was served whole (Recovery) and the return of its last
// burst request.
func servedWhole(r Round, byDesign func(history.Op) bool) (time.Duration, bool) {
	var last time.Duration
	served := map[int]bool{} // customer index -> got a 2xx
	for _, op := range r.Ops {
		// A refusal by design says nothing about recovery.
		if op.Phase != history.PhaseBurst || !mayRegister(op) {
			continue
		}
		if _, seen := served[op.Customer.Index]; !seen {
			served[op.Customer.Index] = false
		}
		switch {
		case op.Succeeded():
			served[op.Customer.Index] = true
		case byDesign == nil || !byDesign(op):
			return 0, false
		}
		last = max(last, op.Return)
	}
	for _, ok := range served {
		if !ok {
			return 0, false
		}
	}
	return last, len(served) > 0
}
