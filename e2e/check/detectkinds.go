package check

import "github.com/stampede-e2e/stampede/e2e/history"

// DetectKinds counts the customers of r with a finding of one of kinds: how a canary mode of a
// target file (modes[].canary.findings) is caught, whatever its name.
func DetectKinds(r Result, kinds ...Kind) Detection {
	caught := map[history.Key]bool{}
	for _, v := range r.Violations {
		if v.HasKind(kinds...) {
			caught[v.Customer.Key()] = true
		}
	}
	return Detection{Customers: r.Customers, Caught: len(caught)}
}

// CountKinds counts, for each of kinds, the customers of r with a finding of it: a canary's
// figures, one per finding it may produce.
func CountKinds(r Result, kinds ...Kind) map[Kind]int {
	out := map[Kind]int{}
	for _, k := range kinds {
		out[k] = DetectKinds(r, k).Caught
	}
	return out
}
