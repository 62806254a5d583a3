package check

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// TestUnknownOutcome: a request that got no answer breaks the contract's answer-arrives line,
// whatever the strategy, unless it was in flight during a fault or its tail.
func TestUnknownOutcome(t *testing.T) {
	s := time.Second
	late := func(o history.Op) history.Op { // alice's third request, 20 s into the run
		o.Call, o.Return = 20*s, 20*s+3*time.Millisecond
		return o
	}
	reset := lost(alice, 2, 2, 5, 0, "read: connection reset by peer")
	halfRead := lost(alice, 2, 2, 5, 200, "unexpected EOF") // the status came, the body did not
	timeout := lost(alice, 2, 2, 10_002, 0, "context deadline exceeded (Client.Timeout exceeded while awaiting headers)")
	for _, tc := range []struct {
		name     string
		strategy string
		third    history.Op
		faults   []history.Event
		tail     time.Duration
		breach   bool
	}{
		{name: "atomic: a reset without a fault", strategy: modeAtomic, third: reset, breach: true},
		{name: "atomic: a request the client never sent", strategy: modeAtomic, third: lost(alice, 2, 0, 0, 0, "request was never sent")},
		{name: "atomic: an EOF after the status line", strategy: modeAtomic, third: halfRead, breach: true},
		{name: "atomic: the client's timeout", strategy: modeAtomic, third: timeout, breach: true},
		{name: "fail-fast: a reset without a fault", strategy: modeFailFast, third: reset, breach: true},
		{name: "legacy: a reset without a fault", strategy: modeLegacy, third: reset, breach: true},
		{name: "atomic: a reset inside a fault", strategy: modeAtomic, third: late(reset),
			faults: []history.Event{{Kind: history.EventFault, Name: "pod-kill", Start: 19 * s, End: 21 * s}}},
		{name: "atomic: a timeout of a request sent before a fault began", strategy: modeAtomic, third: timeout,
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 5 * s, End: 8 * s}}},
		{name: "atomic: a reset within the tail", strategy: modeAtomic, third: late(reset),
			faults: []history.Event{{Kind: history.EventFault, Name: "pod-kill", Start: s, End: 15 * s}}},
		{name: "atomic: a reset after the tail", strategy: modeAtomic, third: late(reset), tail: 2 * s, breach: true,
			faults: []history.Event{{Kind: history.EventFault, Name: "pod-kill", Start: s, End: 15 * s}}},
		{name: "atomic: a reset before the fault", strategy: modeAtomic, third: reset, breach: true,
			faults: []history.Event{{Kind: history.EventFault, Name: "pod-kill", Start: 19 * s, End: 21 * s}}},
		{name: "atomic: a reset inside a declared pod-kill", strategy: modeAtomic, third: late(reset),
			faults: []history.Event{{Kind: history.EventFault, Name: "pod-kill", Start: 19 * s, End: 21 * s, Declared: true,
				Excuses: []history.Excuse{{Status: 0, Pods: []string{"pod-b"}}}}}},
		{name: "atomic: a reset inside a declared database fault, which excuses only 503s", strategy: modeAtomic, third: late(reset), breach: true,
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s, Declared: true,
				Excuses: []history.Excuse{{Status: 503, Code: "unavailable"}, {Status: 503, Code: "overloaded"}}}}},
		{name: "atomic: a reset inside a declared scale, which excuses no lost answer", strategy: modeAtomic, third: late(reset), breach: true,
			faults: []history.Event{{Kind: history.EventFault, Name: "scale", Start: 19 * s, End: 21 * s, Declared: true, ChangesPods: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.Contract, p.Faults = contract(t, tc.strategy), tc.faults
			p.Contract.FaultTail = tc.tail
			want := map[Rule]int{}
			if tc.breach {
				want[RuleContract] = 1
			}
			res := judge(t, raceFor(t, tc.third), []Row{rowA}, p, want)
			if res.Unknown != 1 {
				t.Errorf("%d unknown outcomes, want 1", res.Unknown)
			}
			if !tc.breach || len(res.Violations) != 1 {
				return
			}
			v := res.Violations[0]
			if len(v.Findings) != 1 || v.Findings[0].Kind != KindNoAnswer || v.Findings[0].Line != ContractAnswerArrives ||
				v.Findings[0].Request != "0/2/0" || !strings.Contains(v.Details[0], tc.third.Error) {
				t.Errorf("violation %+v: want one no-answer finding of line %s by 0/2/0, naming the error", v, ContractAnswerArrives)
			}
		})
	}
}

// TestRestarts: a restart or a replaced pod breaks the contract's no-restart line unless a
// fault excuses it, with one violation for the run per change, naming the pod.
func TestRestarts(t *testing.T) {
	s := time.Second
	restarted := func(at time.Duration) Restart {
		return Restart{Pod: "pod-a", Change: RestartContainer, Container: "widgets", Count: 1, From: at, To: at, Reason: "Error, exit code 1"}
	}
	gone := Restart{Pod: "pod-b", Change: RestartPodGone, From: -s, To: 30 * s}
	added := Restart{Pod: "pod-c", Change: RestartPodNew, From: 20 * s, To: 20 * s}
	for _, tc := range []struct {
		name     string
		restarts []Restart
		faults   []history.Event
		breaches []string // the pods named, in order
	}{
		{name: "no change"},
		{name: "a container restarted, no fault", restarts: []Restart{restarted(20 * s)}, faults: []history.Event{}, breaches: []string{"pod-a"}},
		{name: "a container restarted after the fault's tail", restarts: []Restart{restarted(20 * s)}, breaches: []string{"pod-a"}},
		{name: "a container restarted inside the fault", restarts: []Restart{restarted(150 * time.Millisecond)}},
		{name: "a container restarted within the tail", restarts: []Restart{restarted(5 * s)}},
		{name: "a pod gone, no fault", restarts: []Restart{gone}, faults: []history.Event{}, breaches: []string{"pod-b"}},
		{name: "a pod gone while a fault was on", restarts: []Restart{gone}},
		{name: "a pod added after the fault, and one gone", restarts: []Restart{gone, added}, breaches: []string{"pod-c"}},
		{name: "a pod added inside a fault that never ended", restarts: []Restart{added},
			faults: []history.Event{{Kind: history.EventFault, Name: "node-loss", Start: 19 * s}}},
		{name: "a container restarted inside a declared pod-kill", restarts: []Restart{restarted(20 * s)},
			faults: []history.Event{{Kind: history.EventFault, Name: "pod-kill", Start: 19 * s, End: 21 * s, Declared: true, ChangesPods: true,
				Excuses: []history.Excuse{{Status: 0, Pods: []string{"pod-a"}}}}}},
		{name: "a container restarted inside a declared database fault, which changes no pod", restarts: []Restart{restarted(20 * s)},
			faults: []history.Event{{Kind: history.EventFault, Name: "db-restart", Start: 19 * s, End: 21 * s, Declared: true,
				Excuses: []history.Excuse{{Status: 503, Code: "unavailable"}}}}, breaches: []string{"pod-a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops, rows := goodHistory(t)
			p := params()
			if tc.faults != nil {
				p.Faults = tc.faults
				// bob's 503 and lost request need the database fault; they are not the point here.
				ops = without(ops, bob)
			}
			p.Restarts = tc.restarts
			want := map[Rule]int{}
			if len(tc.breaches) > 0 {
				want[RuleContract] = len(tc.breaches)
			}
			res := judge(t, ops, rows, p, want)
			var pods []string
			for _, v := range res.Violations {
				if len(v.Findings) != 1 || v.Findings[0].Kind != KindRestart || v.Findings[0].Line != ContractNoRestart ||
					v.Customer != (history.Customer{}) || len(v.Pods) != 1 || !strings.Contains(v.Details[0], v.Pods[0]) {
					t.Errorf("violation %+v: want one restart finding of line %s about the run, naming its pod", v, ContractNoRestart)
				}
				pods = append(pods, v.Pods...)
			}
			if !slices.Equal(pods, tc.breaches) {
				t.Errorf("restart breaches name %v, want %v", pods, tc.breaches)
			}
		})
	}
}

// TestRestartsSaved: judge.json keeps the restarts, and one saved before the suite looked for
// them (no restarts field) still loads, judged without them.
func TestRestartsSaved(t *testing.T) {
	p := params()
	p.Restarts = []Restart{{Pod: "pod-a", Change: RestartContainer, Container: "widgets", Count: 2, From: time.Second, To: time.Second}}
	b, err := json.Marshal(p.Save())
	if err != nil {
		t.Fatal(err)
	}
	var saved SavedParams
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	back, err := saved.Params(fixtureAPI)
	if err != nil || !slices.Equal(back.Restarts, p.Restarts) {
		t.Fatalf("restarts back %+v (%v), want %+v", back.Restarts, err, p.Restarts)
	}

	var old map[string]any
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	delete(old, "restarts")
	b, _ = json.Marshal(old)
	saved = SavedParams{}
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	if back, err := saved.Params(fixtureAPI); err != nil || back.Restarts != nil {
		t.Fatalf("an older judge.json: restarts %+v, %v; want none", back.Restarts, err)
	}
	if b, _ := json.Marshal(params().Save()); strings.Contains(string(b), "restarts") {
		t.Errorf("no restarts, yet judge.json names them: %s", b)
	}
}

// TestAbandonedLoserShapes: the histories of the self-test's loser-drops-connection and
// loser-exits mutants (service/mutants) under the burst scenario fail by RuleContract, their
// expected rule: the loser's missing answer, and for loser-exits the restart of its pod.
func TestAbandonedLoserShapes(t *testing.T) {
	ta := tokenFor(t, rowA, nil)
	winner := okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta)
	retried := ok(t, alice, 1, 1, "pod-a", 120, 130, ta)
	retried.Phase = history.PhaseRetry

	t.Run("loser-drops-connection", func(t *testing.T) {
		ops := []history.Op{winner, lost(alice, 1, 1, 9, 0, `Post "http://widgets:8080/v1/widgets": EOF`), retried}
		res := judge(t, ops, []Row{rowA}, atomicParams(t, nil), map[Rule]int{RuleContract: 1})
		if !res.Violations[0].HasKind(KindNoAnswer) {
			t.Errorf("violation %+v: want the loser's missing answer", res.Violations[0])
		}
	})
	t.Run("loser-exits", func(t *testing.T) {
		ops := []history.Op{winner, lost(alice, 1, 1, 9, 0, `Post "http://widgets:8080/v1/widgets": EOF`),
			lost(alice, 2, 2, 9, 0, "read: connection reset by peer"), retried}
		restarts := []Restart{{Pod: "pod-b", Change: RestartContainer, Container: "widgets", Count: 1, From: 0, To: time.Second, Reason: "Error, exit code 1"}}
		res := judge(t, ops, []Row{rowA}, atomicParams(t, restarts), map[Rule]int{RuleContract: 2})
		var kinds []Kind
		for _, v := range res.Violations {
			for _, f := range v.Findings {
				kinds = append(kinds, f.Kind)
			}
		}
		slices.Sort(kinds)
		if want := []Kind{KindNoAnswer, KindNoAnswer, KindRestart}; !slices.Equal(kinds, want) {
			t.Errorf("findings %v, want %v", kinds, want)
		}
	})
}

// atomicParams judge a history of the atomic strategy with no fault, and restarts.
func atomicParams(t *testing.T, restarts []Restart) Params {
	p := params()
	p.Contract, p.Faults, p.Restarts = contract(t, modeAtomic), nil, restarts
	p.Coverage = CoverageParams{}
	return p
}
