package framework

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestFetchJWKS: a fetch records what a client got, whatever it was: a 200 with its body and
// serving pod, another status, or no answer at all.
func TestFetchJWKS(t *testing.T) {
	header := loadTestTarget(t).Observability.PodHeader
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case keysPath:
			w.Header().Set(header, "pod-0")
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
	if f := fetchJWKS(ctx, client, header, "service", srv.URL+keysPath); f.Via != "service" || f.Status != 200 || f.Pod != "pod-0" || f.Body != `{"keys":[]}` || f.Error != "" {
		t.Errorf("200: %+v", f)
	}
	if f := fetchJWKS(ctx, client, header, "pod/p", srv.URL+"/nothing"); f.Status != 404 || f.Pod != "" || f.Error != "" || !strings.Contains(f.Body, "not found") {
		t.Errorf("404: %+v", f)
	}
	if f := fetchJWKS(ctx, client, header, "pod/p", srv.URL+"/gone"); f.Status != 0 || f.Error == "" {
		t.Errorf("no answer: %+v", f)
	}
}

// TestPodReady: only a pod whose Ready condition is true is fetched from.
func TestPodReady(t *testing.T) {
	pod := func(conds ...corev1.PodCondition) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Conditions: conds}}
	}
	for _, tc := range []struct {
		pod  *corev1.Pod
		want bool
	}{
		{pod(), false},
		{pod(corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}), true},
		{pod(corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse}), false},
		{pod(corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}), false},
	} {
		if got := podReady(tc.pod); got != tc.want {
			t.Errorf("podReady(%+v) = %v, want %v", tc.pod.Status.Conditions, got, tc.want)
		}
	}
}

// keysPath is where the test server publishes its keys.
const keysPath = "/keys.json"
