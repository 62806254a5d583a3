package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves g at /metrics and nothing else (JSON 404 and 405, as the API). It is
// meant for a listener of its own: the API's port may be exposed where metrics should not be,
// and a scrape must not compete with registrations for the API's connections.
func MetricsHandler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	metrics := promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)})
	rt := route{[]string{http.MethodGet, http.MethodHead}, metrics.ServeHTTP}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dispatch(w, r, rt, r.URL.Path == "/metrics")
	})
}

// Metrics are the service's Prometheus metrics.
type Metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	registrations *prometheus.CounterVec
	dbCalls       *prometheus.HistogramVec
	databaseUp    prometheus.Gauge
	inFlight      prometheus.Gauge
}

// Registration outcomes, the values of the outcome label.
const (
	outcomeCreated         = "created"
	outcomeExisting        = "existing"
	outcomeNullSubject     = "null_subject"          // legacy signed a token from nil
	outcomeRefused         = "empty_subject_refused" // the guard caught a nil customer
	outcomeConflict        = "conflict"
	outcomeUnavailable     = "unavailable"
	outcomeOverloaded      = "overloaded"      // shed: TOKENSVC_MAX_IN_FLIGHT reached
	outcomeUnauthenticated = "unauthenticated" // no, a malformed or an unknown API key
	outcomeForbidden       = "forbidden"       // the key's merchant is not the body's
	outcomeError           = "error"
	outcomeInvalidInput    = "invalid_input"
)

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensvc_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokensvc_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensvc_registrations_total",
			Help: "POST /v1/tokens outcomes by create strategy.",
		}, []string{"strategy", "outcome"}),
		dbCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokensvc_db_call_duration_seconds",
			Help:    "Database call latency by operation and result.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 15),
		}, []string{"op", "result"}),
		databaseUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokensvc_database_up",
			Help: "1 if the last background database check got an answer, else 0.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tokensvc_registrations_in_flight",
			Help: "Registrations doing database work now; at TOKENSVC_MAX_IN_FLIGHT, more are shed.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.registrations, m.dbCalls, m.databaseUp, m.inFlight)
	return m
}

// ObserveDB records one database call; it matches the store's observe hook.
func (m *Metrics) ObserveDB(op string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.dbCalls.WithLabelValues(op, result).Observe(d.Seconds())
}
