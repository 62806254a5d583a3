package check

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// DefaultFaultTail is how long after a fault's end its errors are still accepted when the fault
// declared no excuses (a run saved before faults did) or no clean answer followed it, and the
// Contract sets no FaultTail: twice the service's default request timeout (5 s), so that a request that
// was waiting on the database when the fault ended, and the pool's reconnect after it, are
// covered.
const DefaultFaultTail = 10 * time.Second

// ContractLine is one non-2xx answer a strategy may give to a valid create request, and when.
type ContractLine struct {
	// ID names the line in findings, such as "unavailable-during-fault".
	ID     string `json:"id"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	// RetryAfter requires the response to carry a Retry-After header.
	RetryAfter bool `json:"retry_after,omitempty"`
	// DuringFault accepts the answer only from a request in flight inside the window of a
	// fault that declares it (history.Event.Excuses) from the request's pod, or the fault's
	// tail after it.
	DuringFault bool `json:"during_fault,omitempty"`
	// Rival accepts the answer only from a request that overlapped another request of the
	// same customer with its own tenant's key (on any pod): the concurrent registration the
	// answer blames.
	Rival bool `json:"rival,omitempty"`
	// Doc says the promise in a sentence, for reports.
	Doc string `json:"doc"`
}

// Contract is what one create strategy promises a client of its create request
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
	// FaultTail is how long after a fault's end DuringFault lines still apply when the fault
	// declared no excuses or no clean answer followed it (DefaultFaultTail if zero); a
	// declared fault's tail is measured (FaultTail type).
	FaultTail time.Duration `json:"fault_tail_ns"`
}

// The strategies of the token service, by the names its creation-strategy setting takes: the
// modes whose contracts the checker knows.
const (
	StrategyLegacy         = "legacy"
	StrategyReturnExisting = "return-existing"
	StrategyFailFast       = "fail-fast"
	StrategyAtomic         = "atomic"
)

// unavailableDuringFault is the line every strategy shares: the database was unreachable or too
// slow. A draining pod still serves tokens (only its /readyz turns 503), so only a fault that
// declares it (on the database or its path) excuses a 503, from the pods it names.
var unavailableDuringFault = ContractLine{ID: "unavailable-during-fault", Status: 503, Code: "unavailable",
	RetryAfter: true, DuringFault: true,
	Doc: "503 unavailable with Retry-After, only while a fault that declares it is on (or within its tail), from the pods it names"}

// overloadedDuringFault is the other line every strategy shares: a replica sheds a registration
// beyond its configured cap on registrations in flight at once, without reading or writing. Requests pile up only while
// the database is slow or unreachable (they wait for it up to their timeouts), so a fault
// excuses it; the suite's traffic outside a fault never fills the cap, and a shed request there
// says the service has become slow.
var overloadedDuringFault = ContractLine{ID: "overloaded-during-fault", Status: 503, Code: "overloaded",
	RetryAfter: true, DuringFault: true,
	Doc: "503 overloaded with Retry-After (the in-flight cap), only while a fault that declares it is on (or within its tail), from the pods it names"}

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
			{ID: "conflict-retry-after", Status: 409, Code: "conflict", RetryAfter: true, Rival: true,
				Doc: "409 conflict with Retry-After: a concurrent request of the same customer is creating it"},
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

// FaultTailBound is how long after the first clean answer that follows a fault's end the
// fault's declared answers are still excused: the service's request timeout (5 s), so that a
// request sent just after the path came back, which picked a connection the pool still held
// from before the fault, is covered too.
const FaultTailBound = 5 * time.Second

// FaultTail is how long one fault's answers were excused after its end, as the run measured it:
// the tail ends at the first clean answer after the fault's end (per pod: that pod's, or the
// first of any pod when the pod gave none) plus FaultTailBound. A fault saved before faults
// declared their excuses keeps the Contract's constant tail.
type FaultTail struct {
	Fault  string `json:"fault"`
	Target string `json:"target,omitempty"`
	// End is the fault's end; Clean the return of the first 2xx (any pod) after it, zero when
	// none came.
	End   time.Duration `json:"end_ns"`
	Clean time.Duration `json:"clean_ns,omitempty"`
	// Tail is from End to the latest moment any pod's answers were still excused.
	Tail time.Duration `json:"tail_ns"`
	// Measured says the tail came from a clean answer; otherwise it is the constant
	// (DefaultFaultTail, or the Contract's), for an old run or a run that never answered clean.
	Measured bool `json:"measured"`
}

// String formats t for reports.
func (t FaultTail) String() string {
	if !t.Measured {
		return fmt.Sprintf("%s: tail %s (constant)", t.Fault, t.Tail.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s: first clean answer %s after its end, tail %s (bound %s)", t.Fault,
		(t.Clean - t.End).Round(time.Millisecond), t.Tail.Round(time.Millisecond), FaultTailBound)
}

// faultWindow is one fault and when its window closes.
type faultWindow struct {
	history.Event
	// close is when the window closes for a pod not in closeFor; closeFor, per pod that
	// answered clean after the fault's end.
	close    time.Duration
	closeFor map[string]time.Duration
	tail     FaultTail
}

// closes returns when the window closes for answers from pod.
func (w *faultWindow) closes(pod string) time.Duration {
	if c, ok := w.closeFor[pod]; ok {
		return c
	}
	return w.close
}

// latest is the latest moment the window is open for any pod.
func (w *faultWindow) latest() time.Duration {
	l := w.close
	for _, c := range w.closeFor {
		l = max(l, c)
	}
	return l
}

// faultWindows decides whether a request was in flight during a fault or its tail, and whether
// that fault excuses its answer.
type faultWindows struct {
	windows []faultWindow
	// tail is the constant tail of the events that declared nothing (Contract.FaultTail).
	tail time.Duration
}

// newFaultWindows measures each fault's tail over ops: a declared fault's window closes, for
// each pod, at the first 2xx that pod returned after the fault's end (or the first any pod
// returned, when it returned none) plus FaultTailBound; with no 2xx after the end at all, at
// the constant tail. An undeclared (older) fault keeps the constant tail.
func newFaultWindows(events []history.Event, ops []history.Op, tail time.Duration) faultWindows {
	f := faultWindows{windows: make([]faultWindow, len(events)), tail: tail}
	for i, e := range events {
		w := faultWindow{Event: e, close: e.End + tail}
		w.tail = FaultTail{Fault: e.Name, Target: e.Target, End: e.End, Tail: tail}
		if e.Declared && e.Ended() {
			first, byPod := firstCleanAfter(ops, e.End)
			if first > 0 {
				w.close = first + FaultTailBound
				w.closeFor = make(map[string]time.Duration, len(byPod))
				for pod, t := range byPod {
					w.closeFor[pod] = t + FaultTailBound
				}
				w.tail.Clean, w.tail.Measured = first, true
				w.tail.Tail = w.latest() - e.End
			}
		}
		f.windows[i] = w
	}
	return f
}

// firstCleanAfter returns the earliest return of a 2xx at or after end, and each pod's.
func firstCleanAfter(ops []history.Op, end time.Duration) (time.Duration, map[string]time.Duration) {
	var (
		first time.Duration
		byPod = map[string]time.Duration{}
	)
	for i := range ops {
		op := &ops[i]
		if op.Return < end || !op.Succeeded() {
			continue
		}
		if first == 0 || op.Return < first {
			first = op.Return
		}
		if t, ok := byPod[op.Pod]; op.Pod != "" && (!ok || op.Return < t) {
			byPod[op.Pod] = op.Return
		}
	}
	return first, byPod
}

// meets reports whether op's call/return interval meets w's window, as it is open for op's pod.
// An op that never returned meets every window open at or after its call.
func (w *faultWindow) meets(op *history.Op) bool {
	if op.Return != 0 && op.Return < w.Start {
		return false
	}
	return !w.Ended() || op.Call <= w.closes(op.Pod)
}

// covers reports whether op's call/return interval meets a fault's window extended by its tail,
// and returns that event.
func (f faultWindows) covers(op *history.Op) (history.Event, bool) {
	for i := range f.windows {
		if f.windows[i].meets(op) {
			return f.windows[i].Event, true
		}
	}
	return history.Event{}, false
}

// excuses reports whether a fault whose window op met declares the answer (status, code) from
// op's pod, and returns that fault's event. Status 0 is a connection error: no answer arrived
// (code empty); such an op names no pod, so an excuse for some pods only accepts it when op's
// pod is unknown, as the client cannot tell which pod it lost. A fault saved before faults
// declared their excuses excuses any answer from any pod, as it did when it was judged.
func (f faultWindows) excuses(op *history.Op, status int, code string) (history.Event, bool) {
	for i := range f.windows {
		w := &f.windows[i]
		if !w.meets(op) {
			continue
		}
		if !w.Declared {
			return w.Event, true
		}
		for _, x := range w.Excuses {
			if x.Status == status && x.Code == code &&
				(len(x.Pods) == 0 || slices.Contains(x.Pods, op.Pod) || (status == 0 && op.Pod == "")) {
				return w.Event, true
			}
		}
	}
	return history.Event{}, false
}

// contains reports whether t lies inside a fault's window extended by its tail (for any pod).
func (f faultWindows) contains(t time.Duration) bool {
	for i := range f.windows {
		w := &f.windows[i]
		if t >= w.Start && (!w.Ended() || t <= w.latest()) {
			return true
		}
	}
	return false
}

// tails returns each fault's measured tail, in the order of the events.
func (f faultWindows) tails() []FaultTail {
	out := make([]FaultTail, len(f.windows))
	for i := range f.windows {
		out[i] = f.windows[i].tail
	}
	return out
}

// judge returns the line a clean error breaks and why, or ok. rival reports whether another
// request of op's customer, with its own tenant's key, was in flight with it.
func (c Contract) judge(op *history.Op, code string, faults faultWindows, rival func(*history.Op) bool) (line ContractLine, why string, ok bool) {
	for _, l := range c.Lines {
		if l.Status != op.Status || l.Code != code {
			continue
		}
		var problems []string
		if l.RetryAfter && op.RetryAfter == "" {
			problems = append(problems, "no Retry-After")
		}
		if l.DuringFault {
			if _, ok := faults.excuses(op, op.Status, code); !ok {
				problems = append(problems, faults.why(op, code))
			}
		}
		if l.Rival && !rival(op) {
			problems = append(problems, "no other request of the same customer with its own tenant's key was in flight")
		}
		if len(problems) == 0 {
			return l, "", true
		}
		return l, strings.Join(problems, ", "), false
	}
	return c.Promise, fmt.Sprintf("%d %s is not an answer %s gives", op.Status, code, c.Strategy), false
}

// why says why no fault excuses op's answer: outside every window, or inside windows whose
// faults do not declare it from op's pod.
func (f faultWindows) why(op *history.Op, code string) string {
	var in []string
	for i := range f.windows {
		if f.windows[i].meets(op) {
			in = append(in, f.windows[i].Name)
		}
	}
	if len(in) == 0 {
		return "outside every fault window and its tail"
	}
	return fmt.Sprintf("during %s, whose declared excuses do not include %d %s from pod %q", strings.Join(in, ", "), op.Status, code, op.Pod)
}
