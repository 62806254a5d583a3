package check

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// handled gives o the handler interval [start, end] ms, as its pod reported it.
func handled(o history.Op, start, end int) history.Op {
	o.ServerStart, o.ServerEnd = msec(start), msec(end)
	return o
}

// usec is n microseconds.
func usec(n int) time.Duration { return time.Duration(n) * time.Microsecond }

// servedBy is o served by pod.
func servedBy(o history.Op, pod string) history.Op {
	o.Pod = pod
	return o
}

// timedHistory is goodHistory with the handler intervals its pods would report: alice's two
// 200s on pod-a and pod-b ran their handlers at once for 4 ms, bob's 200 and 503 for 2 ms.
func timedHistory(t *testing.T) ([]history.Op, []Row) {
	ops, rows := goodHistory(t)
	for i, span := range [][2]int{{2, 8}, {3, 7}, {3, 4}, {1006, 1008}, {102, 108}, {102, 104}} {
		ops[i] = handled(ops[i], span[0], span[1])
	}
	return ops, rows
}

// earlier moves the start of every handler interval of ops by d earlier.
func earlier(ops []history.Op, d time.Duration) []history.Op {
	out := slices.Clone(ops)
	for i := range out {
		if out[i].HasServerInterval() {
			out[i].ServerStart -= d
		}
	}
	return out
}

// TestServerCoverage judges coverage on hand-made histories where the clients' clocks say the
// race happened and the pods' reports, the Service's replica list or the clocks' uncertainty
// say otherwise.
func TestServerCoverage(t *testing.T) {
	timed, rows := timedHistory(t)
	plain, _ := goodHistory(t)
	for _, tc := range []struct {
		name       string
		ops        []history.Op
		edit       func(*CoverageParams)
		sufficient bool
		serverData bool
		server     int
		reason     string
	}{
		{name: "handlers overlap on two pods", ops: timed, sufficient: true, serverData: true, server: 2},
		{
			name: "overlap on the client but not on the server",
			ops: replace(replace(timed, handled(timed[1], 8, 9)), // alice: pod-a 2..8, pod-b 8..9
				handled(timed[5], 108, 109)), // bob: pod-b 102..108, pod-a 108..109
			serverData: true, server: 0, reason: "server-side only 0 entities",
		},
		{
			name: "one customer's handlers apart is too few",
			ops:  replace(timed, handled(timed[1], 8, 9)), serverData: true, server: 1, reason: "server-side only 1 entities (50%)",
			edit: func(p *CoverageParams) { p.MinCovered = 2 },
		},
		{
			name: "skew bound larger than the overlaps", ops: timed,
			edit:       func(p *CoverageParams) { p.ClockSkewBound, p.MinCovered = msec(2), 2 },
			serverData: true, server: 1, reason: "server-side only 1 entities (50%)", // alice's 4 ms still count
		},
		{
			name: "skew bound larger than every overlap", ops: timed,
			edit:       func(p *CoverageParams) { p.ClockSkewBound = msec(4) },
			serverData: true, server: 0, reason: "server-side only 0 entities",
		},
		{
			name: "skew bound shorter than the overlaps", ops: timed, sufficient: true, serverData: true, server: 2,
			edit: func(p *CoverageParams) { p.ClockSkewBound = usec(1999) },
		},
		{
			name: "the ready replicas served everything", ops: timed, sufficient: true, serverData: true, server: 2,
			edit: func(p *CoverageParams) { p.ReadyPods = []string{"pod-b", "pod-a"} },
		},
		{
			name: "a request served by a pod the Service does not list",
			ops:  replace(timed, servedBy(timed[5], "pod-z")), serverData: true, server: 2,
			edit:   func(p *CoverageParams) { p.ReadyPods = []string{"pod-a", "pod-b"} },
			reason: "requests served by [pod-z], which the Service does not list as ready",
		},
		{
			name: "a replica that served nothing", ops: timed, serverData: true, server: 2,
			edit:   func(p *CoverageParams) { p.ReadyPods = []string{"pod-a", "pod-b", "pod-c"} },
			reason: "replica pod-c served nothing",
		},
		{
			name: "a replica that served only a retry served no burst",
			ops:  replace(timed, servedBy(timed[3], "pod-c")), serverData: true, server: 2,
			edit:   func(p *CoverageParams) { p.ReadyPods = []string{"pod-a", "pod-b", "pod-c"} },
			reason: "replica pod-c served nothing",
		},
		{name: "no server data: client-side alone, as allowed", ops: plain, sufficient: true, serverData: false, server: 0},
		{
			name: "no server data and client-side alone not allowed", ops: plain,
			edit: func(p *CoverageParams) { p.AllowClientOnly = false }, reason: ReasonNoServerData,
		},
		{
			// The shape of mutant server-timing-early: every pod's intervals start a second
			// before their requests were sent, so its clock samples contradict each other and
			// none of its requests count, client-side or server-side.
			name: "handler intervals that start before their requests", ops: earlier(timed, msec(1000)),
			edit:       func(p *CoverageParams) { p.AllowClientOnly = false },
			serverData: true, server: 0, reason: "client-side only 0 entities (0%) covered; server-side only 0 entities",
		},
		{
			name: "handler intervals make client-side alone unneeded", ops: timed, sufficient: true, serverData: true, server: 2,
			edit: func(p *CoverageParams) { p.AllowClientOnly = false },
		},
		{
			name: "no server data and too few on the client", ops: replace(plain, servedBy(plain[1], "pod-a")),
			edit: func(p *CoverageParams) { p.MinCovered = 2 }, reason: "client-side only 1 entities",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			if tc.edit != nil {
				tc.edit(&p.Coverage)
			}
			res, err := Check(tc.ops, rows, p)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Coverage
			wantVerdict := VerdictInconclusive
			if tc.sufficient {
				wantVerdict = VerdictPass
			}
			if c.Sufficient != tc.sufficient || res.Verdict != wantVerdict || c.ServerData != tc.serverData || c.ServerCovered != tc.server {
				t.Errorf("sufficient %v verdict %s server data %v server-covered %d; want %v %s %v %d\n%s",
					c.Sufficient, res.Verdict, c.ServerData, c.ServerCovered, tc.sufficient, wantVerdict, tc.serverData, tc.server, c)
			}
			if got := strings.Join(c.Reasons, "; "); (tc.reason == "") != (got == "") || !strings.Contains(got, tc.reason) {
				t.Errorf("reasons %q, want one containing %q", got, tc.reason)
			}
			s := c.String()
			if !strings.Contains(s, "client-side") || !strings.Contains(s, "server-side") ||
				(!tc.serverData && !strings.Contains(s, "no data")) || (tc.reason != "" && !strings.Contains(s, tc.reason)) {
				t.Errorf("String() = %q lacks a side, the fallback or the reason", s)
			}
		})
	}
}

// TestEstimateSkew bounds the offsets of pods whose clocks are 3 ms behind the client's (pod-a)
// and on it (pod-b) from their requests' brackets, and flags a pod whose reports contradict
// each other (pod-c).
func TestEstimateSkew(t *testing.T) {
	c := history.Customer{Index: 0, Tenant: "m", EntityKey: "e"}
	at := func(pod string, call, ret, start, end int) history.Op {
		return handled(op(c, 0, 0, pod, call, ret, 200, "{}"), start, end)
	}
	s := EstimateSkew([]history.Op{
		at("pod-a", 0, 10, -1, 5),   // handler at 2..8 client time: offset in [1, 5]
		at("pod-a", 20, 24, 18, 20), // 21..23: [2, 4]
		at("pod-b", 0, 10, 4, 6),    // [-4, 4]
		at("pod-c", 0, 10, 1, 2),    // [-1, 8]
		at("pod-c", 30, 31, 10, 10), // [20, 21]: contradicts
		at("", 0, 10, 100, 200),     // no pod: ignored
		op(c, 0, 0, "pod-d", 0, 10, 200, "{}"),
	})
	want := map[string]PodOffset{
		"pod-a": {Lo: msec(2), Hi: msec(4), Samples: 2},
		"pod-b": {Lo: msec(-4), Hi: msec(4), Samples: 1},
		"pod-c": {Lo: msec(20), Hi: msec(8), Samples: 2},
	}
	if len(s.Pods) != len(want) {
		t.Errorf("pods %v, want %v", s.Pods, want)
	}
	for pod, w := range want {
		if s.Pods[pod] != w {
			t.Errorf("%s: %+v, want %+v", pod, s.Pods[pod], w)
		}
	}
	if s.Bound != msec(8) || !slices.Equal(s.Inconsistent, []string{"pod-c"}) {
		t.Errorf("bound %v inconsistent %v; want 8ms [pod-c]", s.Bound, s.Inconsistent)
	}
	if s := EstimateSkew(nil); s.Bound != 0 || len(s.Pods) != 0 {
		t.Errorf("no data: %+v", s)
	}
}

// TestCoverageLeavesOutBurstsUnderFault: a burst sent while a fault is on may rightly be served
// by one replica (the others out of service); it is judged but does not count for coverage,
// either way. Only bursts outside every window (and its tail) do, so a run made only of those
// under a fault proves no race.
func TestCoverageLeavesOutBurstsUnderFault(t *testing.T) {
	good, rows := goodHistory(t)
	// carol's burst is sent during the fault and served by pod-a alone.
	carol := history.Customer{Index: 2, Tenant: "m-1-0", EntityKey: "c-1-0"}
	other := rows[2] // goodHistory's third row is carol's
	tc := tokenFor(t, other, nil)
	ops := append(slices.Clone(good),
		okCreated(t, carol, 0, 0, "pod-a", 150, 160, tc),
		ok(t, carol, 1, 0, "pod-a", 150, 158, tc))
	p := params()
	p.Coverage = CoverageParams{MinCovered: 2, MinFraction: 1, AllowClientOnly: true}
	res, err := Check(ops, rows, p)
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Coverage; !c.Sufficient || c.UnderFault != 1 || c.Customers != 2 || c.Covered != 2 {
		t.Errorf("carol under the fault must not count: %+v\n%s", c, c)
	}
	p.Faults = []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: msec(150), End: msec(200)}}
	p.Coverage.MinFraction = 0.5
	if res, err = Check(ops, rows, p); err != nil {
		t.Fatal(err)
	}
	// Without a window over bob's burst, his 503 breaks the contract: judged all the same.
	if res.Counts[RuleContract] != 1 || res.Coverage.UnderFault != 1 {
		t.Errorf("contract %d, under fault %d; want bob's 503 judged and carol left out", res.Counts[RuleContract], res.Coverage.UnderFault)
	}
	// Every burst under a fault: nothing proves the race.
	p.Faults = []history.Event{{Kind: history.EventFault, Name: "db-cut", Start: 0}}
	if res, err = Check(ops, rows, p); err != nil {
		t.Fatal(err)
	}
	if c := res.Coverage; c.Sufficient || c.Customers != 0 || c.UnderFault != 3 {
		t.Errorf("a run made only of bursts under a fault: %+v", c)
	}
}

// TestCoverageCountsFirstRegistrationsOnly judges alice's coverage on hand-made histories in
// which her only cross-pod overlap is, or is not, between requests that could have raced to
// create her row: sent before her first 2xx returned, and served by pods whose clocks agree
// with themselves.
func TestCoverageCountsFirstRegistrationsOnly(t *testing.T) {
	ta := tokenFor(t, rowA, nil)
	// The first 2xx returns at 5 ms; alice's other burst request stays on pod-a.
	first := []history.Op{
		handled(okCreated(t, alice, 0, 0, "pod-a", 0, 5, ta), 1, 4),
		handled(ok(t, alice, 1, 0, "pod-a", 1, 9, ta), 5, 8),
	}
	for _, tc := range []struct {
		name    string
		ops     []history.Op
		covered bool
	}{
		{
			name: "a burst request on pod-b sent before the first 2xx returned",
			ops:  append(slices.Clone(first), handled(ok(t, alice, 2, 0, "pod-b", 4, 12, ta), 7, 10)), covered: true,
		},
		{
			// The row existed when it was sent: it overlaps seq 1 on two pods, client-side
			// (1-9, 6-12) and server-side (5-8, 7-10), yet nothing raced.
			name: "a retry on pod-b sent after the first 2xx returned",
			ops:  append(slices.Clone(first), handled(ok(t, alice, 1, 1, "pod-b", 6, 12, ta), 7, 10)),
		},
		{
			// pod-b's second sample says its clock is 9 to 10 ms behind, its first that it is
			// within 2 ms: one of them is not its handler's interval, and none of its
			// intervals can be trusted.
			name: "the race on pod-b, whose clock samples contradict each other",
			ops: append(slices.Clone(first), handled(ok(t, alice, 2, 0, "pod-b", 4, 12, ta), 7, 10),
				handled(ok(t, alice, 2, 1, "pod-b", 20, 22, ta), 30, 31)),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.Faults = nil
			p.Coverage.AllowClientOnly = false
			res, err := Check(tc.ops, []Row{rowA}, p)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Coverage
			want := 0
			wantVerdict := VerdictInconclusive
			if tc.covered {
				want, wantVerdict = 1, VerdictPass
			}
			if c.Covered != want || c.ServerCovered != want || res.Verdict != wantVerdict {
				t.Errorf("covered %d server-covered %d verdict %s, want %d %d %s\n%s", c.Covered, c.ServerCovered, res.Verdict, want, want, wantVerdict, c)
			}
		})
	}
}
