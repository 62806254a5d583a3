package history

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEventContains(t *testing.T) {
	e := Event{Kind: EventFault, Name: "pod-kill", Start: 2 * time.Second, End: 5 * time.Second}
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{time.Second, false},
		{2 * time.Second, true},
		{3 * time.Second, true},
		{5 * time.Second, true},
		{5*time.Second + 1, false},
	} {
		if got := e.Contains(tc.at); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
	open := Event{Start: time.Second}
	if !open.Contains(time.Hour) || open.Contains(0) {
		t.Errorf("an event that has not ended must contain every later time and no earlier one")
	}
}

func TestEventsJSONLRoundTrip(t *testing.T) {
	in := []Event{
		{Kind: EventFault, Name: "db-latency", Target: "toxiproxy/postgres", Detail: "latency=30ms", Start: time.Second, End: 9 * time.Second},
		{Kind: EventFault, Name: "pod-kill", Target: "tokensvc-abc", Start: 2 * time.Second},
	}
	var buf bytes.Buffer
	if err := WriteEventsJSONL(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadEventsJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	if _, err := ReadEventsJSONL(strings.NewReader(`{"kind":"fault","surprise":1}`)); err == nil {
		t.Errorf("an unknown field must be refused")
	}
}

func TestEventExcusesRoundTripAndOldEvents(t *testing.T) {
	in := []Event{{Kind: EventFault, Name: "pod-kill", Target: "tokensvc-a", Start: time.Second, End: 2 * time.Second,
		Declared: true, Excuses: []Excuse{{Status: 0, Pods: []string{"tokensvc-a"}}}}}
	var buf bytes.Buffer
	if err := WriteEventsJSONL(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadEventsJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	// An event saved before faults declared their excuses reads as undeclared.
	old, err := ReadEventsJSONL(strings.NewReader(`{"kind":"fault","name":"scale","start_ns":1,"end_ns":2}`))
	if err != nil || len(old) != 1 || old[0].Declared || old[0].Excuses != nil {
		t.Errorf("old event: %+v, %v; want it undeclared", old, err)
	}
	if got, want := in[0].Excuses[0].String(), "connection error from tokensvc-a"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Excuse{Status: 503, Code: "unavailable"}).String(), "503 unavailable from any pod"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
