package framework

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFetchJWKS: a fetch records what a client got, whatever it was: a 200 with its body and
// serving pod, another status, or no answer at all.
func TestFetchJWKS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case JWKSPath:
			w.Header().Set("X-Served-By", "pod-0")
			_, _ = w.Write([]byte(`{"keys":[]}`))
		case "/gone":
			// A replica that drops the connection instead of answering.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	ctx := context.Background()
	if f := fetchJWKS(ctx, client, "service", srv.URL+JWKSPath); f.Via != "service" || f.Status != 200 || f.Pod != "pod-0" || f.Body != `{"keys":[]}` || f.Error != "" {
		t.Errorf("200: %+v", f)
	}
	if f := fetchJWKS(ctx, client, "pod/p", srv.URL+"/nothing"); f.Status != 404 || f.Pod != "" || f.Error != "" || !strings.Contains(f.Body, "not found") {
		t.Errorf("404: %+v", f)
	}
	if f := fetchJWKS(ctx, client, "pod/p", srv.URL+"/gone"); f.Status != 0 || f.Error == "" {
		t.Errorf("no answer: %+v", f)
	}
}
