//go:build selftest

package mutant

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// Response wraps w, the writer of one POST /v1/tokens answer, when an answer-shape mutant is
// active: the answer then leaves with that mutant's defect in its status, headers or body, as the
// handler wrote it otherwise. With any other mutant, or none, it returns w.
func Response(w http.ResponseWriter) http.ResponseWriter {
	switch id := ID(active.Load()); id {
	case Created201, SniffedContentType, TerseErrors, Bare401:
		return &shapeWriter{ResponseWriter: w, id: id, status: http.StatusOK}
	default:
		return w
	}
}

// shapeWriter holds the status back until the body's first write, so that a mutant can read the
// body before the header goes out.
type shapeWriter struct {
	http.ResponseWriter
	id      ID
	status  int
	pending bool
	sent    bool
}

func (w *shapeWriter) WriteHeader(code int) {
	if w.sent || w.pending {
		return
	}
	w.status, w.pending = code, true
}

func (w *shapeWriter) Write(b []byte) (int, error) {
	if !w.sent {
		w.sent = true
		b = w.mutate(b)
		w.ResponseWriter.WriteHeader(w.status)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *shapeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// mutate applies the mutant's defect to the answer whose status and first body bytes are w's
// and b, and returns the body to send.
func (w *shapeWriter) mutate(b []byte) []byte {
	h := w.Header()
	switch {
	case w.id == Created201 && w.status == http.StatusOK && bytes.Contains(b, []byte(`"created":true`)):
		w.status = http.StatusCreated
	case w.id == SniffedContentType && w.status == http.StatusOK:
		// What net/http does for a handler that sets none: sniff the first bytes.
		h.Del("Content-Type")
		h.Set("Content-Type", http.DetectContentType(b))
	case w.id == Bare401 && w.status == http.StatusUnauthorized:
		h.Del("WWW-Authenticate")
	case w.id == TerseErrors && w.status >= http.StatusBadRequest:
		var e struct {
			Code string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			terse, err := json.Marshal(e)
			if err == nil {
				return append(terse, '\n')
			}
		}
	}
	return b
}
