package framework

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/manifests"
)

// registrationsMetric is the token service's counter of POST /v1/tokens outcomes.
const registrationsMetric = "tokensvc_registrations_total"

// PodCounts are the registration counters of each token-service pod, by outcome.
type PodCounts map[string]map[string]float64

// ScrapeRegistrations reads tokensvc_registrations_total from every running token-service pod
// of the deployment, through a port-forward to its metrics port (which no Service exposes and
// no policy opens), summed over the strategy label.
func (d *Deployment) ScrapeRegistrations(ctx context.Context) (PodCounts, error) {
	pods, err := d.Env.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: manifests.Selector(manifests.TokensvcName)})
	if err != nil {
		return nil, fmt.Errorf("list token service pods: %w", err)
	}
	counts := PodCounts{}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		c, err := d.scrapePod(ctx, p.Name)
		if err != nil {
			return nil, err
		}
		counts[p.Name] = c
	}
	return counts, nil
}

// scrapeRegistrationsEventually is ScrapeRegistrations, tried for up to a minute: after a fault
// a replica may be running before its metrics listener is (it opens once the database is
// prepared), or a port-forward may fail once.
func (d *Deployment) scrapeRegistrationsEventually(ctx context.Context) PodCounts {
	GinkgoHelper()
	var counts PodCounts
	Eventually(ctx, func() (err error) {
		counts, err = d.ScrapeRegistrations(ctx)
		return err
	}).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed(), "scrape the token service's metrics")
	return counts
}

func (d *Deployment) scrapePod(ctx context.Context, pod string) (map[string]float64, error) {
	port, stop, err := PortForwardPod(ctx, d.Env.RestConfig, d.Namespace, pod, manifests.TokensvcMetricsPort)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", pod, err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	if err != nil {
		return nil, err
	}
	// The text format: the parser below reads it, and it is what an operator would curl.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", pod, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("metrics of %s: %s: %s", pod, resp.Status, body)
	}
	return parseRegistrations(resp.Body)
}

// parseRegistrations sums registrationsMetric by outcome from a Prometheus text exposition.
func parseRegistrations(r io.Reader) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := map[string]float64{}
	f, ok := families[registrationsMetric]
	if !ok {
		// A pod that has served no registration yet has no series: zero of everything.
		return out, nil
	}
	for _, m := range f.GetMetric() {
		outcome := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" {
				outcome = l.GetValue()
			}
		}
		if outcome == "" || m.GetCounter() == nil {
			return nil, fmt.Errorf("parse metrics: %s without an outcome label or not a counter", registrationsMetric)
		}
		out[outcome] += m.GetCounter().GetValue()
	}
	return out, nil
}

// Witness is what the pods counted between before and after: per pod scraped after, its
// increase (a pod new since before started from zero). Gone are the pods scraped before, or that
// answered (answeredBy, the history's X-Served-By), and were not running to be scraped after
// (deleted, scaled away: a pod a fault started and removed again lived wholly in between), and
// those whose counters went down (a restarted container): what they counted is lost.
func Witness(before, after PodCounts, answeredBy []string) *check.MetricsWitness {
	w := &check.MetricsWitness{Pods: map[string]map[string]float64{}}
	for pod, counts := range after {
		delta := map[string]float64{}
		restarted := false
		for o, v := range counts {
			if d := v - before[pod][o]; d != 0 {
				delta[o] = d
				restarted = restarted || d < 0
			}
		}
		for o := range before[pod] {
			_, still := counts[o]
			restarted = restarted || !still
		}
		if restarted {
			// A counter went down: the container restarted and what it counted before is lost.
			w.Gone = append(w.Gone, pod)
			continue
		}
		w.Pods[pod] = delta
	}
	for _, pod := range append(slices.Collect(maps.Keys(before)), answeredBy...) {
		if _, ok := after[pod]; !ok && pod != "" && !slices.Contains(w.Gone, pod) {
			w.Gone = append(w.Gone, pod)
		}
	}
	slices.Sort(w.Gone)
	return w
}
