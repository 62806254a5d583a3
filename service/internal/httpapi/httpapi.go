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
				writeError(rec, &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
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

func (s *Server) register(rw http.ResponseWriter, r *http.Request) {
	// Every answer, error or not, reports when this handler worked on the request (see
	// HandlerTimingHeader); until the request is decoded, that is since the handler began.
	w := &timedWriter{ResponseWriter: s.hooks.answerWriter(rw), start: time.Now(), hooks: s.hooks}
	strategy := string(s.p.Strategy)
	// Exactly one outcome per request: the e2e suite compares the counts with the answers it
	// saw. The first one set counts; a request that ends without one (a panic, which the
	// server answers 500) counts as error.
	counted := false
	outcome := func(o string) {
		if !counted {
			counted = true
			s.p.Metrics.registrations.WithLabelValues(strategy, o).Inc()
		}
	}
	defer outcome(outcomeError)

	// Authenticate before reading the body: an unknown client costs no more than this.
	keyMerchant, authErr := s.authenticate(r)
	if authErr != nil {
		outcome(outcomeUnauthenticated)
		// Debug, not Info: anyone can send these, and a burst of them would flood the logs (and
		// the node's disk) at one line each. tokensvc_registrations_total{outcome="unauthenticated"}
		// counts them all; TOKENSVC_LOG_LEVEL=debug shows each one's reason.
		s.p.Logger.Debug("unauthenticated registration", "reason", authErr.Message, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, authErr)
		return
	}

	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		outcome(outcomeInvalidInput)
		writeError(w, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "Content-Type must be application/json"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		outcome(outcomeInvalidInput)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Message: fmt.Sprintf("body exceeds %d bytes", MaxBodyBytes)})
			return
		}
		writeError(w, &Error{Status: http.StatusBadRequest, Code: "invalid_body", Message: "could not read body"})
		return
	}
	req, err := DecodeRequest(body)
	if err != nil {
		outcome(outcomeInvalidInput)
		var apiErr *Error
		if !errors.As(err, &apiErr) {
			apiErr = &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: err.Error()}
		}
		writeError(w, apiErr)
		return
	}
	if !s.p.AuthDisabled && keyMerchant != req.MerchantID && !s.hooks.anyMerchantKey() {
		// The same answer whether or not the customer exists: a 403 must not be an oracle.
		outcome(outcomeForbidden)
		s.p.Logger.Warn("api key used for another merchant", "key_merchant", keyMerchant, "merchant_id", req.MerchantID)
		writeError(w, &Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: "this API key may not act for merchant " + req.MerchantID})
		return
	}

	// Shed, never queue: a queued request would wait while its client's timeout runs, and a
	// database in trouble would see its load grow instead of shrink. Checked only now, so a
	// slow or invalid request never holds a slot, and so every refusal says what was wrong.
	select {
	case s.inFlight <- struct{}{}:
		s.p.Metrics.inFlight.Inc()
		defer func() {
			<-s.inFlight
			s.p.Metrics.inFlight.Dec()
		}()
	default:
		outcome(outcomeOverloaded)
		w.Header().Set("Retry-After", "1")
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: "overloaded",
			Message: fmt.Sprintf("this replica already has %d registrations in flight; retry", s.p.MaxInFlight)})
		return
	}

	// The interval a client compares across replicas is the one in which the race can happen:
	// from here, just before the lookup, to just before the answer is written.
	w.start = time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.p.RequestTimeout)
	defer cancel()
	key := store.Key{MerchantID: req.MerchantID, ExternalID: req.ExternalID}
	log := s.p.Logger.With("merchant_id", req.MerchantID, "external_id", req.ExternalID, "strategy", strategy)

	// The seed's flow: look up; if absent, create(); sign whatever create() returned.
	customer, err := s.p.Store.Find(ctx, key)
	if err != nil {
		outcome(s.writeStoreError(w, r, log, err))
		return
	}
	created := false
	if customer == nil {
		if s.p.RecheckDelay > 0 {
			if err := ctxtime.Sleep(ctx, s.p.RecheckDelay); err != nil {
				outcome(s.writeStoreError(w, r, log, fmt.Errorf("recheck delay: %w", err)))
				return
			}
		}
		customer, created, err = s.p.Store.Create(ctx, store.NewCustomer{Key: key, Email: req.Email, Name: req.Name})
		if errors.Is(err, store.ErrConflict) {
			outcome(outcomeConflict)
			w.Header().Set("Retry-After", "1")
			writeError(w, &Error{Status: http.StatusConflict, Code: "conflict",
				Message: "this customer is being registered by a concurrent request; retry"})
			return
		}
		if err != nil {
			outcome(s.writeStoreError(w, r, log, err))
			return
		}
		if !created && s.hooks.abandonLoser(w) {
			return // w was taken from the handler: nothing more may be written
		}
	}

	var subj token.Subject
	if customer != nil {
		subj = token.Subject{CustomerID: customer.ID, MerchantID: customer.MerchantID,
			ExternalID: customer.ExternalID, CreatedAt: customer.CreatedAt}
	} else {
		// Only reachable in legacy (by design) or if a row vanished mid-request.
		subj = token.Subject{MerchantID: req.MerchantID, ExternalID: req.ExternalID, CreatedAt: time.Now()}
	}
	var signed string
	if s.p.Strategy == config.StrategyLegacy {
		signed, err = s.p.Signer.SignUnchecked(subj)
	} else {
		signed, err = s.p.Signer.Sign(subj)
	}
	switch {
	case errors.Is(err, token.ErrEmptySubject):
		outcome(outcomeRefused)
		log.Error("refusing to sign a token with an empty subject", "err", err)
		writeError(w, &Error{Status: http.StatusInternalServerError, Code: "empty_subject",
			Message: "registration produced no customer; refusing to issue a token"})
		return
	case err != nil:
		outcome(outcomeError)
		log.Error("signing token failed", "err", err)
		writeError(w, &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
		return
	}
	switch {
	case subj.CustomerID == "":
		outcome(outcomeNullSubject)
		log.Warn("signed a token from a nil customer (legacy bug)")
	case created:
		outcome(outcomeCreated)
	case s.hooks.existingUncounted():
		counted = true
	default:
		outcome(outcomeExisting)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, TokenResponse{Token: signed, CustomerID: subj.CustomerID, Created: s.hooks.createdFlag(created)})
}

// maxKeyLen bounds the API key a request may present; Generate's are 46 bytes.
const maxKeyLen = 512

// authenticate returns the merchant whose API key r presents in "Authorization: Bearer <key>",
// or the 401 to answer. With authentication disabled it returns "" and nil.
func (s *Server) authenticate(r *http.Request) (string, *Error) {
	if s.p.AuthDisabled {
		return "", nil
	}
	unauthenticated := func(msg string) (string, *Error) {
		return "", &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: msg}
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
		// Passes as merchant "", which the authorization check then refuses.
		return "", nil
	}
	if !ok {
		return unauthenticated("unknown API key")
	}
	return merchant, nil
}

// writeStoreError answers a failed database call and returns the outcome label.
func (s *Server) writeStoreError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) string {
	if r.Context().Err() != nil {
		// The client went away; nobody reads this answer.
		log.Info("client gone during registration", "err", err)
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "request cancelled"})
		return outcomeUnavailable
	}
	if store.IsUnavailable(err) {
		log.Warn("database unavailable", "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "database unavailable; retry"})
		return outcomeUnavailable
	}
	log.Error("registration failed", "err", err)
	writeError(w, &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
	return outcomeError
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
