package check

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// RuleMetrics: what the token service's pods counted (tokensvc_registrations_total, one outcome
// per POST /v1/tokens) agrees with what the clients saw. A second witness, independent of the
// history: a service that answers one thing and counts another, or a history that lost or
// invented answers, shows here.
const RuleMetrics Rule = "metrics"

// MetricsWitness is what the pods counted during the judged traffic: per pod, per outcome, the
// increase of tokensvc_registrations_total between a scrape before the traffic and one after.
type MetricsWitness struct {
	// Pods maps each pod scraped after the traffic to its counts by outcome.
	Pods map[string]map[string]float64 `json:"pods"`
	// Gone are pods scraped before the traffic that were gone after it (deleted, restarted on
	// another node): what they counted is lost, so their answers in the history are not compared.
	Gone []string `json:"gone,omitempty"`
}

// The outcomes the service counts (service/README.md, "Metrics").
const (
	OutcomeCreated         = "created"
	OutcomeExisting        = "existing"
	OutcomeNullSubject     = "null_subject"
	OutcomeEmptySubject    = "empty_subject_refused"
	OutcomeConflict        = "conflict"
	OutcomeUnavailable     = "unavailable"
	OutcomeOverloaded      = "overloaded"
	OutcomeUnauthenticated = "unauthenticated"
	OutcomeForbidden       = "forbidden"
	OutcomeError           = "error"
	OutcomeInvalidInput    = "invalid_input"
)

// errorOutcomes maps an error body's code to the outcome the service counts for it; any other
// 4xx code is invalid input.
var errorOutcomes = map[string]string{
	"conflict":        OutcomeConflict,
	"unavailable":     OutcomeUnavailable,
	"overloaded":      OutcomeOverloaded,
	"unauthenticated": OutcomeUnauthenticated,
	"forbidden":       OutcomeForbidden,
	"empty_subject":   OutcomeEmptySubject,
	"internal":        OutcomeError,
}

// OutcomeOf is the outcome the serving pod must have counted for op, from the answer the client
// got; ok is false when no answer arrived (the pod may have counted anything, or nothing).
func OutcomeOf(op history.Op) (outcome string, ok bool) {
	if !op.Responded() {
		return "", false
	}
	if op.Status >= 200 && op.Status < 300 {
		var r tokenResponse
		switch {
		case json.Unmarshal([]byte(op.Body), &r) != nil:
			return "unreadable 2xx", true
		case r.CustomerID == "":
			return OutcomeNullSubject, true
		case r.Created != nil && *r.Created:
			return OutcomeCreated, true
		default:
			return OutcomeExisting, true
		}
	}
	var e errorResponse
	_ = json.Unmarshal([]byte(op.Body), &e)
	if o, known := errorOutcomes[e.Error]; known {
		return o, true
	}
	if op.Status >= 400 && op.Status < 500 {
		return OutcomeInvalidInput, true
	}
	return fmt.Sprintf("%d %s", op.Status, e.Error), true
}

// checkMetrics compares w with the answers in ops. Per pod still there and outcome, the pod must
// have counted at least what it answered (a count below it means answers the pod never gave, or
// a pod that does not count); and all counts above the answers together must not exceed the
// requests that got no answer (the only ones a pod may have counted unseen). Every pod that
// answered must have been scraped or be gone. Violations carry no customer: they are the
// run's.
func checkMetrics(ops []history.Op, w *MetricsWitness) []Violation {
	if w == nil {
		return nil
	}
	seen := map[string]map[string]float64{}
	unanswered := 0
	var unscraped []string
	for _, op := range ops {
		outcome, ok := OutcomeOf(op)
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
