package check

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// MetricsScrapes are the target's pods' metrics as they were scraped, raw Prometheus
// text by pod name: Before the judged traffic (when the previous judged traffic ended, or the
// deployment became ready) and After it. Check parses them into the MetricsWitness, the same way
// live and in a re-check from judge.json, so that the witness is never taken on trust.
type MetricsScrapes struct {
	Before map[string]string `json:"before"`
	After  map[string]string `json:"after"`
}

// ParseOutcomes sums the counter c by its outcome label from a Prometheus text exposition.
func ParseOutcomes(text string, c *Counter) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := map[string]float64{}
	f, ok := families[c.Name]
	if !ok {
		// A pod that has served no request yet has no series: zero of everything.
		return out, nil
	}
	for _, m := range f.GetMetric() {
		outcome := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == c.Label {
				outcome = l.GetValue()
			}
		}
		if outcome == "" || m.GetCounter() == nil {
			return nil, fmt.Errorf("parse metrics: %s without an %s label or not a counter", c.Name, c.Label)
		}
		out[outcome] += m.GetCounter().GetValue()
	}
	return out, nil
}

// parseAll parses every pod's scrape.
func parseAll(scrapes map[string]string, c *Counter) (map[string]map[string]float64, error) {
	out := make(map[string]map[string]float64, len(scrapes))
	for _, pod := range slices.Sorted(maps.Keys(scrapes)) {
		counts, err := ParseOutcomes(scrapes[pod], c)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", pod, err)
		}
		out[pod] = counts
	}
	return out, nil
}

// Witness parses s into what the pods counted during ops: per pod scraped after, its increase
// (a pod new since before started from zero). Gone are the pods scraped before, or that
// answered in ops (the pod header), and were not running to be scraped after (deleted, scaled
// away: a pod a fault started and removed again lived wholly in between), and those whose
// counters went down (a restarted container): what they counted is lost.
func (s MetricsScrapes) Witness(ops []history.Op, c *Counter) (*MetricsWitness, error) {
	if c == nil {
		return nil, errors.New("the API has no outcome counter to read the scrapes by")
	}
	before, err := parseAll(s.Before, c)
	if err != nil {
		return nil, fmt.Errorf("scrapes before: %w", err)
	}
	after, err := parseAll(s.After, c)
	if err != nil {
		return nil, fmt.Errorf("scrapes after: %w", err)
	}
	answeredBy := map[string]bool{}
	for i := range ops {
		answeredBy[ops[i].Pod] = true
	}
	return witnessOf(before, after, slices.Collect(maps.Keys(answeredBy))), nil
}

func witnessOf(before, after map[string]map[string]float64, answeredBy []string) *MetricsWitness {
	w := &MetricsWitness{Pods: map[string]map[string]float64{}}
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
