package attack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// A round server is an attacker pod that stays up and takes plans one at a time over HTTP, for
// traffic that comes in many short runs: a chaos spec launches a round of new bursts every
// second, and a Job per round would spend longer starting its pods than the round lasts. The
// suite reaches each server through a port-forward (nothing else reaches it: the pods' network
// policy admits no ingress), posts the same plan to every server of a run with its own shard,
// and merges their outputs as it merges a Job's pods' logs.
const (
	// RoundsPath takes a plan: POST, the plan as JSON (Plan's fields; never keys), answered
	// with the output (WriteOutput) once the plan has run.
	RoundsPath = "/rounds"
	// HealthPath answers 200 while the server takes rounds: the pod's readiness.
	HealthPath = "/healthz"
	// ClockPath answers GET with the server's clock, {"unix_ns": N}, read as the request is
	// handled: the suite estimates the node's clock offset from a few of them (ClockOffset).
	ClockPath = "/clock"
	// RoundsPort is the port a round server listens on.
	RoundsPort = 8081
	// DefaultMaxRounds bounds the rounds a server runs at once.
	DefaultMaxRounds = 16
	// maxPlanBytes bounds a posted plan: a few thousand customers as JSON.
	maxPlanBytes = 8 << 20
)

// Server runs posted plans from inside the cluster. Keys are the tenants' API keys, read from
// the server's own mounted file; a posted plan cannot carry any.
type Server struct {
	Keys map[string]string
	Log  *slog.Logger
	// Pod and Node name where it runs, for each output's trailer.
	Pod, Node string
	sem       chan struct{}
}

// NewServer returns a Server that runs at most maxRounds plans at once (DefaultMaxRounds if
// not positive) and refuses more with 429.
func NewServer(keys map[string]string, maxRounds int, pod, node string, log *slog.Logger) *Server {
	if maxRounds <= 0 {
		maxRounds = DefaultMaxRounds
	}
	return &Server{Keys: keys, Log: log, Pod: pod, Node: node, sem: make(chan struct{}, maxRounds)}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case HealthPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	case ClockPath:
		serveClock(w, r)
	case RoundsPath:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		s.round(w, r)
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such path: "+r.URL.Path+" (POST "+RoundsPath+", GET "+HealthPath+" or "+ClockPath+")")
	}
}

// round decodes a plan, runs it and writes its output. A plan that does not decode or validate
// is a 400 and sends nothing; a server already running its maximum of rounds answers 429 and
// sends nothing. Once a plan runs, the answer is 200 with the output, whose trailer carries the
// run's error if it had one, as a Job pod's would: what was sent is never dropped.
func (s *Server) round(w http.ResponseWriter, r *http.Request) {
	plan, err := DecodePlan(io.LimitReader(r.Body, maxPlanBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_plan", err.Error())
		return
	}
	if len(s.Keys) > 0 {
		plan.Keys = s.Keys
	}
	if err := plan.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "bad_plan", err.Error())
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		writeError(w, http.StatusTooManyRequests, "busy", fmt.Sprintf("already running %d rounds", cap(s.sem)))
		return
	}
	// The request's context: a suite that gave up on the round (its port-forward closed) stops it.
	ops, trailer, runErr := Run(r.Context(), plan, s.Log)
	trailer.Pod, trailer.Node = s.Pod, s.Node
	if runErr != nil {
		trailer.Error = runErr.Error()
		s.Log.Warn("round failed", "err", runErr, "ops", len(ops))
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if err := WriteOutput(w, ops, trailer); err != nil {
		s.Log.Error("writing a round's output", "err", err)
	}
}

// EncodePlan is a plan as a round server takes it: JSON of every field but the keys, which the
// server has from its own file.
func EncodePlan(p Plan) ([]byte, error) {
	p.Keys, p.KeysFile = nil, ""
	return json.Marshal(p)
}

// DecodePlan reads a plan that EncodePlan wrote; unknown fields, keys among them, are refused.
func DecodePlan(r io.Reader) (Plan, error) {
	var p Plan
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Plan{}, fmt.Errorf("decode the plan: %w", err)
	}
	if dec.More() {
		return Plan{}, errors.New("decode the plan: more than one JSON value")
	}
	return p, nil
}

// Clock is ClockPath's answer.
type Clock struct {
	UnixNano int64 `json:"unix_ns"`
}

// ClockHandler answers ClockPath alone, as a Job's attacker pod does while it runs (ClockAddrEnv),
// so that the suite can measure the pod's clock as it measures a round server's.
func ClockHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ClockPath {
			writeError(w, http.StatusNotFound, "not_found", "no such path: "+r.URL.Path+" (GET "+ClockPath+")")
			return
		}
		serveClock(w, r)
	})
}

// ClockAddrEnv names the environment variable that, set in a Job's attacker pod, makes it answer
// ClockPath on that address while it runs.
const ClockAddrEnv = "STAMPEDE_CLOCK_ADDR"

// serveClock answers GET with the clock, read as the request is handled.
func serveClock(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Clock{UnixNano: now.UnixNano()})
}

// MeasureClock reads the clock at url (a ClockPath) n times with client and returns how far
// ahead of this process's clock it is, within bound (ClockOffset of the readings). It fails
// when no reading arrived.
func MeasureClock(ctx context.Context, client *http.Client, url string, n int) (offset, bound time.Duration, err error) {
	var (
		sent, answered []time.Time
		readings       []int64
		errs           []error
	)
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, 0, fmt.Errorf("clock request: %w", err)
		}
		t1 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var c Clock
		err = json.NewDecoder(resp.Body).Decode(&c)
		t4 := time.Now()
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("%s: %v", resp.Status, err))
			continue
		}
		sent, answered, readings = append(sent, t1), append(answered, t4), append(readings, c.UnixNano)
	}
	offset, bound, ok := ClockOffset(sent, answered, readings)
	if !ok {
		return 0, 0, fmt.Errorf("no clock reading from %s: %w", url, errors.Join(append(errs, ctx.Err())...))
	}
	return offset, bound, nil
}

// ClockOffset estimates how far ahead of the caller's clock a server's clock is, from exchanges
// each of which the caller timed (sent, answered) around the server's reading: offset = reading
// - midpoint, off by at most half the exchange's round trip. It takes the exchange with the
// shortest round trip, as NTP's clock filter does, and returns its bound; ok is false without
// a usable exchange.
func ClockOffset(sent, answered []time.Time, readings []int64) (offset, bound time.Duration, ok bool) {
	for i := range min(len(sent), len(answered), len(readings)) {
		rtt := answered[i].Sub(sent[i])
		if readings[i] == 0 || rtt < 0 || (ok && rtt/2 >= bound) {
			continue
		}
		mid := sent[i].Add(rtt / 2)
		offset, bound, ok = time.Unix(0, readings[i]).Sub(mid), rtt/2, true
	}
	return offset, bound, ok
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+strings.ReplaceAll(allow, ", ", " or "))
}

// writeError writes {"error": code, "message": msg} with status.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": msg})
}
