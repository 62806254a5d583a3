package check

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
)

func TestParseRegistrations(t *testing.T) {
	text := `# HELP widgets_created_total POST /v1/widgets outcomes by mode.
# TYPE widgets_created_total counter
widgets_created_total{outcome="created",mode="atomic"} 3
widgets_created_total{outcome="existing",mode="atomic"} 5
widgets_created_total{outcome="existing",mode="legacy"} 1
# TYPE go_goroutines gauge
go_goroutines 7
`
	got, err := ParseOutcomes(text, fixtureAPI.Counter)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]float64{"created": 3, "existing": 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("ParseRegistrations = %v, want %v", got, want)
	}
	if got, err := ParseOutcomes("go_goroutines 7\n", fixtureAPI.Counter); err != nil || len(got) != 0 {
		t.Errorf("no series yet: %v, %v", got, err)
	}
	if _, err := ParseOutcomes("widgets_created_total{outcome=\n", fixtureAPI.Counter); err == nil {
		t.Error("a broken exposition parsed")
	}
}

// counter is a scrape of a pod that counted each outcome of pairs (outcome, count, ...).
func counter(pairs ...any) string {
	var b strings.Builder
	b.WriteString("# TYPE widgets_created_total counter\n")
	for i := 0; i < len(pairs); i += 2 {
		fmt.Fprintf(&b, "widgets_created_total{outcome=%q,mode=\"atomic\"} %d\n", pairs[i], pairs[i+1])
	}
	return b.String()
}

func TestScrapesWitness(t *testing.T) {
	s := MetricsScrapes{
		Before: map[string]string{"a": counter("created", 2), "gone": counter("created", 1), "restarted": counter("created", 4)},
		After:  map[string]string{"a": counter("created", 5, "existing", 1), "new": counter("conflict", 2), "restarted": counter("created", 1)},
	}
	// "between" came and went while the traffic ran (a scale fault): it answered, and is gone.
	ops := []history.Op{{Pod: "a"}, {Pod: "between"}, {Pod: "new"}, {Pod: ""}}
	w, err := s.Witness(ops, fixtureAPI.Counter)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]float64{"a": {"created": 3, "existing": 1}, "new": {"conflict": 2}}
	if !reflect.DeepEqual(w.Pods, want) || !reflect.DeepEqual(w.Gone, []string{"between", "gone", "restarted"}) {
		t.Errorf("Witness = %+v, want pods %v and gone [between gone restarted]", w, want)
	}
	s.After["a"] = "widgets_created_total{outcome=\n"
	if _, err := s.Witness(ops, fixtureAPI.Counter); err == nil || !strings.Contains(err.Error(), "metrics of a") {
		t.Errorf("a scrape that does not parse: %v; want an error naming the pod", err)
	}
}

// TestSavedScrapesRejudged: judge.json keeps the raw scrapes and a re-check parses them again:
// the same scrapes give the same verdict, a scrape whose count is short fails RuleMetrics, and
// a version 1 file's contract is replaced by its strategy's.
func TestSavedScrapesRejudged(t *testing.T) {
	ops, rows := goodHistory(t)
	counts := map[string]map[string]int{}
	for _, op := range ops {
		if o, ok := OutcomeOf(&fixtureAPI, op); ok {
			if counts[op.Pod] == nil {
				counts[op.Pod] = map[string]int{}
			}
			counts[op.Pod][o]++
		}
	}
	scrape := func(short int) map[string]string {
		out := map[string]string{}
		for pod, c := range counts {
			var pairs []any
			for o, n := range c {
				if pod == "pod-a" && o == OutcomeCreated {
					n -= short
				}
				pairs = append(pairs, o, n)
			}
			out[pod] = counter(pairs...)
		}
		return out
	}
	judgeSaved := func(s *MetricsScrapes) Result {
		t.Helper()
		p := params()
		p.Scrapes = s
		b, err := json.Marshal(p.Save())
		if err != nil {
			t.Fatal(err)
		}
		var saved SavedParams
		if err := json.Unmarshal(b, &saved); err != nil {
			t.Fatal(err)
		}
		q, err := saved.Params(fixtureAPI)
		if err != nil {
			t.Fatal(err)
		}
		q.Base = base
		res, err := Check(ops, rows, q)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := judgeSaved(&MetricsScrapes{Before: map[string]string{}, After: scrape(0)}); res.Verdict != VerdictPass {
		t.Fatalf("agreeing scrapes: %s %v", res.Verdict, res.Counts)
	}
	if res := judgeSaved(&MetricsScrapes{Before: map[string]string{}, After: scrape(1)}); res.Counts[RuleMetrics] == 0 {
		t.Fatalf("a short count in the raw scrape: %s %v; want a metrics violation", res.Verdict, res.Counts)
	}

	loose := contract(t, modeAtomic)
	loose.Lines = append(loose.Lines, ContractLine{ID: "anything", Status: 409, Code: "conflict"})
	old := params().Save()
	old.Version, old.Strategy, old.Contract = 0, "", &loose
	q, err := old.Params(fixtureAPI)
	if err != nil || !reflect.DeepEqual(q.Contract, contract(t, modeAtomic)) {
		t.Fatalf("version 1 contract %+v (%v); want atomic's from the API", q.Contract, err)
	}
}
