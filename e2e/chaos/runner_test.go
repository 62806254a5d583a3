package chaos

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// fakeRound returns a round function whose round i answers 2xx to its one burst request when
// ok(i), and a 503 otherwise, after taking d.
func fakeRound(since func() time.Duration, d time.Duration, ok func(i int) bool) RoundFunc {
	return func(ctx context.Context, i int) ([]history.Op, error) {
		call := since()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		op := history.Op{Customer: history.Customer{Index: i}, Phase: history.PhaseBurst, Call: call, Return: since(), Status: 503}
		if ok(i) {
			op.Status = 200
		}
		return []history.Op{op}, nil
	}
}

func clockSince() func() time.Duration { return history.NewClock(time.Now()).Since }

func TestLaunchRoundsPacesBoundsAndCollects(t *testing.T) {
	since := clockSince()
	var inFlight, peak atomic.Int32
	run := func(ctx context.Context, i int) ([]history.Op, error) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer inFlight.Add(-1)
		time.Sleep(35 * time.Millisecond) // a round that outlasts the launch period
		if i == 2 {
			return nil, errors.New("boom")
		}
		return []history.Op{{Customer: history.Customer{Index: i}}}, nil
	}
	r := LaunchRounds(context.Background(), RoundsParams{Every: 10 * time.Millisecond, Max: 6, MaxInFlight: 2, Since: since, Run: run})
	for len(r.Finished()) < 6 {
		time.Sleep(5 * time.Millisecond)
	}
	rounds, err := r.Stop()
	if len(rounds) != 6 {
		t.Fatalf("%d rounds, want 6 (Max)", len(rounds))
	}
	for i, rd := range rounds {
		if rd.Index != i {
			t.Errorf("rounds[%d] has index %d: not in launch order", i, rd.Index)
		}
		if i > 0 && rd.Start < rounds[i-1].Start {
			t.Errorf("round %d launched before round %d", i, i-1)
		}
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d rounds ran at once, MaxInFlight is 2", p)
	}
	if err == nil || err.Error() != "round 2: boom" {
		t.Errorf("Stop's error = %v, want round 2's", err)
	}
}

func TestStopWaitsForRoundsInFlight(t *testing.T) {
	since := clockSince()
	r := LaunchRounds(context.Background(), RoundsParams{Every: time.Hour, Max: 3, MaxInFlight: 3, Since: since,
		Run: fakeRound(since, 30*time.Millisecond, func(int) bool { return true })})
	rounds, err := r.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(rounds) != 1 || len(rounds[0].Ops) != 1 {
		t.Fatalf("Stop returned %+v: want the one round launched, finished", rounds)
	}
}

func TestAwaitRecovery(t *testing.T) {
	for _, tc := range []struct {
		name      string
		healthyAt int // rounds from this index on succeed
		want      bool
	}{
		{"a whole round after the fault", 3, true},
		{"no round ever succeeds", 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since := clockSince()
			r := LaunchRounds(context.Background(), RoundsParams{Every: 10 * time.Millisecond, Max: 8, MaxInFlight: 4, Since: since,
				Run: fakeRound(since, 5*time.Millisecond, func(i int) bool { return i >= tc.healthyAt })})
			end := 15 * time.Millisecond // the fault's end: rounds 2 and later start after it
			got := r.AwaitRecovery(context.Background(), end, 2*time.Second, nil)
			rounds, _ := r.Stop()
			if got != tc.want {
				t.Fatalf("AwaitRecovery = %v, want %v (rounds %d)", got, tc.want, len(rounds))
			}
			if rec, ok := Recovery(rounds, end, nil); ok != tc.want || (ok && rec <= 0) {
				t.Errorf("Recovery = %v, %v", rec, ok)
			}
		})
	}
}

func TestAwaitRecoveryGivesUpAtTheBound(t *testing.T) {
	since := clockSince()
	r := LaunchRounds(context.Background(), RoundsParams{Every: 10 * time.Millisecond, Max: 1000, MaxInFlight: 2, Since: since,
		Run: fakeRound(since, time.Millisecond, func(int) bool { return false })})
	start := time.Now()
	if r.AwaitRecovery(context.Background(), 0, 50*time.Millisecond, nil) {
		t.Error("recovered although no round succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("gave up after %v, the bound is 50ms", d)
	}
	_, _ = r.Stop()
}

type fakeFault struct {
	held       bool
	injectErr  error
	mu         sync.Mutex
	injectedAt time.Duration
	recovered  bool
	since      func() time.Duration
}

func (f *fakeFault) Name() string            { return "fake" }
func (f *fakeFault) Available(*Target) error { return nil }
func (f *fakeFault) Inject(ctx context.Context, _ *Target, _ Plan) (*Injection, error) {
	if f.injectErr != nil {
		return nil, f.injectErr
	}
	f.mu.Lock()
	f.injectedAt = f.since()
	f.mu.Unlock()
	return &Injection{Target: "pod-x", Detail: "fake", Held: f.held, Pods: []string{"pod-x"}, Recover: func(ctx context.Context) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.mu.Lock()
		f.recovered = true
		f.mu.Unlock()
		return nil
	}}, nil
}

func TestApplyFiresAtTheOffsetHoldsAndRecovers(t *testing.T) {
	since := clockSince()
	f := &fakeFault{held: true, since: since}
	p := Plan{Fault: "fake", Offset: 30 * time.Millisecond, Hold: 40 * time.Millisecond}
	a := Apply(context.Background(), f, &Target{}, p, 0, since, slog.New(slog.DiscardHandler))
	if !a.Ok() {
		t.Fatalf("Apply: inject %v, recover %v", a.InjectErr, a.RecoverErr)
	}
	if a.Event.Start < p.Offset || f.injectedAt < p.Offset {
		t.Errorf("fault fired at %v (event start %v), before its offset %v", f.injectedAt, a.Event.Start, p.Offset)
	}
	if a.Event.End-a.Event.Start < p.Hold {
		t.Errorf("held for %v, the plan's hold is %v", a.Event.End-a.Event.Start, p.Hold)
	}
	if !f.recovered || a.Event.Target != "pod-x" || a.Event.Name != "fake" || a.Event.Kind != history.EventFault {
		t.Errorf("event %+v, recovered %v", a.Event, f.recovered)
	}
}

// excusingFault is fakeFault declaring that it may cut its pod's connections and take the
// database away from every replica.
type excusingFault struct{ *fakeFault }

func (excusingFault) Excuses() []Excuse {
	return append([]Excuse{connectionErrors("test")}, databaseDown(AnyPod, false)...)
}

// TestApplyRecordsTheExcuses: the event carries what the fault declares, resolved for the pods
// it acted on, so that a saved run is re-judged alike; a fault that declares nothing records an
// empty declaration, not an old event's absent one.
func TestApplyRecordsTheExcuses(t *testing.T) {
	since := clockSince()
	log := slog.New(slog.DiscardHandler)
	a := Apply(context.Background(), excusingFault{&fakeFault{since: since}}, &Target{}, Plan{}, 0, since, log)
	want := []history.Excuse{{Status: 0, Pods: []string{"pod-x"}}, {Status: 503, Code: "unavailable"}, {Status: 503, Code: "overloaded"}}
	if !a.Event.Declared || !reflect.DeepEqual(a.Event.Excuses, want) {
		t.Errorf("event %+v, want declared %v", a.Event, want)
	}
	a = Apply(context.Background(), &fakeFault{since: since}, &Target{}, Plan{}, 0, since, log)
	if !a.Event.Declared || len(a.Event.Excuses) != 0 {
		t.Errorf("event %+v, want declared with no excuse", a.Event)
	}
	a = Apply(context.Background(), excusingFault{&fakeFault{since: since, injectErr: errors.New("boom")}}, &Target{}, Plan{}, 0, since, log)
	if !a.Event.Declared || !reflect.DeepEqual(a.Event.Excuses, want[1:]) {
		t.Errorf("failed injection's event %+v, want the any-pod excuses %v only", a.Event, want[1:])
	}
}

// The run's clock starts before the deployment, so it reads seconds when the traffic begins: the
// offset counts from the traffic's start, not from the clock's zero (a fault that fired at once
// hit every burst of the run, and none raced on a whole service before it).
func TestApplyCountsTheOffsetFromTheTrafficStart(t *testing.T) {
	since := clockSince()
	time.Sleep(50 * time.Millisecond) // the deployment, on the clock before the traffic
	start := since()
	f := &fakeFault{since: since}
	p := Plan{Fault: "fake", Offset: 30 * time.Millisecond}
	a := Apply(context.Background(), f, &Target{}, p, start, since, slog.New(slog.DiscardHandler))
	if !a.Ok() {
		t.Fatalf("Apply: inject %v, recover %v", a.InjectErr, a.RecoverErr)
	}
	if f.injectedAt < start+p.Offset || a.Event.Start < start+p.Offset {
		t.Errorf("fired at %v (event start %v); the traffic began at %v and the offset is %v", f.injectedAt, a.Event.Start, start, p.Offset)
	}
}

func TestApplyNotHeldAndFailures(t *testing.T) {
	since := clockSince()
	f := &fakeFault{since: since}
	a := Apply(context.Background(), f, &Target{}, Plan{Hold: time.Hour}, 0, since, slog.New(slog.DiscardHandler))
	if !a.Ok() || a.Event.End-a.Event.Start > time.Second {
		t.Errorf("a fault that is not held was held: %+v", a)
	}
	boom := errors.New("boom")
	a = Apply(context.Background(), &fakeFault{injectErr: boom, since: since}, &Target{}, Plan{}, 0, since, slog.New(slog.DiscardHandler))
	if !errors.Is(a.InjectErr, boom) || a.Ok() {
		t.Errorf("inject failure not reported: %+v", a)
	}
	// A cancelled run still recovers a fault it injected: nothing is left broken.
	ctx, cancel := context.WithCancel(context.Background())
	f = &fakeFault{held: true, since: since}
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	a = Apply(ctx, f, &Target{}, Plan{Hold: time.Hour}, 0, since, slog.New(slog.DiscardHandler))
	if a.RecoverErr != nil || !f.recovered {
		t.Errorf("cancelled during the hold: recovered %v, err %v", f.recovered, a.RecoverErr)
	}
}
