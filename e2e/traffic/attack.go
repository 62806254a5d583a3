package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/internal/ctxtime"
)

// Defaults for Params fields left zero.
const (
	// DefaultGap separates two customers' bursts unless the target file (traffic.gap) or
	// -e2e.gap says otherwise. A burst is what races, and its requests leave together whatever
	// the gap; the gap keeps one burst from queueing behind the last on the pods, which spreads
	// its requests out. 100 ms suits a slow service too: the orders example's coverage fell to
	// 45-68 % of orders at 50 ms, 98-100 % at 100 ms.
	DefaultGap = 100 * time.Millisecond
	// DefaultTimeout is the client's bound on one request, as a real client of the bundled
	// target would set it: twice the service's own bound on a request's database work (5 s,
	// after which it answers 503), which is also the service's write timeout (that bound plus
	// 5 s). The slowest answer a working service gives arrives
	// well inside it; a client that waited longer would wait for an answer the service itself
	// has given up on, and one that waited less would turn a slow but correct 503 into a
	// request without an answer, which the checker holds against the service (contract line
	// answer-arrives).
	DefaultTimeout = 10 * time.Second
)

// Params configure Run.
type Params struct {
	// URL is the base URL of the target, such as http://127.0.0.1:30080.
	URL string
	// Request is the target's create request (target.RequestOf), which every customer's
	// requests fill.
	Request request.Template
	// Customers are registered once each; see Customers.
	Customers []history.Customer
	// Burst is K, the number of simultaneous identical requests per customer.
	Burst int
	// Gap separates the start of two bursts (DefaultGap if zero).
	Gap time.Duration
	// Workers is the number of vegeta workers (2*Burst if zero), enough for a
	// burst to leave while stragglers of the previous one are still in flight.
	Workers uint64
	// Timeout bounds each request (DefaultTimeout if zero).
	Timeout time.Duration
	// MaxBody bounds each recorded body (DefaultMaxBody if zero).
	MaxBody int64
	// Retry configures the retry phase; MaxAttempts 0 skips it.
	Retry RetryParams
	// Transport sends the requests (NewTransport if nil). It must not keep
	// connections alive, or all of a customer's requests may reach one pod.
	Transport http.RoundTripper
	// Logger defaults to slog.Default.
	Logger *slog.Logger
	// Clock is the run's time base, shared by every traffic run of a spec (a new one starting
	// now if nil), so that their histories line up without re-basing.
	Clock *history.Clock
	// Seqs numbers each customer's requests across every traffic run of a spec (a new one if
	// nil): a customer sent again, after a fault say, gets new request ids. It must be nil
	// with a Shard: a shard numbers its requests by the plan (Shard.Seqs).
	Seqs *history.Seqs
	// Start, when set, is the agreed instant the bursts start from: Run waits until then, burst
	// j leaves at Start + j*Gap on the wall clock (BurstPacer.Start), and the Clock defaults to
	// one whose base is Start. Clients in several processes that agree on Start send their
	// shares of one customer's burst at the same instant, and their histories share a base.
	Start time.Time
	// Shard, when its Count is above 1, makes this run one of Count clients that share every
	// burst: it sends only the requests of each customer's burst that Shard.Seqs names.
	Shard Shard
	// Keys are the tenants' API keys, by tenant id: every request carries its customer's
	// tenant's key as "Authorization: Bearer <key>", or another tenant's when Foreign picks
	// it, and records whose it was (history.Op.KeyTenant), never the key. Every customer's
	// tenant must have one. Without keys no request carries any, as a service from before
	// API keys wants.
	Keys map[string]string
	// Foreign picks the requests that carry another tenant's key (none if zero).
	Foreign ForeignKeys
	// Wrong picks the requests that carry no key, a malformed key, an unknown key or another
	// tenant's, racing with their customers' own-key requests (none if zero; the specs send
	// DefaultWrongKeys). Each records its kind (history.Op.KeyKind).
	Wrong WrongKeys

	ring *keyring
}

// Shard is one of Count clients that together send every customer's Burst requests: client
// Index sends the requests whose sequence number s (0 to Burst-1) has s % Count == Index. The
// zero Shard is a single client sending everything.
type Shard struct {
	Index, Count int
}

// Seqs returns the request sequence numbers of one customer's burst that s sends, in order:
// the whole burst for the zero Shard.
func (s Shard) Seqs(burst int) []int {
	n, i := max(s.Count, 1), s.Index
	var seqs []int
	for seq := i; seq < burst; seq += n {
		seqs = append(seqs, seq)
	}
	return seqs
}

func (s Shard) validate() error {
	if s.Count < 0 || s.Index < 0 || (s.Count > 0 && s.Index >= s.Count) || (s.Count == 0 && s.Index != 0) {
		return fmt.Errorf("shard %d of %d: want 0 <= index < count", s.Index, s.Count)
	}
	return nil
}

// sharded reports whether p sends a share of each burst rather than all of it.
func (p *Params) sharded() bool { return p.Shard.Count > 1 }

func (p *Params) setDefaults() error {
	if p.URL == "" {
		return errors.New("no URL")
	}
	if p.Burst < 1 {
		return fmt.Errorf("burst %d: need at least 1", p.Burst)
	}
	if err := p.Shard.validate(); err != nil {
		return err
	}
	if p.sharded() && p.Seqs != nil {
		return errors.New("a shard numbers its requests by the plan: leave Seqs nil")
	}
	if err := p.Request.Validate(RequestHeader); err != nil {
		return err
	}
	ring, err := newKeyring(p.Keys, p.Request.Auth, p.Foreign, p.Wrong, p.Customers)
	if err != nil {
		return err
	}
	p.ring = ring
	if p.Gap <= 0 {
		p.Gap = DefaultGap
	}
	if p.Workers == 0 {
		p.Workers = 2 * uint64(max(1, len(p.Shard.Seqs(p.Burst))))
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.Transport == nil {
		p.Transport = NewTransport()
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Clock == nil {
		p.Clock = history.NewClock(time.Now())
		if !p.Start.IsZero() {
			p.Clock = history.NewClock(p.Start)
		}
	}
	if p.Seqs == nil {
		p.Seqs = history.NewSeqs()
	}
	p.Retry.setDefaults()
	return nil
}

// Outcome is what Run recorded.
type Outcome struct {
	// Clock is the time base that every Op's Call and Return count from.
	Clock *history.Clock
	// History holds every request of both phases, sorted by call time. Latencies and
	// throughput are computed from it (report.Metrics), not kept twice.
	History []history.Op
}

// Run sends Burst simultaneous registrations for each customer, one burst
// every Gap, then retries the requests that a real client would retry. A
// transport error or a bad response is recorded, not returned: Run returns an
// error only when the run itself is unusable (bad Params, a cancelled
// context, a result it cannot tie to a request), together with what it recorded.
func Run(ctx context.Context, p Params) (*Outcome, error) {
	if err := p.setDefaults(); err != nil {
		return nil, fmt.Errorf("traffic params: %w", err)
	}
	rec := NewRecorder(p.Clock, p.Transport, p.MaxBody)
	rec.SetObserve(p.Request.Observe)
	client := &http.Client{
		Transport: rec,
		Timeout:   p.Timeout,
		// A redirect is a response to record and judge, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	out := &Outcome{Clock: p.Clock}

	if !p.Start.IsZero() {
		if wait := time.Until(p.Start); wait > 0 {
			p.Logger.Info("waiting for the agreed start", "start", p.Start.UTC().Format(time.RFC3339Nano), "in", wait.Round(time.Millisecond))
		}
		if err := ctxtime.Sleep(ctx, time.Until(p.Start)); err != nil {
			return out, fmt.Errorf("wait for the start: %w", err)
		}
	}
	err := burst(ctx, p, rec, client)
	if err == nil && p.Retry.MaxAttempts > 0 {
		err = retry(ctx, p, rec, client)
	}
	out.History = rec.Ops()
	return out, err
}

// targeter yields the Burst requests of each customer in turn (a shard's share of them).
// vegeta calls it from many workers at once; each target is registered with the recorder
// before it is handed out.
func targeter(p Params, rec *Recorder) vegeta.Targeter {
	var (
		mu   sync.Mutex
		next int
	)
	share := p.Shard.Seqs(p.Burst)
	return func(t *vegeta.Target) error {
		if t == nil {
			return vegeta.ErrNilTarget
		}
		mu.Lock()
		i := next
		next++
		if i >= len(p.Customers)*len(share) {
			mu.Unlock()
			return vegeta.ErrNoTargets
		}
		c := p.Customers[i/len(share)]
		seq := share[i%len(share)]
		if !p.sharded() {
			seq = p.Seqs.Next(c) // under the lock: a customer's requests are numbered in order
		}
		mu.Unlock()
		keyTenant, keyKind := p.ring.forRequest(c, seq)
		op := history.Op{Customer: c, Seq: seq, Phase: history.PhaseBurst, KeyTenant: keyTenant, KeyKind: keyKind}
		id := rec.Expect(op)
		*t = vegeta.Target{
			Method: p.Request.Method,
			URL:    p.Request.URL(p.URL, c),
			Body:   p.Request.BodyOf(c),
			Header: p.header(op, id),
		}
		return nil
	}
}

// header is the headers of op's request: the target's, its request id and its key.
func (p *Params) header(op history.Op, id string) http.Header {
	h := p.Request.Header(op.Customer)
	h.Set(RequestHeader, id)
	if auth := p.ring.header(op); auth != "" {
		h.Set(p.Request.Auth.Header, auth)
	}
	return h
}

// ProgressEvery is how often a traffic run logs how far its bursts are.
var ProgressEvery = 10 * time.Second

// burst sends this shard's share of every customer's burst, paced by BurstPacer, through rec's
// client, and fails when a result came back without its request id or fewer came back than sent.
func burst(ctx context.Context, p Params, rec *Recorder, client *http.Client) error {
	size := len(p.Shard.Seqs(p.Burst))
	if size == 0 {
		p.Logger.Info("no burst request falls to this shard", "shard", p.Shard.Index, "of", p.Shard.Count, "burst", p.Burst)
		return nil
	}
	want := len(p.Customers) * size
	pacer := BurstPacer{Size: size, Gap: p.Gap, Bursts: len(p.Customers), Start: p.Start}
	atk := vegeta.NewAttacker(
		vegeta.Client(client), // keep-alive is off in the client's transport
		vegeta.Workers(p.Workers),
		vegeta.MaxBody(-1), // the recorder already bounds the body
	)
	p.Logger.Info("sending bursts", "customers", len(p.Customers), "burst", p.Burst, "pacer", pacer.String(), "workers", p.Workers)

	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()

	var (
		errs    []error
		results int
		m       vegeta.Metrics // for the log line; the report computes its own from the history
		done    atomic.Int64   // results so far, for the progress lines
	)
	stopProgress := logProgress(p, &done, want)
	defer stopProgress()
	for res := range atk.Attack(targeter(p, rec), pacer, 0, "stampede") {
		results++
		done.Add(1)
		m.Add(res)
		// A response carries its request id back (set by the recorder); a
		// transport error has no response, and the recorder holds its Op.
		if id := res.Headers.Get(RequestHeader); res.Code != 0 && id == "" {
			errs = append(errs, fmt.Errorf("result seq %d (status %d) carries no %s", res.Seq, res.Code, RequestHeader))
		}
	}
	m.Close()
	p.Logger.Info("bursts sent", "requests", results, "p50", m.Latencies.P50, "p99", m.Latencies.P99, "codes", m.StatusCodes)
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("burst phase: %w", err))
	}
	if results != want && ctx.Err() == nil {
		errs = append(errs, fmt.Errorf("burst phase: %d results, want %d", results, want))
	}
	return errors.Join(errs...)
}

// logProgress logs how many of want requests were answered (done) every ProgressEvery while
// bursts are out, until the returned func is called: a long run must not look hung.
func logProgress(p Params, done *atomic.Int64, want int) (stop func()) {
	finished := make(chan struct{})
	go func() {
		tick := time.NewTicker(ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				n := int(done.Load())
				p.Logger.Info("bursts in progress", "answered", n, "requests", want,
					"customers", len(p.Customers), "burst", p.Burst)
			case <-finished:
				return
			}
		}
	}()
	return func() { close(finished) }
}
