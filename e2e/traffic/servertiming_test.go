package traffic

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

func TestParseHandlerInterval(t *testing.T) {
	for _, tc := range []struct {
		name       string
		values     []string
		start, end int64
		ok         bool
	}{
		{"the service's", []string{`handler;dur=0.002;desc="start=1000 end=3000"`}, 1000, 3000, true},
		{"among other metrics", []string{`db;dur=1, handler;desc="start=5 end=5";dur=0`, `cache;desc="a,b"`}, 5, 5, true},
		{"in a later header line", []string{`db;dur=1`, `Handler;DESC="end=9 start=7"`}, 7, 9, true},
		{"desc as a token", []string{`handler;desc=start=1`}, 0, 0, false},
		{"comma and semicolon inside another desc", []string{`edge;desc="x, handler;desc=\"start=1 end=2\""`}, 0, 0, false},
		{"absent", nil, 0, 0, false},
		{"no desc", []string{`handler;dur=1`}, 0, 0, false},
		{"end before start", []string{`handler;desc="start=9 end=7"`}, 0, 0, false},
		{"not a number", []string{`handler;desc="start=x end=7"`}, 0, 0, false},
		{"negative", []string{`handler;desc="start=-1 end=7"`}, 0, 0, false},
		{"no end", []string{`handler;desc="start=1"`}, 0, 0, false},
		{"unterminated quote", []string{`handler;desc="start=1 end=2`}, 0, 0, false},
		{"overflow", []string{`handler;desc="start=1 end=99999999999999999999"`}, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, end, ok := parseHandlerInterval(tc.values)
			if ok != tc.ok || (ok && (start.UnixNano() != tc.start || end.UnixNano() != tc.end)) {
				t.Errorf("parse %q = %d, %d, %v; want %d, %d, %v", tc.values, start.UnixNano(), end.UnixNano(), ok, tc.start, tc.end, tc.ok)
			}
		})
	}
}

// TestRecorderRecordsHandlerInterval checks that the recorder puts the pod's handler interval on
// the run's time base, inside the request's call and return (one host, one clock), and that a
// response with a malformed or no interval is recorded like any other, with a zero interval.
func TestRecorderRecordsHandlerInterval(t *testing.T) {
	svc := newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		time.Sleep(5 * time.Millisecond)
		w.Header().Set(testPodHeader, "pod-0")
		switch r.Header.Get(RequestHeader) {
		case history.RequestID(0, 0, 0):
			w.Header().Set(ServerTimingHeader, fmt.Sprintf(`handler;dur=5;desc="start=%d end=%d"`, start.UnixNano(), time.Now().UnixNano()))
		case history.RequestID(1, 0, 0):
			w.Header().Set(ServerTimingHeader, `handler;desc="start=soon end=later"`)
		}
		fmt.Fprint(w, `{"token":"t","id":"x","created":true}`)
	})
	clock := history.NewClock(time.Now())
	rec := NewRecorder(clock, NewTransport(), 0)
	rec.SetObserve(testRequest.Observe)
	client := &http.Client{Transport: rec}
	for i := range 3 {
		id := rec.Expect(history.Op{Customer: history.Customer{Index: i, Tenant: "m", EntityKey: fmt.Sprint(i)}, Phase: history.PhaseBurst})
		req, err := http.NewRequest(http.MethodPost, svc.URL+testRequest.Path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(RequestHeader, id)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %s: %v", id, err)
		}
		resp.Body.Close()
	}
	ops := rec.Ops()
	if len(ops) != 3 {
		t.Fatalf("recorded %d ops, want 3", len(ops))
	}
	timed := ops[0]
	if !timed.HasServerInterval() || timed.ServerStart < timed.Call || timed.ServerEnd > timed.Return ||
		timed.ServerEnd-timed.ServerStart < 5*time.Millisecond {
		t.Errorf("op %s: server [%v, %v] is not a 5 ms interval within call/return [%v, %v]",
			timed.ID(), timed.ServerStart, timed.ServerEnd, timed.Call, timed.Return)
	}
	for _, op := range ops[1:] {
		if op.HasServerInterval() || op.ServerStart != 0 || op.ServerEnd != 0 || op.Error != "" || op.Status != 200 {
			t.Errorf("op %s: server [%v, %v], status %d, error %q; want a zero interval and a plain 200",
				op.ID(), op.ServerStart, op.ServerEnd, op.Status, op.Error)
		}
	}
}
