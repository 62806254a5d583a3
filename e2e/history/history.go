// Package history holds the record of a stampede run: one Op per HTTP request,
// with call and return times against one base time. Traffic writes it, checks read
// it; neither side needs the other.
package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Phase says which part of a run sent an Op.
type Phase string

const (
	// PhaseBurst marks the simultaneous first-registration requests.
	PhaseBurst Phase = "burst"
	// PhaseRetry marks a client retry after a 409, 503 or transport error.
	PhaseRetry Phase = "retry"
)

// Customer is one planned registration: the key the service must map to exactly
// one database row, and the contact details its requests send, which that row must hold (empty:
// none sent, the column stays NULL). Plans saved before the suite recorded them have none.
type Customer struct {
	Index     int    `json:"index"`
	Tenant    string `json:"merchant_id"`
	EntityKey string `json:"external_id"`
	Email     string `json:"email,omitempty"`
	Name      string `json:"name,omitempty"`
}

// Key identifies a Customer by its natural key, as the database does.
type Key struct {
	Tenant    string
	EntityKey string
}

// Key returns the natural key of c.
func (c Customer) Key() Key { return Key{Tenant: c.Tenant, EntityKey: c.EntityKey} }

// String formats c for logs and reports.
func (c Customer) String() string {
	return fmt.Sprintf("#%d %s/%s", c.Index, c.Tenant, c.EntityKey)
}

// Op is one request and its outcome. Call and Return are durations since the
// run's base time; Return is zero only for an Op that never returned.
type Op struct {
	Customer Customer `json:"customer"`
	Seq      int      `json:"seq"`
	Attempt  int      `json:"attempt"`
	Phase    Phase    `json:"phase"`
	// KeyTenant is the tenant whose API key the request carried: the customer's own, another
	// tenant's (a cross-tenant request the service must refuse), or "" for no key at all.
	// The key itself is never recorded.
	KeyTenant string `json:"key_merchant,omitempty"`
	// KeyKind says which kind of key the request carried (SentKey). Histories recorded before
	// it existed, and runs that sent no keys at all, leave it empty: SentKey then derives it
	// from KeyTenant.
	KeyKind KeyKind       `json:"key_kind,omitempty"`
	Call    time.Duration `json:"call_ns"`
	Return  time.Duration `json:"return_ns"`
	// Status is the HTTP status code, 0 when no response arrived.
	Status int `json:"status"`
	// Body is the response body, cut at the recorder's bound.
	Body string `json:"body,omitempty"`
	// Error is a transport error or timeout; an Op with an Error has an
	// unknown outcome even when Status is set (the body read failed).
	Error string `json:"error,omitempty"`
	// Pod is the X-Served-By header, empty when no response arrived.
	Pod        string `json:"pod,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	// ContentType, CacheControl and WWWAuthenticate are the response's headers of those names,
	// which the API promises per answer (check.API); empty when absent, and when not
	// recorded: see HeadersRecorded.
	ContentType     string `json:"content_type,omitempty"`
	CacheControl    string `json:"cache_control,omitempty"`
	WWWAuthenticate string `json:"www_authenticate,omitempty"`
	// LocalAddr is the client side of the connection, to prove that requests did
	// not share a kept-alive connection.
	LocalAddr  string `json:"local_addr,omitempty"`
	ConnReused bool   `json:"conn_reused,omitempty"`
	// HeadersRecorded says the recorder recorded ContentType, CacheControl and WWWAuthenticate,
	// so that an empty one was absent from the response. It is false in histories recorded
	// before the recorder kept them: their answers are judged without those headers.
	HeadersRecorded bool `json:"headers_recorded,omitempty"`
	// ServerStart and ServerEnd are the interval in which the serving pod's handler worked on
	// the request, as the pod reported it (Server-Timing), on the pod's wall clock and counted
	// from the run's base time like Call and Return. Both are zero when the response carried
	// none (an older service, no response); see HasServerInterval.
	ServerStart time.Duration `json:"server_start_ns,omitempty"`
	ServerEnd   time.Duration `json:"server_end_ns,omitempty"`
}

// KeyKind is the kind of API key a request carried, relative to its customer's tenant.
type KeyKind string

// The kinds of key a request can carry.
const (
	// KeyOwn is the customer's tenant's valid key: the only one that may register it.
	KeyOwn KeyKind = "own"
	// KeyForeign is another tenant's valid key: the service must refuse it 403.
	KeyForeign KeyKind = "foreign"
	// KeyNone is no Authorization header at all: 401.
	KeyNone KeyKind = "none"
	// KeyMalformed is an Authorization header that is not "Bearer <API key>" or whose key is
	// not in the API key format (service/apikey): 401.
	KeyMalformed KeyKind = "malformed"
	// KeyUnknown is a key in the API key format that names no tenant: 401.
	KeyUnknown KeyKind = "unknown"
)

// SentKey returns the kind of key o carried: KeyKind when recorded, otherwise what KeyTenant
// says, as in histories from before KeyKind (the customer's tenant: own, "": none, another
// tenant: foreign).
func (o Op) SentKey() KeyKind {
	switch {
	case o.KeyKind != "":
		return o.KeyKind
	case o.KeyTenant == "":
		return KeyNone
	case o.KeyTenant == o.Customer.Tenant:
		return KeyOwn
	default:
		return KeyForeign
	}
}

// ID names an Op in reports: customer index, request seq and attempt.
func (o Op) ID() string { return RequestID(o.Customer.Index, o.Seq, o.Attempt) }

// RequestID formats the identity of one request; it is also the value of the
// header that ties a response back to its request.
func RequestID(customer, seq, attempt int) string {
	return fmt.Sprintf("%d/%d/%d", customer, seq, attempt)
}

// Responded reports whether a complete HTTP response was recorded.
func (o Op) Responded() bool { return o.Error == "" && o.Status != 0 }

// Succeeded reports whether o got a complete 2xx response: what a client takes for success and
// reads a token from. That the API promises exactly 200 is check.RuleAPIShape's, so that a 201
// still has its token judged.
func (o Op) Succeeded() bool { return o.Responded() && o.Status >= 200 && o.Status < 300 }

// Unknown reports whether the outcome of o is unknown: the request may or may
// not have taken effect.
func (o Op) Unknown() bool { return !o.Responded() }

// HasServerInterval reports whether the pod that served o reported its handler's interval.
func (o Op) HasServerInterval() bool {
	return (o.ServerStart != 0 || o.ServerEnd != 0) && o.ServerStart <= o.ServerEnd
}

// Overlaps reports whether the call/return intervals of o and p intersect.
func (o Op) Overlaps(p Op) bool {
	return o.Return > 0 && p.Return > 0 && o.Call < p.Return && p.Call < o.Return
}

// WriteJSONL writes ops to w, one JSON object a line.
func WriteJSONL(w io.Writer, ops []Op) error { return writeJSONL(w, ops, "op") }

// ReadJSONL reads ops written by WriteJSONL. Equal strings of the ops share one copy
// (Interner): a history read back holds each distinct body once, as its replicas sent it.
func ReadJSONL(r io.Reader) ([]Op, error) { return readOps(r, 0) }

// ReadJSONLFile reads the ops that WriteJSONL wrote to the file at path, as ReadJSONL does,
// into a slice of exactly their number: it counts the file's lines first, so that a history of
// a million ops (216 MB of Op) is not grown by appending, which holds the old and the new
// backing array at once and leaves the last one up to a quarter empty.
func ReadJSONLFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ops: %w", err)
	}
	defer f.Close()
	lines, err := countLines(f)
	if err != nil {
		return nil, fmt.Errorf("read ops from %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read ops from %s: %w", path, err)
	}
	// Two more: for a last line without its newline, and for readJSONL's try past the last. The
	// decoder asks for a few KB at a time: read in megabytes, not in 200,000 system calls.
	ops, err := readOps(bufio.NewReaderSize(f, 1<<20), lines+2)
	if err != nil {
		return nil, fmt.Errorf("read ops from %s: %w", path, err)
	}
	return ops, nil
}

// readOps is ReadJSONL into a slice with room for n ops to begin with.
func readOps(r io.Reader, n int) ([]Op, error) {
	var in Interner
	return readJSONL(r, "op", make([]Op, 0, n), in.Op)
}

// countLines counts the newlines r holds.
func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 1<<20)
	n := 0
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// writeJSONL writes items to w, one JSON object a line; what names them in errors.
func writeJSONL[T any](w io.Writer, items []T, what string) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range items {
		if err := enc.Encode(&items[i]); err != nil {
			return fmt.Errorf("encode %s %d: %w", what, i+1, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flush %ss: %w", what, err)
	}
	return nil
}

// readJSONL reads what writeJSONL wrote, refusing unknown fields, appending to items; it passes
// each item to each, if not nil, before keeping it.
func readJSONL[T any](r io.Reader, what string, items []T, each func(*T)) ([]T, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var zero T
	for {
		// Decoded in place: an item decoded into a variable of its own would escape to the heap,
		// a garbage copy per line.
		items = append(items, zero)
		item := &items[len(items)-1]
		err := dec.Decode(item)
		if errors.Is(err, io.EOF) {
			return items[:len(items)-1], nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s %d: %w", what, len(items), err)
		}
		if each != nil {
			each(item)
		}
	}
}

// ByCustomer groups ops by customer key, keeping their order.
func ByCustomer(ops []Op) map[Key][]Op {
	m := make(map[Key][]Op)
	for _, op := range ops {
		k := op.Customer.Key()
		m[k] = append(m[k], op)
	}
	return m
}
