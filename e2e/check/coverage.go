package check

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// Defaults for CoverageParams fields left zero.
const (
	DefaultMinCovered  = 1
	DefaultMinFraction = 0.5
)

// CoverageParams set how much of the run must have exercised the race for a
// clean run to pass. Only a customer's first-registration requests count: those
// with its own tenant's key, sent before the customer's first 2xx returned (a
// retry sent after the row existed races with nothing). A customer is covered
// (client-side) when two of them were served by different pods with overlapping
// call/return intervals, and server-covered when two of them were served by
// different pods whose handlers ran at the same time, by the intervals the pods
// reported (history.Op.ServerStart and ServerEnd). Requests served by a pod whose
// clock samples contradict each other (Skew.Inconsistent) count for neither.
type CoverageParams struct {
	// MinCovered is the least number of covered customers (DefaultMinCovered
	// if zero; it cannot be lower than one, or the guard could never fail).
	// It applies client-side and server-side alike.
	MinCovered int `json:"min_covered"`
	// MinFraction is the least fraction of customers covered
	// (DefaultMinFraction if zero; negative means no fraction is required).
	// It applies client-side and server-side alike.
	MinFraction float64 `json:"min_fraction"`
	// ClockSkewBound is how far the clocks of two pods may disagree: two handler
	// intervals count as overlapping only when they overlap by more than it. Zero
	// when every pod reads one clock (a kind cluster's nodes share the host's);
	// for other clusters use a bound known from the nodes' time sync, or
	// EstimateSkew's Bound.
	ClockSkewBound time.Duration `json:"clock_skew_bound_ns,omitempty"`
	// ReadyPods are the Service's ready replicas as its EndpointSlices list them,
	// for a run during which they did not change. When set, every request must
	// have been served by one of them and each of them must have served burst
	// requests; otherwise the run did not exercise what it meant to, and
	// coverage is insufficient. (Coverage.Pods, the request counts, is another
	// field; hence the name.)
	ReadyPods []string `json:"ready_pods,omitempty"`
	// AllowClientOnly accepts client-side coverage alone when no response carried its
	// handler's interval (a service that sends no Server-Timing). Without it such a run is
	// inconclusive: overlapping calls on two pods do not prove that two handlers ran at once
	// (a proxy or a queue in front of the pods can serialize them).
	AllowClientOnly bool `json:"allow_client_only,omitempty"`
}

// Coverage reports how many customers saw the race, client-side and server-side.
type Coverage struct {
	CoverageParams
	// Customers are those counted for coverage: every customer of the run but the UnderFault
	// ones, whose burst met a fault window or its tail (Params.Faults; FaultTail),
	// when a replica may rightly be out of service. They are judged all the same.
	Customers  int `json:"customers"`
	UnderFault int `json:"under_fault,omitempty"`
	// WithoutOwnKey counts the customers none of whose requests carried their own tenant's
	// API key (cross-tenant or keyless requests alone): they could not register, so they say
	// nothing about the race and are left out too. A customer's requests with other keys never
	// make it covered.
	WithoutOwnKey int `json:"without_own_key,omitempty"`
	// Covered and Fraction are client-side: overlapping call/return intervals.
	Covered  int     `json:"covered"`
	Fraction float64 `json:"fraction"`
	// ServerData says that some response reported its handler's interval. When
	// none did (a service that does not send it), coverage is judged
	// client-side alone if AllowClientOnly, and is insufficient otherwise.
	ServerData bool `json:"server_data"`
	// ServerCovered and ServerFraction are server-side: handler intervals on two
	// pods overlapping by more than ClockSkewBound.
	ServerCovered  int     `json:"server_covered"`
	ServerFraction float64 `json:"server_fraction"`
	// Skew is EstimateSkew of the history, to compare with ClockSkewBound.
	Skew Skew `json:"skew"`
	// Pods counts the requests each pod served; requests without a pod
	// (transport errors) are absent. BurstPods counts the burst requests alone.
	Pods      map[string]int `json:"pods"`
	BurstPods map[string]int `json:"burst_pods"`
	// UnknownPods served requests but are not among ReadyPods; IdlePods are
	// ReadyPods that served no burst request.
	UnknownPods []string `json:"unknown_pods,omitempty"`
	IdlePods    []string `json:"idle_pods,omitempty"`
	Sufficient  bool     `json:"sufficient"`
	// Reasons say why coverage is insufficient, one a line.
	Reasons []string `json:"reasons,omitempty"`
}

// String gives the figures of c in one line, client-side and server-side side by side, in the
// neutral words (Describe).
func (c Coverage) String() string { return c.Describe(Names{}) }

// Describe is String in the target's words n (its entities).
func (c Coverage) Describe(n Names) string {
	n = n.WithDefaults()
	var b strings.Builder
	fmt.Fprintf(&b, "client-side %d of %d %s (%.0f%%) had requests on two pods with overlapping call/return",
		c.Covered, c.Customers, n.Entities, 100*c.Fraction)
	if c.UnderFault > 0 {
		fmt.Fprintf(&b, " (%d more bursts met a fault window and are not counted)", c.UnderFault)
	}
	if c.WithoutOwnKey > 0 {
		fmt.Fprintf(&b, " (%d more %s sent none of their own tenant's keys and are not counted)", c.WithoutOwnKey, n.Entities)
	}
	if c.ServerData {
		fmt.Fprintf(&b, "; server-side %d of %d (%.0f%%) had handlers on two pods running at once (overlap > %v; estimated clock skew bound %v)",
			c.ServerCovered, c.Customers, 100*c.ServerFraction, c.ClockSkewBound, c.Skew.Bound)
	} else {
		b.WriteString("; server-side: no data (no response carried its handler's interval)")
		if c.AllowClientOnly {
			b.WriteString(", judged client-side alone as allowed")
		}
	}
	fmt.Fprintf(&b, "; need %d and %.0f%%; pods %v", c.MinCovered, 100*max(c.MinFraction, 0), c.Pods)
	if len(c.ReadyPods) > 0 {
		fmt.Fprintf(&b, " of ready %v", c.ReadyPods)
	}
	if len(c.Skew.Inconsistent) > 0 {
		fmt.Fprintf(&b, "; clocks inconsistent for %v (their requests do not count)", c.Skew.Inconsistent)
	}
	if len(c.Reasons) > 0 {
		fmt.Fprintf(&b, "; insufficient: %s", strings.Join(c.Reasons, "; "))
	}
	return b.String()
}

// newCoverage starts the coverage of a run of n customers, with p's defaults
// applied.
func newCoverage(p CoverageParams, n int) Coverage {
	if p.MinCovered < 1 {
		p.MinCovered = DefaultMinCovered
	}
	if p.MinFraction == 0 {
		p.MinFraction = DefaultMinFraction
	}
	return Coverage{CoverageParams: p, Customers: n, Pods: map[string]int{}, BurstPods: map[string]int{}}
}

// scan adds what the whole history tells, rather than each customer: whether
// pods reported handler intervals, the burst requests per pod and the pods
// outside ReadyPods. skew is EstimateSkew of ops, which the customers' judging
// needed first.
func (c *Coverage) scan(ops []history.Op, skew Skew) {
	ready := map[string]bool{}
	for _, p := range c.ReadyPods {
		ready[p] = true
	}
	unknown := map[string]bool{}
	for i := range ops {
		op := &ops[i]
		c.ServerData = c.ServerData || op.HasServerInterval()
		if op.Pod == "" {
			continue
		}
		if op.Phase == history.PhaseBurst {
			c.BurstPods[op.Pod]++
		}
		if len(ready) > 0 && !ready[op.Pod] {
			unknown[op.Pod] = true
		}
	}
	c.UnknownPods = slices.Sorted(maps.Keys(unknown))
	for _, p := range c.ReadyPods {
		if c.BurstPods[p] == 0 && !slices.Contains(c.IdlePods, p) {
			c.IdlePods = append(c.IdlePods, p)
		}
	}
	c.Skew = skew
}

// finish computes the fractions and the verdict of c once Covered and
// ServerCovered are counted and the history scanned; its reasons count in the target's words n.
func (c Coverage) finish(n Names) Coverage {
	n = n.WithDefaults()
	if c.Customers > 0 {
		c.Fraction = float64(c.Covered) / float64(c.Customers)
		c.ServerFraction = float64(c.ServerCovered) / float64(c.Customers)
	}
	c.Reasons = nil
	if c.Covered < c.MinCovered || c.Fraction < c.MinFraction {
		c.Reasons = append(c.Reasons, fmt.Sprintf("client-side only %d %s (%.0f%%) covered", c.Covered, n.Entities, 100*c.Fraction))
	}
	switch {
	case c.ServerData && (c.ServerCovered < c.MinCovered || c.ServerFraction < c.MinFraction):
		c.Reasons = append(c.Reasons, fmt.Sprintf("server-side only %d %s (%.0f%%) covered", c.ServerCovered, n.Entities, 100*c.ServerFraction))
	case !c.ServerData && !c.AllowClientOnly:
		c.Reasons = append(c.Reasons, ReasonNoServerData)
	}
	if len(c.UnknownPods) > 0 {
		c.Reasons = append(c.Reasons, fmt.Sprintf("requests served by %v, which the Service does not list as ready", c.UnknownPods))
	}
	for _, p := range c.IdlePods {
		c.Reasons = append(c.Reasons, fmt.Sprintf("replica %s served nothing", p))
	}
	c.Sufficient = len(c.Reasons) == 0
	return c
}

// ReasonNoServerData is the reason coverage is insufficient when no response carried its
// handler's interval and CoverageParams.AllowClientOnly is off.
const ReasonNoServerData = "no response carried its handler's interval (Server-Timing), so no race is proven server-side; client-side coverage alone is accepted only when allowed (CoverageParams.AllowClientOnly)"

// firstRegistrations are the ops of own (a customer's requests with its own
// tenant's key) that were sent before the customer's first 2xx returned at
// firstOK (negative: none did), served by a pod whose clock is not in doubt
// (untrusted): the requests that could have raced to create the customer.
func firstRegistrations(own []*history.Op, firstOK time.Duration, untrusted map[string]bool) []*history.Op {
	var out []*history.Op
	for _, op := range own {
		if (firstOK < 0 || op.Call < firstOK) && !untrusted[op.Pod] {
			out = append(out, op)
		}
	}
	return out
}

// crossPodOverlap reports whether two ops were served by different pods while
// both were in flight. Only requests with a pod count: without the pod header
// nothing says where a request went.
func crossPodOverlap(ops []*history.Op) bool {
	for i, a := range ops {
		for _, b := range ops[i+1:] {
			if a.Pod != "" && b.Pod != "" && a.Pod != b.Pod && a.Overlaps(*b) {
				return true
			}
		}
	}
	return false
}

// crossPodServerOverlap reports whether two ops were served by different pods
// whose handler intervals overlap by more than skew: then, whatever the pods'
// clocks, both handlers really ran at once.
func crossPodServerOverlap(ops []*history.Op, skew time.Duration) bool {
	for i, a := range ops {
		if a.Pod == "" || !a.HasServerInterval() {
			continue
		}
		for _, b := range ops[i+1:] {
			if b.Pod == "" || b.Pod == a.Pod || !b.HasServerInterval() {
				continue
			}
			if min(a.ServerEnd, b.ServerEnd)-max(a.ServerStart, b.ServerStart) > skew {
				return true
			}
		}
	}
	return false
}

// PodOffset bounds the offset of one pod's clock: client time minus pod time
// lies within [Lo, Hi].
type PodOffset struct {
	Lo      time.Duration `json:"lo_ns"`
	Hi      time.Duration `json:"hi_ns"`
	Samples int           `json:"samples"`
}

// Skew is what a history tells about the pods' clocks.
type Skew struct {
	// Pods bounds the offset of each pod that reported handler intervals.
	Pods map[string]PodOffset `json:"pods,omitempty"`
	// Bound is the most two pods' clocks can disagree by, given Pods: the
	// largest Hi less the smallest Lo, over the consistent pods. An overlap of
	// handler intervals longer than Bound is an overlap whatever the clocks.
	Bound time.Duration `json:"bound_ns"`
	// Inconsistent lists the pods whose samples contradict each other (Lo >
	// Hi): a clock that was stepped during the run, or intervals that are not
	// the handler's. Bound leaves them out; do not trust their intervals.
	Inconsistent []string `json:"inconsistent,omitempty"`
}

// EstimateSkew bounds the clock offset of every pod from the ops that carry a
// handler interval. A handler runs within its request's call and return, so
// call <= serverStart + offset and serverEnd + offset <= return, where offset is
// client time minus pod time: offset lies in [call - serverStart, return -
// serverEnd]. Intersecting these brackets over a pod's requests bounds its
// offset, the tighter the faster its quickest requests were (as NTP does from
// round trips).
func EstimateSkew(ops []history.Op) Skew {
	s := Skew{Pods: map[string]PodOffset{}}
	for i := range ops {
		op := &ops[i]
		if op.Pod == "" || !op.HasServerInterval() || !op.Responded() {
			continue
		}
		lo, hi := op.Call-op.ServerStart, op.Return-op.ServerEnd
		o, seen := s.Pods[op.Pod]
		if !seen {
			o = PodOffset{Lo: lo, Hi: hi}
		}
		o.Lo, o.Hi, o.Samples = max(o.Lo, lo), min(o.Hi, hi), o.Samples+1
		s.Pods[op.Pod] = o
	}
	first := true
	var lo, hi time.Duration
	for _, pod := range slices.Sorted(maps.Keys(s.Pods)) {
		o := s.Pods[pod]
		if o.Lo > o.Hi {
			s.Inconsistent = append(s.Inconsistent, pod)
			continue
		}
		if first {
			lo, hi, first = o.Lo, o.Hi, false
		}
		lo, hi = min(lo, o.Lo), max(hi, o.Hi)
	}
	s.Bound = hi - lo
	return s
}
