package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stampede-e2e/stampede/e2e/check"
)

// PodScrapes are the raw metrics of each token-service pod, Prometheus text by pod name: what
// check.MetricsScrapes keeps and parses.
type PodScrapes map[string]string

// ScrapeRegistrations reads the metrics of every running token-service pod of the deployment,
// raw, through a port-forward to its metrics port (which no Service exposes and no policy
// opens). It checks that each parses (check.ParseOutcomes, by the target's outcome counter), so that a scrape the checker
// could not read is retried here instead of failing the judgement.
func (d *Deployment) ScrapeRegistrations(ctx context.Context) (PodScrapes, error) {
	if o := d.Env.Config.Target.Observability; o == nil || o.Metrics == nil {
		return PodScrapes{}, nil // the target serves no metrics: the witness has nothing to read
	}
	pods, err := d.Env.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: d.pods})
	if err != nil {
		return nil, fmt.Errorf("list target pods: %w", err)
	}
	api, err := check.APIFromTarget(d.Env.Config.Target)
	if err != nil {
		return nil, err
	}
	counter := api.Counter
	// Every pod at once: each scrape is a port-forward's round trips through the API server and
	// the kubelet, and a spec reads them twice.
	var names []string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	texts, errs := make([]string, len(names)), make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			texts[i], errs[i] = d.scrapePod(ctx, name)
			if errs[i] == nil && counter != nil {
				if _, err := check.ParseOutcomes(texts[i], counter); err != nil {
					errs[i] = fmt.Errorf("metrics of %s: %w", name, err)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	scrapes := PodScrapes{}
	for i, name := range names {
		scrapes[name] = texts[i]
	}
	return scrapes, nil
}

// scrapeRegistrationsEventually is ScrapeRegistrations, tried for up to a minute: after a fault
// a replica may be running before its metrics listener is (it opens once the database is
// prepared), or a port-forward may fail once.
func (d *Deployment) scrapeRegistrationsEventually(ctx context.Context) PodScrapes {
	GinkgoHelper()
	var scrapes PodScrapes
	Eventually(ctx, func() (err error) {
		scrapes, err = d.ScrapeRegistrations(ctx)
		return err
	}).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed(), "scrape the target's metrics")
	return scrapes
}

// maxScrapeBytes bounds one pod's metrics text: a service's exposition is some kilobytes.
const maxScrapeBytes = 4 << 20

func (d *Deployment) scrapePod(ctx context.Context, pod string) (string, error) {
	m := d.Env.Config.Target.Observability.Metrics
	port, stop, err := PortForwardPod(ctx, d.Env.RestConfig, d.Namespace, pod, m.Port)
	if err != nil {
		return "", fmt.Errorf("metrics of %s: %w", pod, err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, m.Path), nil)
	if err != nil {
		return "", err
	}
	// The text format: the checker parses it, and it is what an operator would curl.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("metrics of %s: %w", pod, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("metrics of %s: %s: %s", pod, resp.Status, body)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxScrapeBytes+1))
	if err != nil {
		return "", fmt.Errorf("metrics of %s: %w", pod, err)
	}
	if len(body) > maxScrapeBytes {
		return "", fmt.Errorf("metrics of %s: more than %d bytes", pod, maxScrapeBytes)
	}
	return string(body), nil
}
