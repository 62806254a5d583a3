package framework

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/attack/attackjob"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

func TestAttackDeadline(t *testing.T) {
	p := attack.Plan{Customers: traffic.Customers(1, 40, 4), Gap: 100 * time.Millisecond, Retry: DefaultRetry}
	got := attackDeadline(p, 10*time.Second)
	// lead 10s + bursts 4s + a timeout 10s + twice 5 retries of (2s wait + 10s timeout) + 1 min.
	if want := 204 * time.Second; got != want {
		t.Errorf("deadline %s, want %s", got, want)
	}
}

func TestAttackersLog(t *testing.T) {
	r := &attackjob.Result{Took: 12 * time.Second, Pods: []attackjob.Pod{
		{Name: "a-0", Index: 0, Node: "w1", Phase: corev1.PodSucceeded,
			Output: attack.Output{Trailer: attack.Trailer{Slack: 3 * time.Second}, Log: []string{"time=1 msg=plan"}}},
		{Name: "a-1", Index: 1, Node: "w2", Phase: corev1.PodFailed, Log: []byte("panic: boom\n"), OutputErr: errors.New("no trailer")},
	}}
	got := attackersLog(r, []serverClock{newServerClock(40*time.Millisecond, time.Millisecond, true)})
	for _, want := range []string{"2 pods, 12s", "== pod a-0, index 0, node w1, Succeeded: slack 3s", "time=1 msg=plan",
		"output unreadable: no trailer", "panic: boom", "clock: 40ms ahead of this host's, within 1ms; ops moved by -40ms",
		"clock: not measured"} {
		if !strings.Contains(got, want) {
			t.Errorf("attackers.log lacks %q:\n%s", want, got)
		}
	}
}
