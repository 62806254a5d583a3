package check

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// declared is a fault event of name from 19 s to 21 s that declares excuses.
func declared(name string, excuses ...history.Excuse) history.Event {
	return history.Event{Kind: history.EventFault, Name: name, Target: "t", Start: 19 * time.Second, End: 21 * time.Second,
		Declared: true, Excuses: excuses}
}

var (
	dbDown = []history.Excuse{{Status: 503, Code: "unavailable"}, {Status: 503, Code: "overloaded"}}
	cutB   = []history.Excuse{{Status: 503, Code: "unavailable", Pods: []string{"pod-b"}}, {Status: 503, Code: "overloaded", Pods: []string{"pod-b"}}}
	killB  = history.Excuse{Status: 0, Pods: []string{"pod-b"}}
)

// TestFaultExcusesJudgePerFault: an answer during a fault is excused only by a fault that
// declares it, from the pods it names. Each case's third request of alice is 20 s into the run.
func TestFaultExcusesJudgePerFault(t *testing.T) {
	s := time.Second
	at := func(pod string, status int, body string, call time.Duration) history.Op {
		o := retryLater(op(alice, 2, 0, pod, 0, 0, status, body))
		o.Call, o.Return = call, call+3*time.Millisecond
		return o
	}
	for _, tc := range []struct {
		name  string
		third history.Op
		fault history.Event
		// clean is a 2xx of bob's after the fault, on its pod at its return (none if empty).
		cleanPod string
		cleanAt  time.Duration
		breach   bool
		why      string
	}{
		{name: "db-cut excuses 503 unavailable from any pod", third: at("pod-a", 503, unavailable, 20*s), fault: declared("db-cut", dbDown...)},
		{name: "db-cut excuses 503 overloaded from any pod", third: at("pod-a", 503, overloaded, 20*s), fault: declared("db-cut", dbDown...)},
		{name: "scale excuses nothing (ready-before-pool's shape: a new replica's 503)", third: at("pod-c", 503, unavailable, 20*s),
			fault: declared("scale"), breach: true, why: "during scale, whose declared excuses do not include 503 unavailable from pod \"pod-c\""},
		{name: "rolling-restart excuses nothing", third: at("pod-a", 503, unavailable, 20*s), fault: declared("rolling-restart"), breach: true},
		{name: "pod-kill excuses no 503", third: at("pod-b", 503, unavailable, 20*s), fault: declared("pod-kill", killB), breach: true},
		{name: "partition excuses the cut pod's 503", third: at("pod-b", 503, unavailable, 20*s), fault: declared("partition", cutB...)},
		{name: "partition excuses no other pod's 503", third: at("pod-a", 503, unavailable, 20*s), fault: declared("partition", cutB...), breach: true},
		{name: "before the tail's end: first clean answer plus the bound", third: at("pod-a", 503, unavailable, 25*s),
			fault: declared("db-restart", dbDown...), cleanPod: "pod-a", cleanAt: 22 * s},
		{name: "after the first clean answer plus the bound", third: at("pod-a", 503, unavailable, 28*s),
			fault: declared("db-restart", dbDown...), cleanPod: "pod-a", cleanAt: 22 * s, breach: true, why: "outside every fault window"},
		{name: "a pod that never answered clean closes with the first of any pod", third: at("pod-c", 503, unavailable, 28*s),
			fault: declared("db-restart", dbDown...), cleanPod: "pod-a", cleanAt: 22 * s, breach: true},
		{name: "a pod that answered clean late keeps its own tail", third: at("pod-a", 503, unavailable, 28*s),
			fault: declared("db-restart", dbDown...), cleanPod: "pod-a", cleanAt: 24 * s},
		{name: "no clean answer after the fault: the constant tail", third: at("pod-a", 503, unavailable, 30*s),
			fault: declared("db-restart", dbDown...)},
		{name: "no clean answer after the fault, past the constant tail", third: at("pod-a", 503, unavailable, 32*s),
			fault: declared("db-restart", dbDown...), breach: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.Contract, p.Faults = contract(t, modeAtomic), []history.Event{tc.fault}
			ops, rows := raceFor(t, tc.third), []Row{rowA}
			if tc.cleanPod != "" {
				ops = append(ops, okCreated(t, bob, 0, 0, tc.cleanPod, 0, 0, tokenFor(t, rowB, nil)))
				ops[len(ops)-1].Call, ops[len(ops)-1].Return = tc.cleanAt-time.Millisecond, tc.cleanAt
				rows = append(rows, rowB)
			}
			want := map[Rule]int{}
			if tc.breach {
				want[RuleContract] = 1
			}
			res := judge(t, ops, rows, p, want)
			if t.Failed() {
				return
			}
			if tc.why != "" && !strings.Contains(res.Violations[0].Details[0], tc.why) {
				t.Errorf("detail %q, want it to say %q", res.Violations[0].Details[0], tc.why)
			}
			if len(res.FaultTails) != 1 || res.FaultTails[0].Fault != tc.fault.Name {
				t.Fatalf("fault tails %+v, want one for %s", res.FaultTails, tc.fault.Name)
			}
			if ft := res.FaultTails[0]; ft.Measured != (tc.cleanPod != "") {
				t.Errorf("tail %+v: measured %v, want %v", ft, ft.Measured, tc.cleanPod != "")
			}
		})
	}
}

func TestFaultTailMeasured(t *testing.T) {
	s := time.Second
	ops := []history.Op{
		{Customer: bob, Call: 20 * s, Return: 22 * s, Status: 200, Pod: "pod-a"},
		{Customer: bob, Call: 21 * s, Return: 23 * s, Status: 200, Pod: "pod-b"},
		{Customer: bob, Call: 21 * s, Return: 30 * s, Status: 503, Pod: "pod-c"},
	}
	old := history.Event{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}
	f := newFaultWindows([]history.Event{declared("db-cut", dbDown...), old}, ops, DefaultFaultTail)
	got := f.tails()
	want := []FaultTail{
		{Fault: "db-cut", Target: "t", End: 21 * s, Clean: 22 * s, Tail: 23*s + FaultTailBound - 21*s, Measured: true},
		{Fault: "db-cut", End: 21 * s, Tail: DefaultFaultTail},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("tails %+v, want %+v", got, want)
	}
	if s := got[0].String(); !strings.Contains(s, "first clean answer 1s after its end") {
		t.Errorf("String() = %q", s)
	}
}

// TestExcusesConnectionErrors: excuses(op, 0, "") is what a rule judging unknown outcomes asks.
func TestExcusesConnectionErrors(t *testing.T) {
	s := time.Second
	lostAt := func(pod string, call, ret time.Duration) *history.Op {
		return &history.Op{Customer: alice, Call: call, Return: ret, Pod: pod, Error: "connection reset by peer"}
	}
	f := newFaultWindows([]history.Event{declared("pod-kill", killB)}, nil, DefaultFaultTail)
	scale := newFaultWindows([]history.Event{declared("scale")}, nil, DefaultFaultTail)
	old := newFaultWindows([]history.Event{{Kind: history.EventFault, Name: "scale", Start: 19 * s, End: 21 * s}}, nil, DefaultFaultTail)
	for _, tc := range []struct {
		name string
		f    faultWindows
		op   *history.Op
		want bool
	}{
		{"pod-kill: to the killed pod", f, lostAt("pod-b", 20*s, 20*s), true},
		{"pod-kill: no pod known (the client cannot tell)", f, lostAt("", 20*s, 20*s), true},
		{"pod-kill: never returned, called during it", f, lostAt("", 20*s, 0), true},
		{"pod-kill: to another pod", f, lostAt("pod-a", 20*s, 20*s), false},
		{"pod-kill: before it", f, lostAt("", 10*s, 11*s), false},
		{"pod-kill: after its constant tail", f, lostAt("", 40*s, 41*s), false},
		{"scale: nothing", scale, lostAt("", 20*s, 20*s), false},
		{"an old, undeclared event: as judged then", old, lostAt("", 20*s, 20*s), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := tc.f.excuses(tc.op, 0, "")
			if ok != tc.want || (ok && e.Name == "") {
				t.Errorf("excuses = %+v, %v; want %v", e, ok, tc.want)
			}
			if _, ok := tc.f.excuses(tc.op, 503, "unavailable"); ok && tc.f.windows[0].Declared {
				t.Errorf("a 503 excused by %s, which declares none", tc.f.windows[0].Name)
			}
		})
	}
}

// TestFailFastConflictNeedsARival: fail-fast's 409 blames a concurrent registration of the same
// customer; without one it is a breach (conflict-without-race's shape).
func TestFailFastConflictNeedsARival(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name   string
		third  history.Op
		breach bool
	}{
		{name: "overlapping own-key requests on other pods", third: retryLater(op(alice, 2, 0, "pod-a", 2, 5, 409, conflict))},
		{name: "alone, 20 s after the burst", breach: true, third: func() history.Op {
			o := retryLater(op(alice, 2, 0, "pod-a", 0, 0, 409, conflict))
			o.Call, o.Return = 20*s, 20*s+3*time.Millisecond
			return o
		}()},
		{name: "its only overlap carries another tenant's key", breach: true,
			third: retryLater(op(alice, 2, 0, "pod-a", 11, 15, 409, conflict))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.Contract, p.Faults = contract(t, modeFailFast), nil
			ops := raceFor(t, tc.third)
			ops = append(ops, withKey(op(alice, 3, 0, "pod-b", 12, 14, 403, `{"error":"forbidden","message":"no"}`), bob.Tenant))
			want := map[Rule]int{}
			if tc.breach {
				want[RuleContract] = 1
			}
			res := judge(t, ops, []Row{rowA}, p, want)
			if t.Failed() {
				return
			}
			if tc.breach && res.Violations[0].Findings[0].Line != "conflict-retry-after" {
				t.Errorf("finding %+v, want line conflict-retry-after", res.Violations[0].Findings[0])
			}
		})
	}
}

// TestSavedRunsRejudgeTheirFaults: judge.json keeps each fault's declaration, so that a saved
// run is judged as it was live; a file saved before faults declared theirs judges as then.
func TestSavedRunsRejudgeTheirFaults(t *testing.T) {
	third := retryLater(op(alice, 2, 0, "pod-c", 0, 0, 503, unavailable))
	third.Call, third.Return = 20*time.Second, 20*time.Second+time.Millisecond
	ops := raceFor(t, third)
	for _, tc := range []struct {
		name  string
		fault history.Event
		want  int
	}{
		{"a declared scale excuses no 503", declared("scale"), 1},
		{"an old scale event excuses it, as it did", history.Event{Kind: history.EventFault, Name: "scale", Start: 19 * time.Second, End: 21 * time.Second}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.Contract, p.Faults = contract(t, modeAtomic), []history.Event{tc.fault}
			b, err := json.Marshal(p.Save())
			if err != nil {
				t.Fatal(err)
			}
			var saved SavedParams
			if err := json.Unmarshal(b, &saved); err != nil {
				t.Fatal(err)
			}
			q, err := saved.Params(fixtureAPI)
			if err != nil {
				t.Fatal(err)
			}
			q.Base = p.Base
			res, err := Check(ops, []Row{rowA}, q)
			if err != nil {
				t.Fatal(err)
			}
			if res.Counts[RuleContract] != tc.want {
				t.Errorf("contract breaches %d, want %d (faults %+v)", res.Counts[RuleContract], tc.want, q.Faults)
			}
		})
	}
}
