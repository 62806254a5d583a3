package check

import (
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// raceFor is alice's burst on two pods at once: one created=true, one created=false, and a
// third request answered by answer.
func raceFor(t *testing.T, third history.Op) []history.Op {
	ta := tokenFor(t, rowA, nil)
	return []history.Op{
		okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta),
		ok(t, alice, 1, 0, "pod-b", 1, 9, ta),
		third,
	}
}

func TestContract(t *testing.T) {
	s := time.Second
	late := func(o history.Op) history.Op { // alice's third request, 20 s into the run
		o.Call, o.Return = 20*s, 20*s+3*time.Millisecond
		return o
	}
	third := func(status int, body string) history.Op { return op(alice, 2, 0, "pod-a", 2, 5, status, body) }
	for _, tc := range []struct {
		name     string
		strategy string
		third    history.Op
		faults   []history.Event
		tail     time.Duration
		counts   map[Rule]int
		line     string
	}{
		{name: "atomic: 200 everywhere", strategy: modeAtomic, third: ok(t, alice, 2, 0, "pod-a", 2, 5, tokenFor(t, rowA, nil))},
		{name: "atomic: 409 is no answer of atomic", strategy: modeAtomic, third: retryLater(third(409, conflict)),
			counts: map[Rule]int{RuleContract: 1}, line: "200-outside-faults"},
		{name: "atomic: 500 empty_subject is never clean", strategy: modeAtomic, third: third(500, emptySubject),
			counts: map[Rule]int{RuleContract: 1}, line: "200-outside-faults"},
		{name: "atomic: 503 without a fault", strategy: modeAtomic, third: retryLater(third(503, unavailable)),
			counts: map[Rule]int{RuleContract: 1}, line: "unavailable-during-fault"},
		{name: "atomic: 503 inside a fault", strategy: modeAtomic, third: retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}}},
		{name: "atomic: 503 from a request in flight when the fault began", strategy: modeAtomic,
			third:  retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 20*s + time.Millisecond, End: 25 * s}}},
		{name: "atomic: 503 inside a fault that never ended", strategy: modeAtomic, third: retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "node-loss", Start: 5 * s}}},
		{name: "atomic: 503 within the tail after a fault", strategy: modeAtomic, third: retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-restart", Start: s, End: 15 * s}}},
		{name: "atomic: 503 after the tail", strategy: modeAtomic, third: retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-restart", Start: s, End: 15 * s}}, tail: 2 * s,
			counts: map[Rule]int{RuleContract: 1}, line: "unavailable-during-fault"},
		{name: "atomic: 503 before the fault", strategy: modeAtomic, third: retryLater(third(503, unavailable)),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}},
			counts: map[Rule]int{RuleContract: 1}, line: "unavailable-during-fault"},
		{name: "atomic: 503 inside a fault without Retry-After", strategy: modeAtomic, third: late(third(503, unavailable)),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}},
			counts: map[Rule]int{RuleContract: 1}, line: "unavailable-during-fault"},
		{name: "atomic: 503 overloaded inside a fault", strategy: modeAtomic, third: retryLater(late(third(503, overloaded))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}}},
		{name: "atomic: 503 overloaded without a fault", strategy: modeAtomic, third: retryLater(third(503, overloaded)),
			counts: map[Rule]int{RuleContract: 1}, line: "overloaded-during-fault"},
		{name: "atomic: 503 overloaded inside a fault without Retry-After", strategy: modeAtomic, third: late(third(503, overloaded)),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}},
			counts: map[Rule]int{RuleContract: 1}, line: "overloaded-during-fault"},
		{name: "fail-fast: 503 overloaded inside a fault", strategy: modeFailFast, third: retryLater(late(third(503, overloaded))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}}},
		{name: "atomic: 500 internal is not clean at all", strategy: modeAtomic, third: third(500, `{"error":"internal","message":"internal error"}`),
			counts: map[Rule]int{RuleCleanError: 1}},
		{name: "fail-fast: 409 with Retry-After", strategy: modeFailFast, third: retryLater(third(409, conflict))},
		{name: "fail-fast: 409 without Retry-After", strategy: modeFailFast, third: third(409, conflict),
			counts: map[Rule]int{RuleContract: 1}, line: "conflict-retry-after"},
		{name: "fail-fast: 500 empty_subject is never clean", strategy: modeFailFast, third: third(500, emptySubject),
			counts: map[Rule]int{RuleContract: 1}, line: "200-or-conflict"},
		{name: "return-existing: 500 empty_subject is its refusal", strategy: modeReturnExisting, third: third(500, emptySubject)},
		{name: "return-existing: 409 is no answer of it", strategy: modeReturnExisting, third: retryLater(third(409, conflict)),
			counts: map[Rule]int{RuleContract: 1}, line: "200-outside-faults"},
		{name: "legacy: 500 empty_subject is no answer of legacy", strategy: modeLegacy, third: third(500, emptySubject),
			counts: map[Rule]int{RuleContract: 1}, line: "200-outside-faults"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.Contract, p.Faults = contract(t, tc.strategy), tc.faults
			p.Contract.FaultTail = tc.tail
			res, err := Check(raceFor(t, tc.third), []Row{rowA}, p)
			if err != nil {
				t.Fatal(err)
			}
			if tc.counts == nil {
				tc.counts = map[Rule]int{}
			}
			if !maps.Equal(res.Counts, tc.counts) {
				var b strings.Builder
				_ = res.WriteText(&b)
				t.Fatalf("counts %v, want %v\n%s", res.Counts, tc.counts, b.String())
			}
			if tc.line == "" {
				return
			}
			v := res.Violations[0]
			if len(v.Findings) != 1 || v.Findings[0].Kind != KindContractBreach || v.Findings[0].Line != tc.line ||
				v.Findings[0].Request != "0/2/0" || !strings.Contains(v.Details[0], tc.line) {
				t.Errorf("violation %+v: want one contract breach of line %s by 0/2/0, named in its detail", v, tc.line)
			}
		})
	}
}

func TestCheckRequiresAContract(t *testing.T) {
	ops, rows := goodHistory(t)
	p := params()
	p.Contract = Contract{}
	if _, err := Check(ops, rows, p); err == nil || !strings.Contains(err.Error(), "contract") {
		t.Errorf("Check without a contract: %v, want an error naming it", err)
	}
	if _, err := fixtureAPI.Contract("optimistic"); err == nil {
		t.Errorf("the contract of an unknown mode: no error")
	}
	for _, s := range []string{modeLegacy, modeReturnExisting, modeFailFast, modeAtomic} {
		if c := contract(t, s); c.Strategy != s || c.Promise.ID == "" || len(c.Lines) == 0 {
			t.Errorf("contract(%s) = %+v", s, c)
		}
	}
}

// TestContractOf: a mode's contract has a line per clean error of a class it lists, named from
// its code and when it is allowed unless the mode names it; an error never clean gets none, and
// a name for an answer the mode cannot give is refused.
func TestContractOf(t *testing.T) {
	api := API{Target: "shop", Errors: []ErrorPromise{
		{Promise: Promise{Outcome: "busy", Status: 409, RetryAfter: true}, Class: "in-progress", Clean: true},
		{Promise: Promise{Outcome: "down", Status: 503, RetryAfter: true}, Class: "unavailable", Clean: true},
		{Promise: Promise{Outcome: "gone", Status: 410}, Class: "internal", Clean: true},
		{Promise: Promise{Outcome: "oops", Status: 500}, Class: "internal", Clean: false},
		{Promise: Promise{Outcome: "bad", Status: 400}, Class: "invalid"},
	}}
	m := target.Mode{Name: "safe", Contract: target.Contract{FaultOnly: []string{"unavailable"}, RivalOnly: []string{"in-progress"},
		Always: []string{"internal"}, Lines: []target.CodeLineName{{Code: "gone", ID: "gone-for-good"}}}}
	got, err := ContractOf(&api, &m)
	if err != nil {
		t.Fatal(err)
	}
	want := Contract{Strategy: "safe",
		Promise: ContractLine{ID: "no-other-error", Doc: "safe answers a valid request with a success or an error its contract lists"},
		Lines: []ContractLine{
			{ID: "busy-to-a-rival", Status: 409, Code: "busy", RetryAfter: true, Rival: true,
				Doc: "409 busy with Retry-After, only to a request that overlapped another of the same key"},
			{ID: "down-during-fault", Status: 503, Code: "down", RetryAfter: true, DuringFault: true,
				Doc: "503 down with Retry-After, only while a fault that declares it is on (or within its tail), from the pods it names"},
			{ID: "gone-for-good", Status: 410, Code: "gone", Doc: "410 gone, at any time"},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("contract\n%+v\nwant\n%+v", got, want)
	}
	m.Contract.Promise = &target.LineName{ID: "no-errors", Doc: "safe never errs"}
	if got, err := ContractOf(&api, &m); err != nil || got.Promise != (ContractLine{ID: "no-errors", Doc: "safe never errs"}) {
		t.Errorf("named promise %+v (%v)", got.Promise, err)
	}
	m.Contract.Lines = append(m.Contract.Lines, target.CodeLineName{Code: "oops", ID: "allowed"})
	if _, err := ContractOf(&api, &m); err == nil || !strings.Contains(err.Error(), "lines named for oops") {
		t.Errorf("a line named for an answer never clean: %v, want it refused", err)
	}
}
