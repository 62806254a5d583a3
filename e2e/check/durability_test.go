package check

import (
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// TestDurabilityWindow: a lost acknowledged registration is the canary's catch only when it was
// acknowledged within DurabilityWindow before the crash landed; the acknowledgements a crash
// could have lost are counted in the same window.
func TestDurabilityWindow(t *testing.T) {
	ta, tb := tokenFor(t, rowA, nil), tokenFor(t, rowB, nil)
	// Alice acknowledged at 10 ms and her row lost; bob acknowledged at 2010 ms and kept.
	ops := []history.Op{okCreated(t, alice, 0, 0, "pod-a", 0, 10, ta), okCreated(t, bob, 0, 0, "pod-b", 2000, 2010, tb)}
	p := params()
	p.Contract = contract(t, modeAtomic)
	p.Faults = nil
	res, err := Check(ops, []Row{rowB}, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := Detect(AsyncCommit, res); d.Caught != 1 {
		t.Fatalf("the fixture's lost registration is not AsyncCommit's bug: %+v", res.Violations)
	}
	for _, tc := range []struct {
		name         string
		crash        history.Event
		caught, acks int
	}{
		{name: "crash just after the lost acknowledgement", crash: history.Event{Start: msec(5), Landed: msec(300)}, caught: 1, acks: 1},
		{name: "crash long after it", crash: history.Event{Start: msec(1900), Landed: msec(2100)}, caught: 0, acks: 1},
		{name: "crash before it landed", crash: history.Event{Start: msec(0), Landed: msec(5)}, caught: 0, acks: 0},
		{name: "no landing recorded: the start stands for it", crash: history.Event{Start: msec(900)}, caught: 1, acks: 1},
		{name: "no acknowledgement in the window", crash: history.Event{Start: msec(1500), Landed: msec(1600)}, caught: 0, acks: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := DetectDurable(res, tc.crash, DurabilityWindow); d.Caught != tc.caught || d.Customers != 2 {
				t.Errorf("DetectDurable = %+v, want %d caught of 2", d, tc.caught)
			}
			if n := AcknowledgedBeforeCrash(ops, tc.crash, DurabilityWindow); n != tc.acks {
				t.Errorf("AcknowledgedBeforeCrash = %d, want %d", n, tc.acks)
			}
		})
	}
}
