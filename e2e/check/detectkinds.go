package check

import (
	"strings"

	"github.com/stampede-e2e/stampede/e2e/history"
)

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

// BugName names the bug of a canary mode caught by kinds, for a line of prose: the checker's
// name for it when the mode has a known bug (KnownBugs), else the kinds that catch it.
func BugName(mode string, kinds []Kind) string {
	if known, ok := KnownBugOf(mode); ok {
		return known.Bug
	}
	return KindList(kinds)
}

// KindList is kinds as a list for a line of prose.
func KindList(kinds []Kind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// KindsOf reads finding kinds as a target file names them (modes[].canary.findings and never).
func KindsOf(names []string) []Kind {
	if names == nil {
		return nil
	}
	kinds := make([]Kind, len(names))
	for i, n := range names {
		kinds[i] = Kind(n)
	}
	return kinds
}
