package check

import (
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// metricsOps: pod a answered one created and one existing, pod b one conflict, and one request
// got no answer.
func metricsOps() []history.Op {
	c := history.Customer{Tenant: "m-0", EntityKey: "c-1"}
	return []history.Op{
		{Customer: c, Seq: 0, Status: 200, Pod: "a", Body: `{"credential":"t","widget_id":"x","created":true}`},
		{Customer: c, Seq: 1, Status: 200, Pod: "a", Body: `{"credential":"t","widget_id":"x","created":false}`},
		{Customer: c, Seq: 2, Status: 409, Pod: "b", Body: `{"error":"conflict","message":"retry"}`},
		{Customer: c, Seq: 3, Error: "timeout"},
	}
}

func TestCheckMetrics(t *testing.T) {
	agree := func() *MetricsWitness {
		return &MetricsWitness{Pods: map[string]map[string]float64{
			"a": {OutcomeCreated: 1, OutcomeExisting: 1},
			"b": {OutcomeConflict: 1},
		}}
	}
	if vs := checkMetrics(&fixtureAPI, metricsOps(), agree()); len(vs) != 0 {
		t.Fatalf("agreeing witness: %v", vs)
	}
	// The unanswered request may have been counted by any pod, once.
	w := agree()
	w.Pods["b"][OutcomeUnavailable] = 1
	if vs := checkMetrics(&fixtureAPI, metricsOps(), w); len(vs) != 0 {
		t.Errorf("one count for the one unanswered request: %v", vs)
	}
	if vs := checkMetrics(&fixtureAPI, metricsOps(), nil); vs != nil {
		t.Errorf("no witness: %v", vs)
	}

	for name, tc := range map[string]struct {
		change func(w *MetricsWitness)
		want   string
	}{
		// A build that answers created=true but counts existing (or the other way round).
		"answered created, counted existing": {func(w *MetricsWitness) {
			w.Pods["a"] = map[string]float64{OutcomeExisting: 2}
		}, `counted 0 "created"`},
		"a pod that does not count": {func(w *MetricsWitness) { w.Pods["b"] = map[string]float64{} }, `counted 0 "conflict"`},
		// The self-test's uncounted-existing: every answer right, one outcome never counted.
		"answered existing, counted nothing for it": {func(w *MetricsWitness) {
			w.Pods["a"] = map[string]float64{OutcomeCreated: 1}
		}, `counted 0 "existing"`},
		"more counted than unanswered": {func(w *MetricsWitness) {
			w.Pods["b"][OutcomeCreated] = 2
		}, "2 registrations more"},
		"a pod not scraped": {func(w *MetricsWitness) { delete(w.Pods, "b") }, `pod "b" answered`},
	} {
		t.Run(name, func(t *testing.T) {
			w := agree()
			tc.change(w)
			vs := checkMetrics(&fixtureAPI, metricsOps(), w)
			if len(vs) == 0 || vs[0].Rule != RuleMetrics || !strings.Contains(strings.Join(vs[0].Details, " "), tc.want) {
				t.Errorf("violations %+v, want one saying %q", vs, tc.want)
			}
		})
	}
	// A pod gone before the scrape: its answers are not compared.
	w = agree()
	delete(w.Pods, "b")
	w.Gone = []string{"b"}
	if vs := checkMetrics(&fixtureAPI, metricsOps(), w); len(vs) != 0 {
		t.Errorf("gone pod: %v", vs)
	}
}

func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{200, `{"credential":"t","widget_id":"","created":false}`, OutcomeNullSubject},
		{503, `{"error":"overloaded"}`, OutcomeOverloaded},
		{503, `{"error":"unavailable"}`, OutcomeUnavailable},
		{401, `{"error":"unauthenticated"}`, OutcomeUnauthenticated},
		{403, `{"error":"forbidden"}`, OutcomeForbidden},
		{500, `{"error":"empty_subject"}`, OutcomeEmptySubject},
		{500, `{"error":"internal"}`, OutcomeError},
		{400, `{"error":"invalid_json"}`, OutcomeInvalidInput},
		{415, `{"error":"unsupported_media_type"}`, OutcomeInvalidInput},
		{502, `bad gateway`, "502 "},
	} {
		if got, ok := OutcomeOf(&fixtureAPI, history.Op{Status: tc.status, Body: tc.body}); !ok || got != tc.want {
			t.Errorf("OutcomeOf(&fixtureAPI, %d %s) = %q, %v; want %q", tc.status, tc.body, got, ok, tc.want)
		}
	}
	if _, ok := OutcomeOf(&fixtureAPI, history.Op{Error: "reset"}); ok {
		t.Error("an unanswered request has an outcome")
	}
}

// Check judges the witness it is given: the good history passes with the pods' counts as the
// answers say, and fails RuleMetrics when one pod's count is short, and the witness survives
// Save/Params for an offline re-check.
func TestCheckUsesMetricsWitness(t *testing.T) {
	ops, rows := goodHistory(t)
	w := &MetricsWitness{Pods: map[string]map[string]float64{}}
	for _, op := range ops {
		o, ok := OutcomeOf(&fixtureAPI, op)
		if !ok {
			continue
		}
		if w.Pods[op.Pod] == nil {
			w.Pods[op.Pod] = map[string]float64{}
		}
		w.Pods[op.Pod][o]++
	}
	p := params()
	p.Metrics = w
	res, err := Check(ops, rows, p)
	if err != nil || res.Counts[RuleMetrics] != 0 || res.Verdict != VerdictPass {
		t.Fatalf("agreeing witness: %v, %s %v", err, res.Verdict, res.Counts)
	}
	saved, err := p.Save().Params(fixtureAPI)
	if err != nil || saved.Metrics == nil || len(saved.Metrics.Pods) != len(w.Pods) {
		t.Fatalf("saved params lost the witness: %+v, %v", saved.Metrics, err)
	}
	for pod := range w.Pods {
		for o := range w.Pods[pod] {
			w.Pods[pod][o]--
		}
		break
	}
	res, err = Check(ops, rows, p)
	if err != nil || res.Counts[RuleMetrics] == 0 || res.Verdict != VerdictFail {
		t.Errorf("short count: %v, %s %v", err, res.Verdict, res.Counts)
	}
}
