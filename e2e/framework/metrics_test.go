package framework

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseRegistrations(t *testing.T) {
	text := `# HELP tokensvc_registrations_total POST /v1/tokens outcomes by create strategy.
# TYPE tokensvc_registrations_total counter
tokensvc_registrations_total{outcome="created",strategy="atomic"} 3
tokensvc_registrations_total{outcome="existing",strategy="atomic"} 5
tokensvc_registrations_total{outcome="existing",strategy="legacy"} 1
# TYPE go_goroutines gauge
go_goroutines 7
`
	got, err := parseRegistrations(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]float64{"created": 3, "existing": 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("parseRegistrations = %v, want %v", got, want)
	}
	if got, err := parseRegistrations(strings.NewReader("go_goroutines 7\n")); err != nil || len(got) != 0 {
		t.Errorf("no series yet: %v, %v", got, err)
	}
	if _, err := parseRegistrations(strings.NewReader("tokensvc_registrations_total{outcome=\n")); err == nil {
		t.Error("a broken exposition parsed")
	}
}

func TestWitness(t *testing.T) {
	before := PodCounts{"a": {"created": 2}, "gone": {"created": 1}, "restarted": {"created": 4}}
	after := PodCounts{"a": {"created": 5, "existing": 1}, "new": {"conflict": 2}, "restarted": {"created": 1}}
	// "between" came and went while the traffic ran (a scale fault): it answered, and is gone.
	w := Witness(before, after, []string{"a", "between", "new", ""})
	want := map[string]map[string]float64{"a": {"created": 3, "existing": 1}, "new": {"conflict": 2}}
	if !reflect.DeepEqual(w.Pods, want) || !reflect.DeepEqual(w.Gone, []string{"between", "gone", "restarted"}) {
		t.Errorf("Witness = %+v, want pods %v and gone [gone]", w, want)
	}
}
