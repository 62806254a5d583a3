package attack

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// Batch is one traffic run: whom it registers, how hard, how a client retries, and which
// requests carry another tenant's key or a wrong one.
type Batch struct {
	// Customers are registered by Burst simultaneous requests each, one burst every Gap.
	Customers []history.Customer
	Burst     int
	Gap       time.Duration
	Retry     traffic.RetryParams
	Foreign   traffic.ForeignKeys
	Wrong     traffic.WrongKeys
	// Log takes the run's logging; nil: the sender's own.
	Log *slog.Logger
}

// Sender sends batches to the target, from wherever it sends them (this process, a Job of
// attacker pods, long-lived round servers), and returns each batch's history on the spec's time
// base and request numbering, as if one client had sent it. An error says the history cannot be
// trusted whole; what was recorded comes with it.
type Sender interface {
	Send(ctx context.Context, b Batch) ([]history.Op, error)
}

// Host sends from this process (traffic.Run), through URL.
type Host struct {
	// URL is the target as this process reaches it; Request its create request.
	URL     string
	Request request.Template
	// Keys are the tenants' keys, by tenant.
	Keys map[string]string
	// Clock and Seqs are the spec's time base and request numbering, shared by every batch.
	Clock *history.Clock
	Seqs  *history.Seqs
	Log   *slog.Logger
}

// Send runs b from this process.
func (h *Host) Send(ctx context.Context, b Batch) ([]history.Op, error) {
	if h.URL == "" {
		return nil, errors.New("send from this host: no URL reaches the target")
	}
	log := b.Log
	if log == nil {
		log = h.Log
	}
	out, err := traffic.Run(ctx, traffic.Params{URL: h.URL, Request: h.Request, Customers: b.Customers, Burst: b.Burst,
		Gap: b.Gap, Retry: b.Retry, Logger: log, Clock: h.Clock, Seqs: h.Seqs, Keys: h.Keys, Foreign: b.Foreign, Wrong: b.Wrong})
	if out == nil {
		return nil, err
	}
	return out.History, err
}

// Deadline bounds one plan's run from inside the cluster: the lead, every burst, and each
// request's worst case of a timeout and every retry with its longest wait, with a margin for a
// slow cluster.
func Deadline(p Plan, lead time.Duration) time.Duration {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = traffic.DefaultTimeout
	}
	maxWait := p.Retry.MaxWait
	if maxWait <= 0 {
		maxWait = traffic.DefaultMaxWait
	}
	bursts := time.Duration(len(p.Customers)) * p.Gap
	retries := time.Duration(p.Retry.MaxAttempts) * (maxWait + timeout)
	// Every retry chain waits at once, at most Retry.Concurrency requests in flight; one more
	// chain's length covers stragglers behind a full slot.
	return lead + bursts + timeout + 2*retries + time.Minute
}

// NodeClock is an attacker's clock as measured from the suite's host: Offset ahead of the
// host's, within Bound, and the Shift its ops move by (0 unless asked to correct and the offset
// is larger than its bound: clocks that agree as far as can be told are left alone). One shift
// for every batch: an estimate per batch, from a post and an answer across a busy port-forward,
// is scattered by tens of milliseconds and would move one attacker's ops against another's.
type NodeClock struct {
	Offset, Bound, Shift time.Duration
	// Measured is false for an attacker whose clock could not be read.
	Measured bool
}

// NewNodeClock is a clock measured offset ahead of the host's, within bound; with correct its
// ops move by the offset when it is larger than its bound.
func NewNodeClock(offset, bound time.Duration, correct bool) NodeClock {
	c := NodeClock{Offset: offset, Bound: bound, Measured: true}
	if correct && (offset > bound || offset < -bound) {
		c.Shift = offset
	}
	return c
}

// Correct moves ops' client times by the clock's shift (Correct): the handler intervals are the
// target's clocks and stay.
func (c NodeClock) Correct(ops []history.Op) {
	if c.Shift == 0 {
		return
	}
	for j := range ops {
		ops[j] = Correct(ops[j], c.Shift)
	}
}

// Residual bounds how far the clock, once its ops are corrected, may still be from the host's.
func (c NodeClock) Residual() time.Duration {
	d := c.Offset - c.Shift
	return max(d, -d) + c.Bound
}

// ClockDisagreement bounds how far two of clocks may disagree once corrected: the sum of the
// two largest residuals. One clock, or none, disagrees with nothing.
func ClockDisagreement(clocks []NodeClock) time.Duration {
	var first, second time.Duration
	for _, c := range clocks {
		r := c.Residual()
		switch {
		case r > first:
			first, second = r, first
		case r > second:
			second = r
		}
	}
	if len(clocks) < 2 {
		return 0
	}
	return first + second
}
