package history

import (
	"fmt"
	"io"
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
