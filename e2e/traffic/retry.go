package traffic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/internal/ctxtime"
)

// Defaults for RetryParams fields left zero.
const (
	DefaultMaxWait     = 2 * time.Second
	DefaultBackoff     = 100 * time.Millisecond
	DefaultConcurrency = 16
)

// RetryParams describe how a real client retries a registration that did not
// get a token. Each burst request that ended retryable starts its own chain of
// retries, as each of the K clients would.
type RetryParams struct {
	// MaxAttempts is the number of retries per request; 0 means no retry phase.
	MaxAttempts int
	// Statuses are retried (409 and 503 if empty).
	Statuses []int
	// NoRetryOnError stops a chain at a transport error or timeout instead of
	// retrying it; the registration is idempotent by key, so a real client
	// retries by default.
	NoRetryOnError bool
	// MaxWait caps the wait that a Retry-After header asks for
	// (DefaultMaxWait if zero), so a wrong header cannot stall the suite.
	MaxWait time.Duration
	// Backoff is the wait when a response has no usable Retry-After
	// (DefaultBackoff if zero).
	Backoff time.Duration
	// Concurrency bounds the retry requests in flight (DefaultConcurrency if zero). Every
	// chain waits its Retry-After at once, as the clients would: bounding the chains instead
	// queued their waits one behind another (134 retries asked to wait a second took 9 s).
	Concurrency int

	// sleep is replaced in tests to record waits instead of taking them.
	sleep func(context.Context, time.Duration) error
}

func (r *RetryParams) setDefaults() {
	if len(r.Statuses) == 0 {
		r.Statuses = []int{http.StatusConflict, http.StatusServiceUnavailable}
	}
	if r.MaxWait <= 0 {
		r.MaxWait = DefaultMaxWait
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultBackoff
	}
	if r.Concurrency <= 0 {
		r.Concurrency = DefaultConcurrency
	}
	if r.sleep == nil {
		r.sleep = ctxtime.Sleep
	}
}

// retryable reports whether a real client would send op again.
func (r *RetryParams) retryable(op history.Op) bool {
	if op.Unknown() {
		return !r.NoRetryOnError
	}
	return slices.Contains(r.Statuses, op.Status)
}

// Wait returns how long to wait before retrying op: its Retry-After (seconds or
// an HTTP date) if usable, Backoff otherwise, never more than MaxWait.
func (r *RetryParams) Wait(op history.Op, now time.Time) time.Duration {
	d, ok := ParseRetryAfter(op.RetryAfter, now)
	if !ok {
		d = r.Backoff
	}
	return min(max(d, 0), r.MaxWait)
}

// ParseRetryAfter parses a Retry-After header value: delay seconds or an
// HTTP date, relative to now.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second) // no overflow; MaxWait caps it anyway
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now), true
	}
	return 0, false
}

// retry runs one chain per retryable burst request, each until it gets a
// response that is not retryable or runs out of attempts. The chains run at
// once; at most p.Retry.Concurrency of their requests are in flight.
func retry(ctx context.Context, p Params, rec *Recorder, client *http.Client) error {
	var starts []history.Op
	for _, op := range rec.Ops() {
		if op.Phase == history.PhaseBurst && p.Retry.retryable(op) {
			starts = append(starts, op)
		}
	}
	p.Logger.Info("retrying", "requests", len(starts), "max_attempts", p.Retry.MaxAttempts)

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, p.Retry.Concurrency)
	)
	for _, op := range starts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := chain(ctx, p, rec, client, sem, op); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	retries, codes := 0, map[int]int{}
	for _, op := range rec.Ops() {
		if op.Phase == history.PhaseRetry {
			retries++
			codes[op.Status]++
		}
	}
	p.Logger.Info("retries sent", "requests", retries, "codes", codes)
	return errors.Join(errs...)
}

// chain retries last until it is no longer retryable, each request holding a
// slot of sem while in flight. Only a cancelled context is an error; failed
// requests are recorded.
func chain(ctx context.Context, p Params, rec *Recorder, client *http.Client, sem chan struct{}, last history.Op) error {
	first := last // whose request it is and which key it carries, whatever lastOp finds
	for attempt := 1; attempt <= p.Retry.MaxAttempts && p.Retry.retryable(last); attempt++ {
		if err := p.Retry.sleep(ctx, p.Retry.Wait(last, time.Now())); err != nil {
			return fmt.Errorf("retry %s: %w", last.ID(), err)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("retry %s: %w", last.ID(), ctx.Err())
		}
		// A client retries with the credentials it tried first.
		op := history.Op{Customer: first.Customer, Seq: first.Seq, Attempt: attempt, Phase: history.PhaseRetry,
			KeyTenant: first.KeyTenant, KeyKind: first.KeyKind}
		id := rec.Expect(op)
		req, err := http.NewRequestWithContext(ctx, p.Request.Method, p.Request.URL(p.URL, op.Customer), bytes.NewReader(p.Request.BodyOf(op.Customer)))
		if err != nil {
			<-sem
			return fmt.Errorf("build retry %s: %w", id, err)
		}
		req.Header = p.header(op, id)
		if resp, err := client.Do(req); err == nil {
			// The recorder already read the body; this cannot fail.
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		<-sem
		if ctx.Err() != nil {
			return fmt.Errorf("retry %s: %w", id, ctx.Err())
		}
		last = lastOp(rec, id)
	}
	return nil
}

// lastOp finds the recorded Op with the given id.
func lastOp(rec *Recorder, id string) history.Op {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := len(rec.ops) - 1; i >= 0; i-- {
		if rec.ops[i].ID() == id {
			return rec.ops[i]
		}
	}
	return history.Op{Error: "not recorded"}
}
