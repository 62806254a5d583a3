package check

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// DefaultFaultTail is how long after a fault's end its errors are still accepted when the fault
// declared no excuses (a run saved before faults did) or no clean answer followed it, and the
// Contract sets no FaultTail: twice the service's default request timeout (5 s), so that a request that
// was waiting on the database when the fault ended, and the pool's reconnect after it, are
// covered.
const DefaultFaultTail = 10 * time.Second

// ContractLine is one non-2xx answer a mode may give to a valid create request, and when.
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
	// same key with its own tenant's credential (on any pod): the concurrent create the answer
	// blames.
	Rival bool `json:"rival,omitempty"`
	// Doc says the promise in a sentence, for reports.
	Doc string `json:"doc"`
}

// Contract is what one mode of the target promises a client of its create request (the mode's
// contract in the target file, ContractOf), beyond the rules every mode shares: which non-2xx
// answers it may give and when. A clean error that no line allows breaks RuleContract and the contract's
// Promise; one that matches a line but not its condition (outside a fault, no Retry-After)
// breaks that line.
type Contract struct {
	// Strategy is the mode's name (modes[].name of the target file), such as atomic.
	Strategy string `json:"strategy"`
	// Promise is the line broken by a non-2xx answer that no Line allows.
	Promise ContractLine `json:"promise"`
	// Lines are the non-2xx answers the mode may give.
	Lines []ContractLine `json:"lines"`
	// FaultTail is how long after a fault's end DuringFault lines still apply when the fault
	// declared no excuses or no clean answer followed it (DefaultFaultTail if zero); a
	// declared fault's tail is measured (FaultTail type).
	FaultTail time.Duration `json:"fault_tail_ns"`
}

// The IDs and docs of a contract's lines that the mode's target file leaves unnamed: each says
// when the mode may give the answer (target.Contract's lists).
const (
	faultOnlySuffix = "-during-fault"
	faultOnlyDoc    = ", only while a fault that declares it is on (or within its tail), from the pods it names"
	rivalOnlySuffix = "-to-a-rival"
	rivalOnlyDoc    = ", only to a request that overlapped another of the same key"
	alwaysDoc       = ", at any time"
	// defaultPromiseID names the promise of a mode whose target file does not.
	defaultPromiseID = "no-other-error"
)

// ContractOf derives the contract of mode m from the API's errors (a's Errors): a line for each
// clean error whose class m lists, with its status, code and Retry-After, allowed only during a
// fault that declares it (faultOnly), only to a request that overlapped a rival (rivalOnly), or
// at any time (always). Lines and the promise are named as m names them, otherwise from their
// code and condition.
func ContractOf(a *API, m *target.Mode) (Contract, error) {
	mc := &m.Contract
	c := Contract{Strategy: m.Name, Promise: ContractLine{ID: defaultPromiseID,
		Doc: fmt.Sprintf("%s answers a valid request with a success or an error its contract lists", m.Name)}}
	if p := mc.Promise; p != nil {
		c.Promise = ContractLine{ID: p.ID, Doc: p.Doc}
	}
	names := make(map[string]target.CodeLineName, len(mc.Lines))
	for _, n := range mc.Lines {
		names[n.Code] = n
	}
	named := map[string]bool{}
	for _, e := range a.Errors {
		l := ContractLine{ID: e.Outcome, Status: e.Status, Code: e.Outcome, RetryAfter: e.RetryAfter}
		doc := alwaysDoc
		switch {
		case slices.Contains(mc.FaultOnly, e.Class):
			l.DuringFault, l.ID, doc = true, e.Outcome+faultOnlySuffix, faultOnlyDoc
		case slices.Contains(mc.RivalOnly, e.Class):
			l.Rival, l.ID, doc = true, e.Outcome+rivalOnlySuffix, rivalOnlyDoc
		case !slices.Contains(mc.Always, e.Class):
			continue
		}
		if !e.Clean {
			// An error never clean (a documented bug, another request's) is a dirty answer
			// whatever the mode lists: no line of the contract allows it.
			continue
		}
		if l.RetryAfter {
			doc = " with Retry-After" + doc
		}
		l.Doc = fmt.Sprintf("%d %s%s", l.Status, l.Code, doc)
		if n, ok := names[e.Outcome]; ok {
			l.ID, l.Doc = cmp.Or(n.ID, l.ID), cmp.Or(n.Doc, l.Doc)
			named[e.Outcome] = true
		}
		c.Lines = append(c.Lines, l)
	}
	maps.DeleteFunc(names, func(code string, _ target.CodeLineName) bool { return named[code] })
	if len(names) > 0 {
		return Contract{}, fmt.Errorf("contract of mode %s: lines named for %s, no clean answer of a class the mode lists",
			m.Name, strings.Join(slices.Sorted(maps.Keys(names)), ", "))
	}
	return c, nil
}

// Contract returns the contract of mode (Contracts), or an error naming the modes a has.
func (a *API) Contract(mode string) (Contract, error) {
	i := slices.IndexFunc(a.Contracts, func(c Contract) bool { return c.Strategy == mode })
	if i < 0 {
		modes := make([]string, len(a.Contracts))
		for j, c := range a.Contracts {
			modes[j] = c.Strategy
		}
		return Contract{}, fmt.Errorf("no contract for mode %q of %s (its modes: %s)", mode, a.Target, strings.Join(modes, ", "))
	}
	c := a.Contracts[i]
	c.Lines = slices.Clone(c.Lines)
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

// RivalAnswer reports whether op's answer is one the contract gives only to a request that
// raced another of its key (a rival-only line, such as 409 in-progress), matched on status and
// error code alone: whether op really had a rival is the contract rule's to judge. A fault's
// recovery (chaos.Recovery) counts such an answer as the service working by design.
func (c Contract) RivalAnswer(api *API) func(history.Op) bool {
	return func(op history.Op) bool {
		if op.Status < 400 {
			return false
		}
		code, err := cleanError(api, &op)
		if err != nil {
			return false
		}
		for _, l := range c.Lines {
			if l.Rival && l.Status == op.Status && l.Code == code {
				return true
			}
		}
		return false
	}
}
