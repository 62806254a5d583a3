package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// HandlerTimingHeader carries, on every answer of POST /v1/tokens, the interval in which the
// handler worked on the request, in the standard Server-Timing syntax (W3C Server Timing):
//
//	Server-Timing: handler;dur=0.532;desc="start=1767225600000000000 end=1767225600000532000"
//
// dur is the length in milliseconds, as the standard has it; desc holds the start and end as
// Unix nanoseconds on the replica's wall clock, which Server-Timing has no parameter for. With
// X-Served-By it tells a client which replica was inside its handler when, so that a test can
// show that two replicas really worked on one customer at the same time.
const HandlerTimingHeader = "Server-Timing"

// HandlerTimingMetric is the metric name of the handler's entry in HandlerTimingHeader.
const HandlerTimingMetric = "handler"

// FormatHandlerTiming formats the HandlerTimingHeader value of a handler that ran from start
// to end.
func FormatHandlerTiming(start, end time.Time) string {
	return fmt.Sprintf(`%s;dur=%s;desc="start=%d end=%d"`, HandlerTimingMetric,
		strconv.FormatFloat(float64(end.Sub(start))/float64(time.Millisecond), 'f', 3, 64),
		start.UnixNano(), end.UnixNano())
}

// timedWriter stamps the handler's interval on the response just before its header is
// written, whichever path writes it, so that no answer leaves without one.
type timedWriter struct {
	http.ResponseWriter
	start   time.Time
	stamped bool
	hooks   hooks
}

func (w *timedWriter) stamp() {
	if w.stamped {
		return
	}
	w.stamped = true
	start, report := w.hooks.handlerStart(w.start)
	if !report {
		return
	}
	w.Header().Add(HandlerTimingHeader, FormatHandlerTiming(start, time.Now()))
}

func (w *timedWriter) WriteHeader(code int) {
	w.stamp()
	w.ResponseWriter.WriteHeader(code)
}

func (w *timedWriter) Write(b []byte) (int, error) {
	w.stamp()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *timedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
