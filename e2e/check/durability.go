package check

import (
	"slices"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// DurabilityWindow is how long before a database crash an acknowledged registration may be
// lost by a PostgreSQL that acknowledges commits before they are durable: with
// synchronous_commit=off, "the maximum delay is three times wal_writer_delay" (200 ms by
// default; PostgreSQL's documentation, "Asynchronous Commit"), and 1 s bounds that with room.
// The durability canary counts only a write acknowledged inside it (DetectDurable), and a
// crash with no acknowledgement inside it proves nothing either way (AcknowledgedBeforeCrash).
const DurabilityWindow = time.Second

// crashWindow is the window of crash: from window before it landed (its Start when the fault
// did not say when) to that instant. A 2xx that returned in it was acknowledged before the
// kill, no earlier than window before it; one that returned after the kill landed is left out,
// although it too was acknowledged before: the count may be short, never long.
func crashWindow(crash history.Event, window time.Duration) (from, to time.Duration) {
	to = crash.Landed
	if to == 0 {
		to = crash.Start
	}
	return to - window, to
}

// AcknowledgedBeforeCrash counts the 2xx answers of ops that returned within window before
// crash landed: the registrations a crash could lose if commits were not durable. A crash
// without any proves nothing about durability: the spec calls it inconclusive.
func AcknowledgedBeforeCrash(ops []history.Op, crash history.Event, window time.Duration) int {
	from, to := crashWindow(crash, window)
	n := 0
	for i := range ops {
		if ops[i].Succeeded() && ops[i].Return >= from && ops[i].Return <= to {
			n++
		}
	}
	return n
}

// DetectDurable counts the customers of r that show AsyncCommit's known bug through an
// acknowledgement inside window before crash landed: a lost write (its request) or a lost
// registration (any of its 2xx answers) that returned in the window. A row lost that was
// acknowledged long before the crash is still a violation of its rule, but not what the
// canary looks for, and does not count as its catch.
func DetectDurable(r Result, crash history.Event, window time.Duration) Detection {
	d := Detection{Customers: r.Customers}
	bug, _ := KnownBugOf(AsyncCommit)
	from, to := crashWindow(crash, window)
	inWindow := func(req Request) bool {
		return req.Status >= 200 && req.Status < 300 && req.Error == "" && req.Return >= from && req.Return <= to
	}
	caught := map[history.Key]bool{}
	for _, v := range r.Violations {
		for _, f := range v.Findings {
			if !slices.Contains(bug.Kinds, f.Kind) {
				continue
			}
			for _, req := range v.Requests {
				if (f.Request == "" || f.Request == req.ID) && inWindow(req) {
					caught[v.Customer.Key()] = true
				}
			}
		}
	}
	d.Caught = len(caught)
	return d
}
