// Package httpapi is the token service's HTTP interface: registration, JWKS and health on
// the main listener, metrics on their own (MetricsHandler). Every response of the main
// listener carries X-Served-By, and every error is JSON.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stampede-e2e/stampede/internal/ctxtime"
	"github.com/stampede-e2e/stampede/service/apikey"
	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/store"
	"github.com/stampede-e2e/stampede/service/internal/token"
)

// Store is what the handler needs from the database layer; *store.Store implements it.
type Store interface {
	Find(ctx context.Context, k store.Key) (*store.Customer, error)
	Create(ctx context.Context, nc store.NewCustomer) (*store.Customer, bool, error)
}

// Pinger checks that the database answers; *store.Checker implements it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Params configure a Server.
type Params struct {
	Store Store
	// DBCheck is what WatchDatabase pings: a connection of its own (store.Checker), not the
	// Store's pool, which a burst can fill.
	DBCheck  Pinger
	Signer   *token.Signer
	Strategy config.Strategy
	// RecheckDelay is the TOKENSVC_LEGACY_RECHECK_DELAY test knob: a pause between
	// the lookup and create(), to widen the race window. 0 in production.
	RecheckDelay time.Duration
	// RequestTimeout bounds the database work of one request (default 5s).
	RequestTimeout time.Duration
	// DBCheckInterval is how often WatchDatabase pings the database, and the bound on
	// each ping (default 1s).
	DBCheckInterval time.Duration
	// MaxInFlight caps the registrations doing database work at once (default 64); one
	// more is answered 503 overloaded at once rather than queued.
	MaxInFlight int
	// APIKeys are the merchants' API keys; required unless AuthDisabled.
	APIKeys apikey.Set
	// AuthDisabled accepts registrations without an API key, for any merchant.
	AuthDisabled bool
	PodName      string
	Logger       *slog.Logger
	Metrics      *Metrics
}

// Server serves the API.
type Server struct {
	p        Params
	jwks     []byte
	routes   map[string]route
	draining atomic.Bool
	db       atomic.Pointer[dbState]
	// inFlight holds a token per registration doing database work.
	inFlight chan struct{}
	hooks    hooks
}

type route struct {
	methods []string
	handler http.HandlerFunc
}

// TokenResponse is the body of a successful POST /v1/tokens. Both a new and an
// existing customer get 200, as the legacy API did; Created tells them apart.
type TokenResponse struct {
	Token      string `json:"token"`
	CustomerID string `json:"customer_id"`
	Created    bool   `json:"created"`
}

// New returns a Server.
func New(p Params) (*Server, error) {
	if p.Store == nil || p.DBCheck == nil || p.Signer == nil || p.Logger == nil || p.Metrics == nil {
		return nil, errors.New("new server: Store, DBCheck, Signer, Logger and Metrics are required")
	}
	if len(p.APIKeys) == 0 && !p.AuthDisabled {
		return nil, errors.New("new server: no API keys, and authentication is not disabled")
	}
	if _, err := config.ParseStrategy(string(p.Strategy)); err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	if p.RequestTimeout <= 0 {
		p.RequestTimeout = 5 * time.Second
	}
	if p.DBCheckInterval <= 0 {
		p.DBCheckInterval = time.Second
	}
	if p.MaxInFlight <= 0 {
		p.MaxInFlight = 64
	}
	jwks, err := token.MarshalJWKS(p.Signer.JWKS())
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	s := &Server{p: p, jwks: jwks, inFlight: make(chan struct{}, p.MaxInFlight)}
	// Up until a check says otherwise: the service builds its server once start-up has
	// prepared the database.
	s.db.Store(&dbState{up: true, since: time.Now()})
	p.Metrics.databaseUp.Set(1)
	s.routes = map[string]route{
		"/v1/tokens":             {[]string{http.MethodPost}, s.register},
		"/.well-known/jwks.json": {[]string{http.MethodGet, http.MethodHead}, s.serveJWKS},
		"/livez":                 {[]string{http.MethodGet, http.MethodHead}, s.livez},
		"/readyz":                {[]string{http.MethodGet, http.MethodHead}, s.readyz},
	}
	return s, nil
}

// SetDraining makes /readyz fail so that load balancers stop sending traffic.
// Readiness fails for nothing else: see WatchDatabase for why not for the database.
func (s *Server) SetDraining() { s.draining.Store(true) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header().Set("X-Served-By", s.p.PodName)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	rt, known := s.routes[r.URL.Path]
	label := r.URL.Path
	if !known {
		label = "other" // bounded label values whatever clients send
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.p.Logger.Error("handler panicked", "route", label, "panic", v)
			if !rec.wrote {
				writeError(rec, internalError())
			}
		}
		s.p.Metrics.requests.WithLabelValues(label, strconv.Itoa(rec.status)).Inc()
		s.p.Metrics.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
	}()
	dispatch(rec, r, rt, known)
}

// dispatch answers r with rt's handler when the path is known and the method one of rt's, and
// otherwise with the API's JSON 404 or 405: the API and the metrics listener answer alike.
func dispatch(w http.ResponseWriter, r *http.Request, rt route, known bool) {
	switch {
	case !known:
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.URL.Path})
	case !slices.Contains(rt.methods, r.Method):
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: r.Method + " not allowed; use " + strings.Join(rt.methods, ", ")})
	default:
		rt.handler(w, r)
	}
}

// register answers POST /v1/tokens in the seed's flow: authenticate, decode, look the customer
// up or create it, sign its token. Each step returns the refusal to answer when it fails.
func (s *Server) register(rw http.ResponseWriter, r *http.Request) {
	// Every answer, error or not, reports when this handler worked on the request (see
	// HandlerTimingHeader); until the request is decoded, that is since the handler began.
	w := &timedWriter{ResponseWriter: s.hooks.answerWriter(rw), start: time.Now(), hooks: s.hooks}
	t := &tally{metrics: s.p.Metrics, strategy: string(s.p.Strategy)}
	// A request that ends without an outcome (a panic, which the server answers 500) counts
	// as error.
	defer t.count(outcomeError)

	// Authenticate before reading the body: an unknown client costs no more than this.
	keyMerchant, no := s.authenticate(r)
	if no != nil {
		s.refuse(w, t, no)
		return
	}
	req, no := decodeRegistration(w, r)
	if no != nil {
		s.refuse(w, t, no)
		return
	}
	if no := s.authorize(keyMerchant, req); no != nil {
		s.refuse(w, t, no)
		return
	}
	release, no := s.takeSlot()
	if no != nil {
		s.refuse(w, t, no)
		return
	}
	defer release()

	// The interval a client compares across replicas is the one in which the race can happen:
	// from here, just before the lookup, to just before the answer is written.
	w.start = time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.p.RequestTimeout)
	defer cancel()
	log := s.p.Logger.With("merchant_id", req.MerchantID, "external_id", req.ExternalID, "strategy", string(s.p.Strategy))
	got, no := s.createOrFetch(ctx, r, req, log)
	if no != nil {
		s.refuse(w, t, no)
		return
	}
	if got.lostRace && s.hooks.abandonLoser(w) {
		return // w was taken from the handler: nothing more may be written
	}
	s.answer(w, t, req, got, log)
}

// tally counts exactly one outcome per registration: the e2e suite compares the counts with
// the answers it saw. The first one counted counts.
type tally struct {
	metrics  *Metrics
	strategy string
	counted  bool
}

func (t *tally) count(outcome string) {
	if !t.counted {
		t.counted = true
		t.metrics.registrations.WithLabelValues(t.strategy, outcome).Inc()
	}
}

// refusal is a registration's error answer: the outcome it counts, the error it writes, and
// the one header, if any, that goes with the error.
type refusal struct {
	outcome       string
	err           *Error
	header, value string
}

// refuse counts no's outcome and writes its answer.
func (s *Server) refuse(w http.ResponseWriter, t *tally, no *refusal) {
	t.count(no.outcome)
	if no.header != "" {
		w.Header().Set(no.header, no.value)
	}
	writeError(w, no.err)
}

// decodeRegistration reads and validates r's JSON body, at most MaxBodyBytes of it.
func decodeRegistration(w http.ResponseWriter, r *http.Request) (Request, *refusal) {
	invalid := func(e *Error) (Request, *refusal) {
		return Request{}, &refusal{outcome: outcomeInvalidInput, err: e}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return invalid(&Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "Content-Type must be application/json"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return invalid(&Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Message: fmt.Sprintf("body exceeds %d bytes", MaxBodyBytes)})
		}
		return invalid(&Error{Status: http.StatusBadRequest, Code: "invalid_body", Message: "could not read body"})
	}
	req, err := DecodeRequest(body)
	if err != nil {
		var apiErr *Error
		if !errors.As(err, &apiErr) {
			apiErr = &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: err.Error()}
		}
		return invalid(apiErr)
	}
	return req, nil
}

// authorize refuses a request whose API key is not its merchant's.
func (s *Server) authorize(keyMerchant string, req Request) *refusal {
	if s.p.AuthDisabled || keyMerchant == req.MerchantID || s.hooks.anyMerchantKey() {
		return nil
	}
	// The same answer whether or not the customer exists: a 403 must not be an oracle.
	s.p.Logger.Warn("api key used for another merchant", "key_merchant", keyMerchant, "merchant_id", req.MerchantID)
	return &refusal{outcome: outcomeForbidden, err: &Error{Status: http.StatusForbidden, Code: "forbidden",
		Message: "this API key may not act for merchant " + req.MerchantID}}
}

// takeSlot takes one of the MaxInFlight slots of registrations doing database work and
// returns what gives it back, or the 503 to answer when none is free. Shed, never queue: a
// queued request would wait while its client's timeout runs, and a database in trouble would
// see its load grow instead of shrink. Taken only after decoding, so a slow or invalid request
// never holds a slot, and so every refusal says what was wrong.
func (s *Server) takeSlot() (release func(), no *refusal) {
	select {
	case s.inFlight <- struct{}{}:
		s.p.Metrics.inFlight.Inc()
		return func() {
			<-s.inFlight
			s.p.Metrics.inFlight.Dec()
		}, nil
	default:
		return nil, &refusal{outcome: outcomeOverloaded, header: "Retry-After", value: "1",
			err: &Error{Status: http.StatusServiceUnavailable, Code: "overloaded",
				Message: fmt.Sprintf("this replica already has %d registrations in flight; retry", s.p.MaxInFlight)}}
	}
}

// lookup is what createOrFetch found.
type lookup struct {
	customer *store.Customer
	created  bool
	// lostRace: the lookup missed and create() did not insert, so it is the loser of an
	// insert race (or legacy's nil).
	lostRace bool
}

// createOrFetch is the seed's flow: look up; if absent, create().
func (s *Server) createOrFetch(ctx context.Context, r *http.Request, req Request, log *slog.Logger) (lookup, *refusal) {
	key := store.Key{MerchantID: req.MerchantID, ExternalID: req.ExternalID}
	customer, err := s.p.Store.Find(ctx, key)
	switch {
	case err != nil:
		return lookup{}, s.storeRefusal(r, log, err)
	case customer != nil:
		return lookup{customer: customer}, nil
	}
	if s.p.RecheckDelay > 0 {
		if err := ctxtime.Sleep(ctx, s.p.RecheckDelay); err != nil {
			return lookup{}, s.storeRefusal(r, log, fmt.Errorf("recheck delay: %w", err))
		}
	}
	customer, created, err := s.p.Store.Create(ctx, store.NewCustomer{Key: key, Email: req.Email, Name: req.Name})
	switch {
	case errors.Is(err, store.ErrConflict):
		return lookup{}, &refusal{outcome: outcomeConflict, header: "Retry-After", value: "1",
			err: &Error{Status: http.StatusConflict, Code: "conflict",
				Message: "this customer is being registered by a concurrent request; retry"}}
	case err != nil:
		return lookup{}, s.storeRefusal(r, log, err)
	}
	return lookup{customer: customer, created: created, lostRace: !created}, nil
}

// answer signs the token of got's customer and writes the 200 with it, or the 500 when it
// cannot sign.
func (s *Server) answer(w http.ResponseWriter, t *tally, req Request, got lookup, log *slog.Logger) {
	var subj token.Subject
	if c := got.customer; c != nil {
		subj = token.Subject{CustomerID: c.ID, MerchantID: c.MerchantID, ExternalID: c.ExternalID, CreatedAt: c.CreatedAt}
	} else {
		// Only reachable in legacy (by design) or if a row vanished mid-request.
		subj = token.Subject{MerchantID: req.MerchantID, ExternalID: req.ExternalID, CreatedAt: time.Now()}
	}
	signed, no := s.sign(subj, log)
	if no != nil {
		s.refuse(w, t, no)
		return
	}
	switch {
	case subj.CustomerID == "":
		t.count(outcomeNullSubject)
		log.Warn("signed a token from a nil customer (legacy bug)")
	case got.created:
		t.count(outcomeCreated)
	case s.hooks.existingUncounted():
		t.counted = true
	default:
		t.count(outcomeExisting)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, TokenResponse{Token: signed, CustomerID: subj.CustomerID, Created: s.hooks.createdFlag(got.created)})
}

// sign signs subj, without the empty-subject guard in legacy (the seed's bug), or returns the
// 500 to answer.
func (s *Server) sign(subj token.Subject, log *slog.Logger) (string, *refusal) {
	sign := s.p.Signer.Sign
	if s.p.Strategy == config.StrategyLegacy {
		sign = s.p.Signer.SignUnchecked
	}
	signed, err := sign(subj)
	switch {
	case errors.Is(err, token.ErrEmptySubject):
		log.Error("refusing to sign a token with an empty subject", "err", err)
		return "", &refusal{outcome: outcomeRefused, err: &Error{Status: http.StatusInternalServerError,
			Code: "empty_subject", Message: "registration produced no customer; refusing to issue a token"}}
	case err != nil:
		log.Error("signing token failed", "err", err)
		return "", &refusal{outcome: outcomeError, err: internalError()}
	}
	return signed, nil
}

// maxKeyLen bounds the API key a request may present; Generate's are 46 bytes.
const maxKeyLen = 512

// authenticate returns the merchant whose API key r presents in "Authorization: Bearer <key>",
// or the 401 to answer. With authentication disabled it returns "" and nil.
func (s *Server) authenticate(r *http.Request) (string, *refusal) {
	if s.p.AuthDisabled {
		return "", nil
	}
	unauthenticated := func(msg string) (string, *refusal) {
		// Debug, not Info: anyone can send these, and a burst of them would flood the logs (and
		// the node's disk) at one line each. tokensvc_registrations_total{outcome="unauthenticated"}
		// counts them all; TOKENSVC_LOG_LEVEL=debug shows each one's reason.
		s.p.Logger.Debug("unauthenticated registration", "reason", msg, "remote", r.RemoteAddr)
		return "", &refusal{outcome: outcomeUnauthenticated, header: "WWW-Authenticate", value: "Bearer",
			err: &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: msg}}
	}
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return unauthenticated("missing Authorization: Bearer <API key>")
	case len(values) > 1:
		return unauthenticated("more than one Authorization header")
	}
	scheme, key, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") || key == "" || len(key) > maxKeyLen || strings.ContainsAny(key, " \t") {
		return unauthenticated("Authorization must be Bearer <API key>")
	}
	merchant, ok := s.p.APIKeys.Authenticate(key)
	if !ok && s.hooks.unknownKeyPasses() {
		// Passes as merchant "", which authorize then refuses.
		return "", nil
	}
	if !ok {
		return unauthenticated("unknown API key")
	}
	return merchant, nil
}

// storeRefusal is the answer to a failed database call.
func (s *Server) storeRefusal(r *http.Request, log *slog.Logger, err error) *refusal {
	if r.Context().Err() != nil {
		// The client went away; nobody reads this answer.
		log.Info("client gone during registration", "err", err)
		return &refusal{outcome: outcomeUnavailable,
			err: &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "request cancelled"}}
	}
	if store.IsUnavailable(err) {
		log.Warn("database unavailable", "err", err)
		return &refusal{outcome: outcomeUnavailable, header: "Retry-After", value: "1",
			err: &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "database unavailable; retry"}}
	}
	log.Error("registration failed", "err", err)
	return &refusal{outcome: outcomeError, err: internalError()}
}

func (s *Server) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.jwks)
}

func (s *Server) livez(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, s.readiness("draining"))
		return
	}
	writeJSON(w, http.StatusOK, s.readiness("ok"))
}

// internalError is the answer to a failure the client can do nothing about; the log says what.
func internalError() *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
