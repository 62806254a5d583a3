//go:build selftest

package httpapi

import (
	"strconv"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/service/mutants"
)

// issue 18, clocks and coverage: the checks of its mutants, added to mutantChecks (TestMutants
// runs them).
func init() {
	mutantChecks[mutants.NoServerTiming] = func(t *testing.T, e mutantEnv) {
		first := mustOK(t, register(t, e.srv, "c1"))
		lost := mustOK(t, register(t, e.loser, "c1"))
		if !first.Created || lost.Created || lost.Token != first.Token {
			t.Fatalf("answers: first %+v, lost race %+v; want production's", first, lost)
		}
		for _, r := range []reply{first, lost} {
			if v := r.header.Values(HandlerTimingHeader); len(v) != 0 {
				t.Fatalf("%s: %v; want none", HandlerTimingHeader, v)
			}
		}
	}
	mutantChecks[mutants.ServerTimingEarly] = func(t *testing.T, e mutantEnv) {
		before := time.Now()
		r := mustOK(t, register(t, e.srv, "c1"))
		after := time.Now()
		start, end := handlerInterval(t, r)
		if !r.Created || !start.Before(before.Add(-900*time.Millisecond)) || end.Before(before) || end.After(after) {
			t.Fatalf("handler %s..%s for a request sent at %s and answered by %s; want a start a second early",
				start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
		}
	}
}

// handlerInterval reads the handler's interval from r's HandlerTimingHeader (handlerTiming).
func handlerInterval(t *testing.T, r reply) (start, end time.Time) {
	t.Helper()
	m := handlerTiming.FindStringSubmatch(r.header.Get(HandlerTimingHeader))
	if m == nil {
		t.Fatalf("%s %q: no handler interval", HandlerTimingHeader, r.header.Get(HandlerTimingHeader))
	}
	s, _ := strconv.ParseInt(m[2], 10, 64)
	e, _ := strconv.ParseInt(m[3], 10, 64)
	return time.Unix(0, s), time.Unix(0, e)
}
