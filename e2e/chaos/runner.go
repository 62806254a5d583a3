package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/internal/ctxtime"
)

// The fault runner, in the steps a chaos spec takes them: LaunchRounds of traffic, Apply the
// fault at the plan's offset and hold it, AwaitRecovery of a whole round, then Stop the rounds.
// The caller sends the traffic (RoundFunc) and judges the history; every step here works on
// the run's clock and is tested with a fake round function and a fake fault.

// RoundFunc sends round i and returns its history, recorded on the run's clock.
type RoundFunc func(ctx context.Context, i int) ([]history.Op, error)

// RoundsParams shape LaunchRounds.
type RoundsParams struct {
	// Every is how often a round is launched, whatever the rounds before it are doing, so the
	// resolution of the recovery time does not depend on retries.
	Every time.Duration
	// Max bounds the number of rounds; MaxInFlight the rounds running at once, retries
	// included, so that a fault making every request time out cannot pile up load.
	Max, MaxInFlight int
	// Since reads the run's clock.
	Since func() time.Duration
	// Run sends one round.
	Run RoundFunc
}

// Rounds are rounds of traffic in progress.
type Rounds struct {
	p        RoundsParams
	stop     context.CancelFunc
	launcher chan struct{}
	wg       sync.WaitGroup
	finished chan struct{} // one value per finished round

	mu     sync.Mutex
	rounds []Round
	errs   []error
}

// LaunchRounds starts launching rounds: the first before it returns, then one every p.Every.
func LaunchRounds(ctx context.Context, p RoundsParams) *Rounds {
	launchCtx, stop := context.WithCancel(ctx)
	r := &Rounds{p: p, stop: stop, launcher: make(chan struct{}), finished: make(chan struct{}, max(p.Max, 1))}
	sem := make(chan struct{}, max(p.MaxInFlight, 1))
	if p.Max < 1 {
		close(r.launcher)
		return r
	}
	sem <- struct{}{}
	r.start(ctx, 0, sem)
	go r.launch(ctx, launchCtx, sem)
	return r
}

func (r *Rounds) launch(ctx, launchCtx context.Context, sem chan struct{}) {
	defer close(r.launcher)
	tick := time.NewTicker(r.p.Every)
	defer tick.Stop()
	for i := 1; i < r.p.Max; i++ {
		select {
		case <-tick.C:
		case <-launchCtx.Done():
			return
		}
		select {
		case sem <- struct{}{}:
		case <-launchCtx.Done():
			return
		}
		r.start(ctx, i, sem)
	}
}

// start runs round i, which holds a slot of sem, in a goroutine of its own.
func (r *Rounds) start(ctx context.Context, i int, sem chan struct{}) {
	r.wg.Add(1)                                  // before Stop's Wait: Stop waits for the launcher to return first
	round := Round{Index: i, Start: r.p.Since()} // when launched, not when its goroutine runs
	go func() {
		defer func() { <-sem; r.wg.Done(); r.finished <- struct{}{} }()
		ops, err := r.p.Run(ctx, i) // the parent context: a launched round is not cut short
		round.Ops = ops
		r.mu.Lock()
		defer r.mu.Unlock()
		r.rounds = append(r.rounds, round)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("round %d: %w", i, err))
		}
	}()
}

// Finished returns the rounds that have finished so far, in launch order.
func (r *Rounds) Finished() []Round {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.rounds)
	slices.SortFunc(out, func(a, b Round) int { return a.Index - b.Index })
	return out
}

// Stop stops launching, waits for the rounds in flight, and returns every round in launch
// order with their errors joined.
func (r *Rounds) Stop() ([]Round, error) {
	r.stop()
	<-r.launcher // no wg.Add after this, so that Wait is not racing with it
	r.wg.Wait()
	r.mu.Lock()
	err := errors.Join(r.errs...)
	r.mu.Unlock()
	return r.Finished(), err
}

// AwaitRecovery waits until a round launched at or after end has succeeded whole (Recovery,
// with byDesign), for at most bound. It reports whether one did.
func (r *Rounds) AwaitRecovery(ctx context.Context, end, bound time.Duration, byDesign func(history.Op) bool) bool {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for {
		if _, ok := Recovery(r.Finished(), end, byDesign); ok {
			return true
		}
		select {
		case <-r.finished:
		case <-r.launcher:
			// Nothing more will be launched: what is in flight decides.
			if r.inFlightDone(ctx, deadline.C) {
				_, ok := Recovery(r.Finished(), end, byDesign)
				return ok
			}
			return false
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// inFlightDone waits for the launched rounds to finish, unless the deadline or ctx comes first.
func (r *Rounds) inFlightDone(ctx context.Context, deadline <-chan time.Time) bool {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-deadline:
	case <-ctx.Done():
	}
	return false
}

// Applied is what Apply did: the fault's event on the run's clock and its own failures.
type Applied struct {
	Event                 history.Event
	InjectErr, RecoverErr error
}

// Ok says that the fault was injected and recovered.
func (a Applied) Ok() bool { return a.InjectErr == nil && a.RecoverErr == nil }

// Apply fires f at the plan's offset into the traffic, which began at trafficStart on the run's
// clock (since reads it; the clock starts before the deployment, so its zero is not the
// traffic's), holds it for the plan's hold when it is a held fault, and recovers it (with a
// context that outlives ctx's cancellation: a fault is never left in place). The event's start
// and end, on the run's clock, bracket the injection and the recovery.
func Apply(ctx context.Context, f Fault, t *Target, p Plan, trafficStart time.Duration, since func() time.Duration, log *slog.Logger) Applied {
	a := Applied{Event: history.Event{Kind: history.EventFault, Name: f.Name()}}
	// Pacing the fault on purpose: it fires at the planned offset into the traffic.
	if err := ctxtime.Sleep(ctx, trafficStart+p.Offset-since()); err != nil {
		a.InjectErr = fmt.Errorf("waiting for the fault's offset: %w", err)
		return a
	}
	a.Event.Start = since()
	log.Info("injecting fault", "fault", f.Name(), "plan", p.String())
	inj, err := f.Inject(ctx, t, p)
	if err != nil {
		a.InjectErr = err
		a.Event.End = since()
		// What it may have done to every replica; no pod is named, so none is excused alone.
		a.Event.Declared, a.Event.Excuses, a.Event.ChangesPods = true, Resolve(f, &Injection{}), ChangesPods(f)
		return a
	}
	a.Event.Target, a.Event.Detail = inj.Target, inj.Detail
	a.Event.Declared, a.Event.Excuses, a.Event.ChangesPods = true, Resolve(f, inj), ChangesPods(f)
	if !inj.At.IsZero() {
		// The wall-clock instant on the history's base: now on it, less the time since.
		a.Event.Landed = since() - time.Since(inj.At)
	}
	log.Info("fault injected", "fault", f.Name(), "target", inj.Target, "detail", inj.Detail, "held", inj.Held)
	if inj.Held {
		_ = ctxtime.Sleep(ctx, p.Hold) // pacing the fault on purpose: the planned hold
	}
	log.Info("recovering fault", "fault", f.Name(), "target", inj.Target)
	a.RecoverErr = inj.Recover(context.WithoutCancel(ctx))
	a.Event.End = since()
	log.Info("fault ended", "fault", f.Name(), "event", a.Event.String(), "recover_err", a.RecoverErr)
	return a
}
