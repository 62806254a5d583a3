package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stampede-e2e/stampede/e2e/check"
)

// jwksTimeout bounds one fetch of the JWKS, as a client's HTTP timeout would.
const jwksTimeout = 10 * time.Second

// FetchJWKS fetches the target's JWKS (at the target's jwksPath) as its clients do, and
// records every answer for the checker (check.Params.JWKS, RuleJWKS): through the Service, twice
// per ready replica on fresh connections so that kube-proxy spreads them over the replicas, when
// this host reaches it (Env.ServiceURL); and from each ready replica alone, through a
// port-forward to its API port.
// An answer of any status is a record; a request that got none is tried again, on a new
// port-forward, up to jwksAttempts times (a port-forward's stream can break on its own), and the
// last failure recorded. Only a port-forward that could not be opened, or a failure to list the
// pods, is an error (the suite's, not the service's).
func (d *Deployment) FetchJWKS(ctx context.Context) ([]check.JWKSFetch, error) {
	jwksPath := d.Env.Config.jwksPath()
	if jwksPath == "" {
		return nil, nil // the target publishes no keys: nothing to fetch
	}
	pods, err := d.Env.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: d.pods})
	if err != nil {
		return nil, fmt.Errorf("list target pods: %w", err)
	}
	var running []string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && podReady(&p) {
			running = append(running, p.Name)
		}
	}
	if len(running) == 0 {
		return nil, errors.New("fetch the JWKS: no ready target pod")
	}
	// A fresh connection each time: a kept one would reach the same replica every time.
	client := &http.Client{Timeout: jwksTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	var fetches []check.JWKSFetch
	if d.Env.ServiceURL != "" {
		for range 2 * len(running) {
			var f check.JWKSFetch
			for range jwksAttempts {
				if f = fetchJWKS(ctx, client, d.Env.Config.podHeader(), "service", strings.TrimSuffix(d.Env.ServiceURL, "/")+jwksPath); f.Error == "" {
					break
				}
			}
			fetches = append(fetches, f)
		}
	}
	for _, pod := range running {
		var f check.JWKSFetch
		for range jwksAttempts {
			port, stop, err := PortForwardPod(ctx, d.Env.RestConfig, d.Namespace, pod, d.podPort)
			if err != nil {
				return nil, fmt.Errorf("fetch the JWKS of %s: %w", pod, err)
			}
			f = fetchJWKS(ctx, client, d.Env.Config.podHeader(), "pod/"+pod, fmt.Sprintf("http://127.0.0.1:%d%s", port, jwksPath))
			stop()
			if f.Error == "" {
				break
			}
		}
		fetches = append(fetches, f)
	}
	return fetches, nil
}

// jwksAttempts is how many times a fetch of the JWKS that got no answer is made.
const jwksAttempts = 3

// podReady says whether p's Ready condition is true: a replica that serves.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// fetchJWKSEventually is FetchJWKS, tried for up to a minute: a port-forward may fail once, or a
// replica that a fault replaced may not be running yet.
func (d *Deployment) fetchJWKSEventually(ctx context.Context) []check.JWKSFetch {
	GinkgoHelper()
	var fetches []check.JWKSFetch
	Eventually(ctx, func() (err error) {
		fetches, err = d.FetchJWKS(ctx)
		return err
	}).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed(), "fetch the target's JWKS")
	return fetches
}

// fetchJWKS makes one GET of url with client and records what came back: the status, the body
// (up to 1 MiB) and the pod header podHeader names, or the error when no answer arrived.
func fetchJWKS(ctx context.Context, client *http.Client, podHeader, via, url string) check.JWKSFetch {
	f := check.JWKSFetch{Via: via}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		f.Error = err.Error()
		return f
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		f.Error = err.Error()
		return f
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	f.Status, f.Pod, f.Body = resp.StatusCode, resp.Header.Get(podHeader), string(body)
	if err != nil {
		f.Error = fmt.Sprintf("read the body: %v", err)
	}
	return f
}
