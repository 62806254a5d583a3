package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/store"
)

var handlerTiming = regexp.MustCompile(`^handler;dur=([0-9]+\.[0-9]{3});desc="start=([0-9]+) end=([0-9]+)"$`)

// TestRegisterReportsHandlerInterval checks that every answer of POST /v1/tokens, success or
// error, carries the handler's interval, that it lies within the request's wall time, and that
// it spans the database work (here widened by the recheck delay).
func TestRegisterReportsHandlerInterval(t *testing.T) {
	const delay = 20 * time.Millisecond
	for _, tc := range []struct {
		name        string
		store       *fakeStore
		contentType string
		body        string
		wantStatus  int
		minDur      time.Duration
	}{
		{"created", &fakeStore{created: row, createNew: true}, "application/json", validBody, 200, delay},
		{"existing", &fakeStore{found: row}, "application/json", validBody, 200, 0},
		{"conflict", &fakeStore{createErr: store.ErrConflict}, "application/json", validBody, 409, delay},
		{"database down", &fakeStore{findErr: errors.New("dial tcp: connection refused")}, "application/json", validBody, 503, 0},
		{"refused before decoding", &fakeStore{}, "text/plain", validBody, 415, 0},
		{"bad json", &fakeStore{}, "application/json", `{"merchant_id":`, 400, 0},
		{"unauthenticated", &fakeStore{}, "application/json", validBody, 401, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newTestServer(t, tc.store, config.StrategyFailFast)
			srv.p.RecheckDelay = delay
			r := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.contentType)
			if tc.name != "unauthenticated" {
				authorize(r)
			}
			w := httptest.NewRecorder()
			before := time.Now()
			srv.ServeHTTP(w, r)
			after := time.Now()
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tc.wantStatus, w.Body)
			}
			values := w.Result().Header.Values(HandlerTimingHeader)
			if len(values) != 1 {
				t.Fatalf("%s = %q, want one value", HandlerTimingHeader, values)
			}
			m := handlerTiming.FindStringSubmatch(values[0])
			if m == nil {
				t.Fatalf("%s = %q, want handler;dur=<ms>;desc=\"start=<ns> end=<ns>\"", HandlerTimingHeader, values[0])
			}
			dur, _ := strconv.ParseFloat(m[1], 64)
			start, _ := strconv.ParseInt(m[2], 10, 64)
			end, _ := strconv.ParseInt(m[3], 10, 64)
			if start < before.UnixNano() || end < start || end > after.UnixNano() {
				t.Errorf("interval [%d, %d] not ordered within the request's [%d, %d]", start, end, before.UnixNano(), after.UnixNano())
			}
			if got := time.Duration(end - start); got < tc.minDur {
				t.Errorf("interval lasts %v, want at least the recheck delay %v", got, tc.minDur)
			}
			if want := float64(end-start) / 1e6; dur < want-0.001 || dur > want+0.001 {
				t.Errorf("dur=%v ms, want %v (end - start)", dur, want)
			}
			if w.Header().Get("X-Served-By") != "pod-test" {
				t.Errorf("X-Served-By = %q", w.Header().Get("X-Served-By"))
			}
		})
	}
}

// TestOtherRoutesCarryNoHandlerInterval keeps the header to registration, whose handler the
// coverage guard compares.
func TestOtherRoutesCarryNoHandlerInterval(t *testing.T) {
	srv, _ := newTestServer(t, &fakeStore{}, config.StrategyAtomic)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/livez", nil))
	if v := w.Header().Get(HandlerTimingHeader); v != "" {
		t.Errorf("/livez carries %s %q", HandlerTimingHeader, v)
	}
}
