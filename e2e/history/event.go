package history

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// EventFault is the Kind of an Event that records a fault injected by the chaos specs.
const EventFault = "fault"

// Event is something done to the system under test while requests ran, such as a fault: not a
// request, but recorded next to them. Start and End count from the same base time as an Op's
// Call and Return, so that ops can be placed inside or outside it.
type Event struct {
	Kind string `json:"kind"`
	// Name is the fault's name, such as pod-kill.
	Name string `json:"name"`
	// Target is what the event acted on, such as a pod or a node container.
	Target string `json:"target,omitempty"`
	// Detail says how, such as the toxic's attributes.
	Detail string        `json:"detail,omitempty"`
	Start  time.Duration `json:"start_ns"`
	// End is when the event was over (the fault recovered); zero while it is not.
	End time.Duration `json:"end_ns"`
	// Declared says the fault declared the answers it may cause (Excuses, possibly none): the
	// checker excuses those only, from the pods they name, until the first clean answer after
	// the fault's end plus a bound. An event saved before faults declared theirs (Declared
	// false) excuses every during-fault answer from any pod for a constant tail, as it was
	// judged then.
	Declared bool `json:"declared,omitempty"`
	// Excuses are the answers the fault may cause.
	Excuses []Excuse `json:"excuses,omitempty"`
	// ChangesPods says the fault replaces, adds or removes token-service pods by design (a kill,
	// a rollout, a scale, a lost node): a container restart or a pod replaced, added or removed
	// within its window is its doing. A declared fault without it excuses none.
	ChangesPods bool `json:"changes_pods,omitempty"`
	// Landed is when the fault took effect, for a fault that knows (db-crash: when the SIGKILL
	// had been delivered), between Start and End; zero otherwise, and in events recorded before.
	Landed time.Duration `json:"landed_ns,omitempty"`
}

// Excuse is one answer a fault may cause, and from which pods: a request in flight during the
// fault (or its tail) that got it does not break its strategy's contract.
type Excuse struct {
	// Status is the HTTP status, or 0 for a connection error: no answer arrived (an unknown
	// outcome).
	Status int `json:"status"`
	// Code is the error body's code, such as unavailable; empty for a connection error.
	Code string `json:"code,omitempty"`
	// Pods are the pods (X-Served-By) whose answers it excuses; empty means any pod.
	Pods []string `json:"pods,omitempty"`
}

// String formats x for logs and tables, such as "503 unavailable from any pod".
func (x Excuse) String() string {
	what := fmt.Sprintf("%d %s", x.Status, x.Code)
	if x.Status == 0 {
		what = "connection error"
	}
	if len(x.Pods) == 0 {
		return what + " from any pod"
	}
	return what + " from " + strings.Join(x.Pods, ", ")
}

// Ended reports whether e has an end.
func (e Event) Ended() bool { return e.End > 0 }

// Contains reports whether t lies inside e, ends included. An event that has not ended
// contains every time after its start.
func (e Event) Contains(t time.Duration) bool {
	return t >= e.Start && (!e.Ended() || t <= e.End)
}

// String formats e for logs and reports.
func (e Event) String() string {
	end := "open"
	if e.Ended() {
		end = e.End.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%s %s on %s [%s, %s]", e.Kind, e.Name, e.Target, e.Start.Round(time.Millisecond), end)
}

// WriteEventsJSONL writes events to w, one JSON object a line.
func WriteEventsJSONL(w io.Writer, events []Event) error { return writeJSONL(w, events, "event") }

// ReadEventsJSONL reads events written by WriteEventsJSONL.
func ReadEventsJSONL(r io.Reader) ([]Event, error) { return readJSONL[Event](r, "event", nil, nil) }
