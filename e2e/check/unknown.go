package check

import (
	"fmt"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// The lines of RuleContract that every strategy shares besides its Contract's answers, as
// Finding.Line names them: a client is owed an answer to every request, from a service that
// stays up.
const (
	// ContractAnswerArrives: every request gets a complete HTTP answer. A transport error, a
	// reset, an EOF or the client's timeout (an unknown outcome) breaks it unless a fault
	// excuses it (KindNoAnswer).
	ContractAnswerArrives = "answer-arrives"
	// ContractNoRestart: no token-service container restarts, and no pod is replaced, added or
	// removed, unless a fault excuses it (KindRestart).
	ContractNoRestart = "no-restart"
)

// answerArrives and noRestart are ContractAnswerArrives and ContractNoRestart as contract
// lines, for the findings' details.
var (
	answerArrives = ContractLine{ID: ContractAnswerArrives,
		Doc: "every request gets a complete answer; a transport error or timeout only while a fault is on or within the tail after it"}
	noRestart = ContractLine{ID: ContractNoRestart,
		Doc: "no container restarts and no pod is replaced, added or removed, except by a fault"}
)

// RestartChange says how a token-service pod changed between two looks at the deployment.
type RestartChange string

// The changes.
const (
	// RestartContainer: a container of a pod that was there before and after restarted (its
	// restartCount grew).
	RestartContainer RestartChange = "container-restarted"
	// RestartPodGone: a pod that was there before is not after (deleted, evicted, replaced).
	RestartPodGone RestartChange = "pod-gone"
	// RestartPodNew: a pod that is there after was not before (a replacement, a scale-up).
	RestartPodNew RestartChange = "pod-new"
)

// Restart is one change of a token-service pod that the framework saw between the look before
// a run's traffic and the look after it: an answer the client never got may have been lost
// with it, and the pod's counters too (MetricsWitness.Gone).
type Restart struct {
	Pod    string        `json:"pod"`
	Change RestartChange `json:"change"`
	// Container is the container that restarted (RestartContainer only).
	Container string `json:"container,omitempty"`
	// Count is how many times it restarted in between (RestartContainer only).
	Count int32 `json:"count,omitempty"`
	// From and To bound when the change happened, counted from the history's time base like an
	// Op's Call and Return: as closely as the pod says (the second of a container's last
	// termination or of a new pod's creation; Kubernetes gives whole seconds), else the interval
	// between the two looks. A fault excuses the change when its window or tail meets [From, To].
	From time.Duration `json:"from_ns"`
	To   time.Duration `json:"to_ns"`
	// Reason is what the pod says of it, such as the last termination's reason and exit code.
	Reason string `json:"reason,omitempty"`
}

// String formats r for findings.
func (r Restart) String() string {
	when := "at " + ms(r.From)
	if r.To != r.From {
		when = fmt.Sprintf("between %s and %s", ms(r.From), ms(r.To))
	}
	s := fmt.Sprintf("pod %s %s %s", r.Pod, r.Change, when)
	if r.Change == RestartContainer {
		s = fmt.Sprintf("container %s of pod %s restarted %d time(s), the last %s", r.Container, r.Pod, r.Count, when)
	}
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s
}

// unknownExcused reports whether a fault excuses op's missing answer: one whose window op met
// declares connection errors from op's pod (faultWindows.excuses, status 0).
func (e *judgeEnv) unknownExcused(op *history.Op) bool {
	_, ok := e.faults.excuses(op, 0, "")
	return ok
}

// restartExcused reports whether a fault excuses r: its [From, To] meets the window of a fault
// that changes pods by design (history.Event.ChangesPods), or of one saved before faults
// declared anything.
func (e *judgeEnv) restartExcused(r Restart) bool {
	span := &history.Op{Call: r.From, Return: r.To}
	for i := range e.faults.windows {
		w := &e.faults.windows[i]
		if w.meets(span) && (!w.Declared || w.ChangesPods) {
			return true
		}
	}
	return false
}

// noAnswer is the finding of an unknown outcome no fault excuses.
func (e *judgeEnv) noAnswer(op *history.Op) findingOps {
	what := op.Error
	if what == "" {
		what = "no response"
	}
	return findingOps{Finding{Kind: KindNoAnswer, Request: op.ID(), Line: answerArrives.ID,
		Detail: fmt.Sprintf("%s: no answer (%s) outside every fault window (tail %s) breaks %s contract line %s (%s)",
			op.ID(), excerpt(what), e.faults.tail, e.p.Contract.Strategy, answerArrives.ID, answerArrives.Doc)},
		[]*history.Op{op}}
}

// checkRestarts returns one RuleContract violation per restart that no fault excuses; it is
// about the run, not one customer.
func (e *judgeEnv) checkRestarts() []Violation {
	var vs []Violation
	for _, r := range e.p.Restarts {
		if e.restartExcused(r) {
			continue
		}
		detail := fmt.Sprintf("%s, outside every fault window (tail %s), breaks %s contract line %s (%s)",
			r, e.faults.tail, e.p.Contract.Strategy, noRestart.ID, noRestart.Doc)
		vs = append(vs, Violation{Rule: RuleContract, Pods: []string{r.Pod}, Requests: []Request{}, Details: []string{detail},
			Findings: []Finding{{Kind: KindRestart, Line: noRestart.ID, Detail: detail}}})
	}
	return vs
}
