package check

import (
	"fmt"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// DefaultFaultTail is how long after a fault's end its errors are still accepted when a Contract
// sets no FaultTail: twice the service's default request timeout (5 s), so that a request that
// was waiting on the database when the fault ended, and the pool's reconnect after it, are
// covered.
const DefaultFaultTail = 10 * time.Second

// ContractLine is one non-2xx answer a strategy may give to a valid POST /v1/tokens, and when.
type ContractLine struct {
	// ID names the line in findings, such as "unavailable-during-fault".
	ID     string `json:"id"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	// RetryAfter requires the response to carry a Retry-After header.
	RetryAfter bool `json:"retry_after,omitempty"`
	// DuringFault accepts the answer only from a request in flight inside a fault window or
	// the Contract's FaultTail after it.
	DuringFault bool `json:"during_fault,omitempty"`
	// Doc says the promise in a sentence, for reports.
	Doc string `json:"doc"`
}

// Contract is what one create strategy promises a client of POST /v1/tokens
// (service/README.md), beyond the rules every strategy shares: which non-2xx answers it may
// give and when. A clean error that no line allows breaks RuleContract and the contract's
// Promise; one that matches a line but not its condition (outside a fault, no Retry-After)
// breaks that line.
type Contract struct {
	// Strategy is the service's create strategy, such as atomic.
	Strategy string `json:"strategy"`
	// Promise is the line broken by a non-2xx answer that no Line allows.
	Promise ContractLine `json:"promise"`
	// Lines are the non-2xx answers the strategy may give.
	Lines []ContractLine `json:"lines"`
	// FaultTail is how long after a fault's end DuringFault lines still apply
	// (DefaultFaultTail if zero).
	FaultTail time.Duration `json:"fault_tail_ns"`
}

// The strategies of the token service, as TOKENSVC_CREATE_STRATEGY names them.
const (
	StrategyLegacy         = "legacy"
	StrategyReturnExisting = "return-existing"
	StrategyFailFast       = "fail-fast"
	StrategyAtomic         = "atomic"
)

// unavailableDuringFault is the line every strategy shares: the database was unreachable or too
// slow. A draining pod still serves tokens (only its /readyz turns 503), so outside a fault
// nothing excuses a 503.
var unavailableDuringFault = ContractLine{ID: "unavailable-during-fault", Status: 503, Code: "unavailable",
	RetryAfter: true, DuringFault: true,
	Doc: "503 unavailable with Retry-After, only while a fault is on or within the tail after it"}

// overloadedDuringFault is the other line every strategy shares: a replica sheds a registration
// beyond TOKENSVC_MAX_IN_FLIGHT at once, without reading or writing. Requests pile up only while
// the database is slow or unreachable (they wait for it up to their timeouts), so a fault
// excuses it; the suite's traffic outside a fault never fills the cap, and a shed request there
// says the service has become slow.
var overloadedDuringFault = ContractLine{ID: "overloaded-during-fault", Status: 503, Code: "overloaded",
	RetryAfter: true, DuringFault: true,
	Doc: "503 overloaded with Retry-After (the in-flight cap), only while a fault is on or within the tail after it"}

// contracts are the promises of service/README.md, one per strategy.
var contracts = map[string]Contract{
	StrategyAtomic: {
		Strategy: StrategyAtomic,
		Promise:  ContractLine{ID: "200-outside-faults", Doc: "atomic answers 200 to every valid request while no fault is on"},
		Lines:    []ContractLine{unavailableDuringFault, overloadedDuringFault},
	},
	StrategyFailFast: {
		Strategy: StrategyFailFast,
		Promise:  ContractLine{ID: "200-or-conflict", Doc: "fail-fast answers 200, or 409 to the loser of a concurrent registration; never 500"},
		Lines: []ContractLine{
			{ID: "conflict-retry-after", Status: 409, Code: "conflict", RetryAfter: true,
				Doc: "409 conflict with Retry-After: a concurrent request is creating the same customer"},
			unavailableDuringFault,
			overloadedDuringFault,
		},
	},
	StrategyReturnExisting: {
		Strategy: StrategyReturnExisting,
		Promise:  ContractLine{ID: "200-outside-faults", Doc: "return-existing answers 200 while no fault is on; its bug is duplicate rows, not errors"},
		Lines: []ContractLine{
			{ID: "empty-subject-refused", Status: 500, Code: "empty_subject",
				Doc: "500 empty_subject: create() yielded no customer and the handler refused to sign"},
			unavailableDuringFault,
			overloadedDuringFault,
		},
	},
	StrategyLegacy: {
		Strategy: StrategyLegacy,
		Promise:  ContractLine{ID: "200-outside-faults", Doc: "legacy answers 200 while no fault is on; it signs even a null customer"},
		Lines:    []ContractLine{unavailableDuringFault, overloadedDuringFault},
	},
}

// ContractFor returns the contract of strategy, or an error for a strategy the service does
// not have.
func ContractFor(strategy string) (Contract, error) {
	c, ok := contracts[strategy]
	if !ok {
		return Contract{}, fmt.Errorf("no contract for strategy %q (want %s, %s, %s or %s)", strategy,
			StrategyLegacy, StrategyReturnExisting, StrategyFailFast, StrategyAtomic)
	}
	c.Lines = append([]ContractLine(nil), c.Lines...)
	return c, nil
}

// faultWindows decides whether a request was in flight during a fault or its tail.
type faultWindows struct {
	events []history.Event
	tail   time.Duration
}

// covers reports whether op's call/return interval meets a fault's window extended by the tail,
// and returns that event.
func (f faultWindows) covers(op *history.Op) (history.Event, bool) {
	for _, e := range f.events {
		if op.Return >= e.Start && (!e.Ended() || op.Call <= e.End+f.tail) {
			return e, true
		}
	}
	return history.Event{}, false
}

// contains reports whether t lies inside a fault's window extended by the tail.
func (f faultWindows) contains(t time.Duration) bool {
	for _, e := range f.events {
		if t >= e.Start && (!e.Ended() || t <= e.End+f.tail) {
			return true
		}
	}
	return false
}

// judgeContract returns the line a clean error breaks and why, or ok.
func (c Contract) judge(op *history.Op, code string, faults faultWindows) (line ContractLine, why string, ok bool) {
	for _, l := range c.Lines {
		if l.Status != op.Status || l.Code != code {
			continue
		}
		var problems []string
		if l.RetryAfter && op.RetryAfter == "" {
			problems = append(problems, "no Retry-After")
		}
		if l.DuringFault {
			if _, in := faults.covers(op); !in {
				problems = append(problems, fmt.Sprintf("outside every fault window (tail %s)", faults.tail))
			}
		}
		if len(problems) == 0 {
			return l, "", true
		}
		return l, strings.Join(problems, ", "), false
	}
	return c.Promise, fmt.Sprintf("%d %s is not an answer %s gives", op.Status, code, c.Strategy), false
}
