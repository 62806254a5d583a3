package check

import (
	"fmt"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// Defaults for CoverageParams fields left zero.
const (
	DefaultMinCovered  = 1
	DefaultMinFraction = 0.5
)

// CoverageParams set how much of the run must have exercised the race for a
// clean run to pass. A customer is covered when two of its requests were
// served by different pods with overlapping call/return intervals.
type CoverageParams struct {
	// MinCovered is the least number of covered customers (DefaultMinCovered
	// if zero; it cannot be lower than one, or the guard could never fail).
	MinCovered int `json:"min_covered"`
	// MinFraction is the least fraction of customers covered
	// (DefaultMinFraction if zero; negative means no fraction is required).
	MinFraction float64 `json:"min_fraction"`
}

// Coverage reports how many customers saw the race.
type Coverage struct {
	CoverageParams
	Customers int     `json:"customers"`
	Covered   int     `json:"covered"`
	Fraction  float64 `json:"fraction"`
	// Pods counts the requests each pod served; requests without a pod
	// (transport errors) are absent.
	Pods       map[string]int `json:"pods"`
	Sufficient bool           `json:"sufficient"`
}

// String gives the figures of c in one line.
func (c Coverage) String() string {
	return fmt.Sprintf("%d of %d customers (%.0f%%) had requests served by two pods at once; need %d and %.0f%%; pods %v",
		c.Covered, c.Customers, 100*c.Fraction, c.MinCovered, 100*max(c.MinFraction, 0), c.Pods)
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
	return Coverage{CoverageParams: p, Customers: n, Pods: map[string]int{}}
}

// finish computes the fraction and the verdict of c once Covered is counted.
func (c Coverage) finish() Coverage {
	if c.Customers > 0 {
		c.Fraction = float64(c.Covered) / float64(c.Customers)
	}
	c.Sufficient = c.Covered >= c.MinCovered && c.Fraction >= c.MinFraction
	return c
}

// crossPodOverlap reports whether two ops were served by different pods while
// both were in flight. Only requests with a pod count: without X-Served-By
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
