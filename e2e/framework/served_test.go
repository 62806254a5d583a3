package framework

import (
	"strings"
	"testing"
)

func TestServedGaps(t *testing.T) {
	ready := []string{"web-a", "web-b", "web-c"}
	all := map[string]int{"web-a": 3, "web-b": 1, "web-c": 2}
	for _, tc := range []struct {
		name   string
		rounds []ServedRound
		ready  []string
		want   []string // substrings of the gaps, in order; nil means none
	}{
		{"every pod from every node", []ServedRound{
			{Vantage: "worker", Answers: all},
			{Vantage: "worker2", Answers: all},
		}, ready, nil},
		{"a pod missing from one node", []ServedRound{
			{Vantage: "worker", Answers: all},
			{Vantage: "worker2", Answers: map[string]int{"web-a": 5, "web-c": 4}},
		}, ready, []string{"worker2: ready pods that did not answer: web-b"}},
		{"a pod that is no endpoint answers", []ServedRound{
			{Vantage: "control-plane", Answers: map[string]int{"web-a": 1, "web-b": 1, "web-c": 1, "web-old": 1}},
		}, ready, []string{"control-plane: pods that answered but are not ready endpoints: web-old"}},
		{"transport errors", []ServedRound{
			{Vantage: "worker", Answers: all, Errors: []string{"EOF", "connection reset by peer"}},
		}, ready, []string{"worker: 2 failed requests, first: EOF"}},
		{"everything wrong on one node", []ServedRound{
			{Vantage: "worker", Answers: map[string]int{"web-x": 1}, Errors: []string{"EOF"}},
		}, ready, []string{"worker: ready pods that did not answer: web-a, web-b, web-c; pods that answered but are not ready endpoints: web-x; 1 failed requests"}},
		{"no ready endpoints", []ServedRound{{Vantage: "worker", Answers: map[string]int{}}}, nil,
			[]string{"the Service has no ready endpoints"}},
		{"nowhere to ask from", nil, ready, []string{"no vantage point"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ServedGaps(tc.rounds, tc.ready)
			if len(got) != len(tc.want) {
				t.Fatalf("gaps = %q, want %d like %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("gap %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}
