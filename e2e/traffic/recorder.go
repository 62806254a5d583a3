package traffic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sort"
	"sync"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
)

// RequestHeader carries the history.RequestID of a request. The Recorder reads it
// to know which customer, seq and attempt a request belongs to, and copies it
// into the response headers so that a vegeta.Result can be tied back to its Op.
const RequestHeader = "X-Stampede-Request"

// DefaultMaxBody bounds the recorded response body.
const DefaultMaxBody = 4096

// errUnplanned is returned for a request whose RequestHeader the Recorder was
// not told about: it is never sent, so that nothing unrecorded reaches the service.
var errUnplanned = errors.New("request was not planned")

// Recorder is an http.RoundTripper that records every request it sends as a
// history.Op, with call and return times measured from one base time. The
// response body is read inside RoundTrip, so the return time includes it.
type Recorder struct {
	clock   *history.Clock
	next    http.RoundTripper
	maxBody int64
	// observe names the headers of the serving pod and the handler's interval (SetObserve).
	observe request.Observe

	mu      sync.Mutex
	pending map[string]history.Op
	ops     []history.Op
	// strs keeps one copy of each body and name the ops carry: replicas answer a customer's
	// requests alike, and a long run would otherwise hold every copy.
	strs history.Interner
}

// NewRecorder returns a Recorder that stamps times on clock, sends through next (a transport
// with keep-alive off, from NewTransport, unless a test wants otherwise) and keeps at most
// maxBody bytes of each body (DefaultMaxBody if maxBody <= 0).
func NewRecorder(clock *history.Clock, next http.RoundTripper, maxBody int64) *Recorder {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return &Recorder{clock: clock, next: next, maxBody: maxBody, pending: make(map[string]history.Op)}
}

// SetObserve names the headers the recorder reads the serving pod and the handler's interval
// from (the target's observability); an empty name is not read, and its Op field stays empty.
func (r *Recorder) SetObserve(o request.Observe) { r.observe = o }

// NewTransport returns an http.Transport that opens a new connection for every
// request. Keep-alive would pin a client to one pod behind a Service
// (kubernetes#38456) and the burst would never reach two pods.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:             nil, // never leave the test network through a proxy
		DisableKeepAlives: true,
	}
}

// Expect registers op before its request is sent and returns the value for
// RequestHeader.
func (r *Recorder) Expect(op history.Op) string {
	id := op.ID()
	r.mu.Lock()
	r.pending[id] = op
	r.mu.Unlock()
	return id
}

// Ops returns the recorded ops sorted by call time, followed by an Op with an
// Error for every expected request that never reached RoundTrip.
func (r *Recorder) Ops() []history.Op {
	r.mu.Lock()
	ops := append([]history.Op(nil), r.ops...)
	for _, op := range r.pending {
		op.Error = "request was never sent"
		ops = append(ops, op)
	}
	r.mu.Unlock()
	sort.SliceStable(ops, func(i, j int) bool {
		if ops[i].Call != ops[j].Call {
			return ops[i].Call < ops[j].Call
		}
		return ops[i].ID() < ops[j].ID()
	})
	return ops
}

// RoundTrip implements http.RoundTripper.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	id := req.Header.Get(RequestHeader)
	r.mu.Lock()
	op, ok := r.pending[id]
	delete(r.pending, id)
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("record %s %q: %w", RequestHeader, id, errUnplanned)
	}

	var conn struct {
		sync.Mutex
		local  string
		reused bool
	}
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		conn.Lock()
		defer conn.Unlock()
		conn.local, conn.reused = info.Conn.LocalAddr().String(), info.Reused
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))

	op.Call = r.clock.Since()
	resp, err := r.next.RoundTrip(req)
	var body []byte
	if err == nil {
		body, err = readBounded(resp.Body, r.maxBody)
	}
	op.Return = r.clock.Since()

	conn.Lock()
	op.LocalAddr, op.ConnReused = conn.local, conn.reused
	conn.Unlock()
	if resp != nil {
		r.recordAnswer(&op, resp, body)
	}
	if err != nil {
		op.Error = err.Error()
	}
	r.mu.Lock()
	r.strs.Op(&op)
	r.ops = append(r.ops, op)
	r.mu.Unlock()

	if err != nil {
		return nil, err
	}
	resp.Header.Set(RequestHeader, id)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// recordAnswer records in op what the checks read of an answer: its status, the pod that
// served it, the headers the API promises, the handler's interval and the body.
func (r *Recorder) recordAnswer(op *history.Op, resp *http.Response, body []byte) {
	op.Status = resp.StatusCode
	if r.observe.PodHeader != "" {
		op.Pod = resp.Header.Get(r.observe.PodHeader)
	}
	op.RetryAfter = resp.Header.Get("Retry-After")
	op.ContentType = intern(resp.Header.Get("Content-Type"), "application/json")
	op.CacheControl = intern(resp.Header.Get("Cache-Control"), "no-store")
	op.WWWAuthenticate = intern(resp.Header.Get("WWW-Authenticate"), "Bearer")
	op.HeadersRecorded = true
	if start, end, ok := r.handlerInterval(resp.Header); ok {
		// Wall time against the base's wall time: the pod's clock, on the run's time base.
		op.ServerStart, op.ServerEnd = start.Sub(r.clock.Base()), end.Sub(r.clock.Base())
	}
	op.Body = string(body)
}

// readBounded reads at most limit bytes of body, drains the rest so that a
// broken stream still shows up as an error, and closes it.
func readBounded(body io.ReadCloser, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit))
	if err == nil {
		_, err = io.Copy(io.Discard, body)
	}
	return b, errors.Join(err, body.Close())
}

// intern returns common, the one copy of the value nearly every answer carries, when v equals
// it, and v otherwise: a million recorded answers then hold one string, not a million copies.
func intern(v, common string) string {
	if v == common {
		return common
	}
	return v
}

// handlerInterval reads the handler's interval from the header observe names, if any.
func (r *Recorder) handlerInterval(h http.Header) (start, end time.Time, ok bool) {
	if r.observe.IntervalHeader == "" {
		return time.Time{}, time.Time{}, false
	}
	return parseHandlerInterval(h.Values(r.observe.IntervalHeader))
}
