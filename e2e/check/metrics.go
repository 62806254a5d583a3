package check

import (
	"fmt"
	"maps"
	"slices"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// RuleMetrics: what the target's pods counted (its outcome counter, API.Counter: one outcome per
// create request) agrees with what the clients saw. A second witness, independent of the
// history: a service that answers one thing and counts another, or a history that lost or
// invented answers, shows here.
const RuleMetrics Rule = "metrics"

// MetricsWitness is what the pods counted during the judged traffic: per pod, per outcome, the
// increase of the outcome counter between a scrape before the traffic and one after.
type MetricsWitness struct {
	// Pods maps each pod scraped after the traffic to its counts by outcome.
	Pods map[string]map[string]float64 `json:"pods"`
	// Gone are pods scraped before the traffic that were gone after it (deleted, restarted on
	// another node): what they counted is lost, so their answers in the history are not compared.
	Gone []string `json:"gone,omitempty"`
}

// OutcomeOf is the outcome the serving pod must have counted for op, from the answer the client
// got, by the API's counter; ok is false when no answer arrived (the pod may have counted
// anything, or nothing) or the API has no counter.
func OutcomeOf(api *API, op history.Op) (outcome string, ok bool) {
	if !op.Responded() {
		return "", false
	}
	c := api.Counter
	if c == nil {
		return "", false
	}
	var buf [8]member
	o, err := readObject(op.Body, buf[:0])
	if op.Status >= 200 && op.Status < 300 {
		if err != nil {
			return "unreadable 2xx", true
		}
		id, _, okID := o.stringAt(op.Body, api.ID)
		a := answer{}
		if api.Created != "" {
			if raw, found := o.lookup(op.Body, api.Created); found && raw != "null" {
				b, okB := boolValue(raw)
				okID = okID && okB
				a.created = &b
			}
		}
		switch created := a.createdBy(api, &op); {
		case !okID:
			return "unreadable 2xx", true
		case id == "" && c.NoID != "":
			return c.NoID, true
		case created != nil && *created:
			return c.New, true
		case api.Replayed != nil && c.Replayed != "" && op.Status == api.Replayed.Status && op.Status != api.Existing.Status:
			return c.Replayed, true
		default:
			return c.Existing, true
		}
	}
	var code string
	if err == nil {
		code, _, _ = o.stringAt(op.Body, api.ErrorCode)
	}
	if v, known := c.Errors[code]; known && code != "" {
		return v, true
	}
	if op.Status >= 400 && op.Status < 500 && c.InvalidInput != "" {
		return c.InvalidInput, true
	}
	return fmt.Sprintf("%d %s", op.Status, code), true
}

// checkMetrics compares w with the answers in ops. Per pod still there and outcome, the pod must
// have counted at least what it answered (a count below it means answers the pod never gave, or
// a pod that does not count); and all counts above the answers together must not exceed the
// requests that got no answer (the only ones a pod may have counted unseen). Every pod that
// answered must have been scraped or be gone. Violations carry no customer: they are the
// run's.
func checkMetrics(api *API, ops []history.Op, w *MetricsWitness) []Violation {
	if w == nil || api.Counter == nil {
		return nil
	}
	seen, unanswered, unscraped := answersByPod(api, ops, w)
	var vs []Violation
	add := func(pods []string, format string, args ...any) {
		detail := fmt.Sprintf(format, args...)
		vs = append(vs, Violation{Rule: RuleMetrics, Pods: pods, Requests: []Request{}, Details: []string{detail},
			Findings: []Finding{{Kind: KindMetricsDisagree, Detail: detail}}})
	}
	for _, pod := range unscraped {
		add([]string{pod}, "pod %q answered requests but was neither scraped after the traffic nor known gone", pod)
	}
	excess := 0.0
	for _, pod := range slices.Sorted(maps.Keys(w.Pods)) {
		counted := w.Pods[pod]
		outcomes := map[string]bool{}
		for o := range counted {
			outcomes[o] = true
		}
		for o := range seen[pod] {
			outcomes[o] = true
		}
		for _, o := range slices.Sorted(maps.Keys(outcomes)) {
			got, answered := counted[o], seen[pod][o]
			switch {
			case got < answered:
				add([]string{pod}, "pod %s counted %g %q registrations, but answered %g of them", pod, got, o, answered)
			case got > answered:
				excess += got - answered
			}
		}
	}
	if excess > float64(unanswered) {
		add(slices.Sorted(maps.Keys(w.Pods)), "the pods counted %g registrations more than they answered, but only %d requests got no answer", excess, unanswered)
	}
	return vs
}

// answersByPod counts the answers in ops per scraped pod and outcome (seen), the requests that
// got no answer, and lists the pods that answered but were neither scraped nor known gone, in
// the order they first answered.
func answersByPod(api *API, ops []history.Op, w *MetricsWitness) (seen map[string]map[string]float64, unanswered int, unscraped []string) {
	seen = map[string]map[string]float64{}
	for _, op := range ops {
		outcome, ok := OutcomeOf(api, op)
		if !ok {
			unanswered++
			continue
		}
		if slices.Contains(w.Gone, op.Pod) {
			continue
		}
		if _, scraped := w.Pods[op.Pod]; !scraped {
			if !slices.Contains(unscraped, op.Pod) {
				unscraped = append(unscraped, op.Pod)
			}
			continue
		}
		if seen[op.Pod] == nil {
			seen[op.Pod] = map[string]float64{}
		}
		seen[op.Pod][outcome]++
	}
	return seen, unanswered, unscraped
}
