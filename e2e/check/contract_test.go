package check

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
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
		{name: "atomic: 200 everywhere", strategy: StrategyAtomic, third: ok(t, alice, 2, 0, "pod-a", 2, 5, tokenFor(t, rowA, nil))},
		{name: "atomic: 409 is no answer of atomic", strategy: StrategyAtomic, third: retryLater(third(409, conflict)),
			counts: map[Rule]int{RuleContract: 1}, line: "200-outside-faults"},
		{name: "atomic: 500 empty_subject is never clean", strategy: StrategyAtomic, third: third(500, emptySubject),
			counts: map[Rule]int{RuleContract: 1}, line: "200-outside-faults"},
		{name: "atomic: 503 without a fault", strategy: StrategyAtomic, third: retryLater(third(503, unavailable)),
			counts: map[Rule]int{RuleContract: 1}, line: "unavailable-during-fault"},
		{name: "atomic: 503 inside a fault", strategy: StrategyAtomic, third: retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}}},
		{name: "atomic: 503 from a request in flight when the fault began", strategy: StrategyAtomic,
			third:  retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 20*s + time.Millisecond, End: 25 * s}}},
		{name: "atomic: 503 inside a fault that never ended", strategy: StrategyAtomic, third: retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "node-loss", Start: 5 * s}}},
		{name: "atomic: 503 within the tail after a fault", strategy: StrategyAtomic, third: retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-restart", Start: s, End: 15 * s}}},
		{name: "atomic: 503 after the tail", strategy: StrategyAtomic, third: retryLater(late(third(503, unavailable))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-restart", Start: s, End: 15 * s}}, tail: 2 * s,
			counts: map[Rule]int{RuleContract: 1}, line: "unavailable-during-fault"},
		{name: "atomic: 503 before the fault", strategy: StrategyAtomic, third: retryLater(third(503, unavailable)),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}},
			counts: map[Rule]int{RuleContract: 1}, line: "unavailable-during-fault"},
		{name: "atomic: 503 inside a fault without Retry-After", strategy: StrategyAtomic, third: late(third(503, unavailable)),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}},
			counts: map[Rule]int{RuleContract: 1}, line: "unavailable-during-fault"},
		{name: "atomic: 503 overloaded inside a fault", strategy: StrategyAtomic, third: retryLater(late(third(503, overloaded))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}}},
		{name: "atomic: 503 overloaded without a fault", strategy: StrategyAtomic, third: retryLater(third(503, overloaded)),
			counts: map[Rule]int{RuleContract: 1}, line: "overloaded-during-fault"},
		{name: "atomic: 503 overloaded inside a fault without Retry-After", strategy: StrategyAtomic, third: late(third(503, overloaded)),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}},
			counts: map[Rule]int{RuleContract: 1}, line: "overloaded-during-fault"},
		{name: "fail-fast: 503 overloaded inside a fault", strategy: StrategyFailFast, third: retryLater(late(third(503, overloaded))),
			faults: []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 19 * s, End: 21 * s}}},
		{name: "atomic: 500 internal is not clean at all", strategy: StrategyAtomic, third: third(500, `{"error":"internal","message":"internal error"}`),
			counts: map[Rule]int{RuleCleanError: 1}},
		{name: "fail-fast: 409 with Retry-After", strategy: StrategyFailFast, third: retryLater(third(409, conflict))},
		{name: "fail-fast: 409 without Retry-After", strategy: StrategyFailFast, third: third(409, conflict),
			counts: map[Rule]int{RuleContract: 1}, line: "conflict-retry-after"},
		{name: "fail-fast: 500 empty_subject is never clean", strategy: StrategyFailFast, third: third(500, emptySubject),
			counts: map[Rule]int{RuleContract: 1}, line: "200-or-conflict"},
		{name: "return-existing: 500 empty_subject is its refusal", strategy: StrategyReturnExisting, third: third(500, emptySubject)},
		{name: "return-existing: 409 is no answer of it", strategy: StrategyReturnExisting, third: retryLater(third(409, conflict)),
			counts: map[Rule]int{RuleContract: 1}, line: "200-outside-faults"},
		{name: "legacy: 500 empty_subject is no answer of legacy", strategy: StrategyLegacy, third: third(500, emptySubject),
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
	if _, err := ContractFor("optimistic"); err == nil {
		t.Errorf("ContractFor of an unknown strategy: no error")
	}
	for _, s := range []string{StrategyLegacy, StrategyReturnExisting, StrategyFailFast, StrategyAtomic} {
		if c := contract(t, s); c.Strategy != s || c.Promise.ID == "" || len(c.Lines) == 0 {
			t.Errorf("ContractFor(%s) = %+v", s, c)
		}
	}
}
