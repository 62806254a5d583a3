package chaos

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/stampede-e2e/stampede/e2e/cluster"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/manifests"
)

func TestPlanIsFixedBySeedAndName(t *testing.T) {
	a, b := NewPlan(42, "pod-kill"), NewPlan(42, "pod-kill")
	if a != b {
		t.Fatalf("same seed and fault, different plans: %v / %v", a, b)
	}
	if a == NewPlan(43, "pod-kill") {
		t.Errorf("another seed gave the same plan %v", a)
	}
	if c := NewPlan(42, "scale"); c.Offset == a.Offset && c.Hold == a.Hold && c.Draw == a.Draw {
		t.Errorf("another fault gave the same plan %v", c)
	}
	for seed := range uint64(500) {
		p := NewPlan(seed, "node-loss")
		if p.Offset < MinOffset || p.Offset > MaxOffset || p.Hold < MinHold || p.Hold > MaxHold {
			t.Fatalf("seed %d: %v outside [%s,%s] / [%s,%s]", seed, p, MinOffset, MaxOffset, MinHold, MaxHold)
		}
		if i := p.Pick(3); i < 0 || i > 2 {
			t.Fatalf("seed %d: Pick(3) = %d", seed, i)
		}
	}
	if NewPlan(1, "x").Pick(0) != -1 {
		t.Errorf("Pick(0) must say there is nothing to pick")
	}
}

func TestPlanPicksEveryTarget(t *testing.T) {
	seen := map[int]bool{}
	for seed := range uint64(100) {
		seen[NewPlan(seed, "pod-kill").Pick(3)] = true
	}
	if len(seen) != 3 {
		t.Errorf("100 seeds picked only targets %v of 3", seen)
	}
}

func TestRegistry(t *testing.T) {
	names := Names()
	want := []string{"pod-kill", "rolling-restart", "scale", "db-restart", "db-crash", "db-latency", "db-cut", "node-loss", "partition"}
	if !slices.Equal(names, want) {
		t.Errorf("registry %v, want %v", names, want)
	}
	if _, err := ByName("no-such-fault"); err == nil {
		t.Errorf("ByName must refuse an unknown fault")
	}
	for _, n := range names {
		f, err := ByName(n)
		if err != nil || f.Name() != n {
			t.Errorf("ByName(%q) = %v, %v", n, f, err)
		}
	}
	toxic := map[string]bool{"db-latency": true, "db-cut": true}
	for _, f := range Registry {
		if NeedsToxiproxy(f) != toxic[f.Name()] {
			t.Errorf("%s: NeedsToxiproxy = %v", f.Name(), NeedsToxiproxy(f))
		}
	}
}

func TestAvailable(t *testing.T) {
	existing := &Target{Mode: "existing", Replicas: 3}
	nodes := []cluster.Node{{Name: "c-worker", Role: "worker", Container: "c-worker"}}
	kind := &Target{Mode: "kind", Cluster: "stampede-e2e", Nodes: nodes, Replicas: 3, ToxiproxyImage: "stampede/toxiproxy:v2.12.0-x"}
	for _, tc := range []struct {
		fault   Fault
		target  *Target
		wantErr string
	}{
		{PodKill{}, existing, ""},
		{RollingRestart{}, existing, ""},
		{Scale{}, existing, ""},
		{DBRestart{}, existing, ""},
		{DBRestart{}, &Target{Mode: "existing", Replicas: 3, DatabaseOnEmptyDir: true}, "emptyDir"},
		{DBLatency{}, existing, "no toxiproxy image"},
		{DBCut{}, existing, "no toxiproxy image"},
		{NodeLoss{}, existing, "existing mode"},
		{Partition{}, existing, "existing mode"},
		{DBCrash{}, existing, "existing mode"},
		{DBCrash{}, kind, ""},
		{DBLatency{}, kind, ""},
		{NodeLoss{}, kind, ""},
		{Partition{}, kind, ""},
		{Partition{}, &Target{Mode: "reuse", Cluster: "c", Nodes: nodes, Replicas: 1}, "there are 1"},
		{NodeLoss{}, &Target{Mode: "kind", Cluster: "c", Replicas: 3}, "given none"},
	} {
		err := tc.fault.Available(tc.target)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s in %s mode: %v", tc.fault.Name(), tc.target.Mode, err)
		case tc.wantErr != "" && (err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s in %s mode: %v, want ErrUnavailable saying %q", tc.fault.Name(), tc.target.Mode, err, tc.wantErr)
		}
	}
}

func op(call, ret time.Duration, status int, phase history.Phase) history.Op {
	o := history.Op{Call: call, Return: ret, Status: status, Phase: phase}
	if status == 0 {
		o.Error = "connection reset by peer"
	}
	return o
}

func TestWindow(t *testing.T) {
	s := time.Second
	ops := []history.Op{
		op(1*s, 2*s, 200, history.PhaseBurst),           // before
		op(3*s, 4*s, 200, history.PhaseBurst),           // inside
		op(4*s, 9*s, 503, history.PhaseBurst),           // inside, returned after
		op(5*s, 6*s, 0, history.PhaseBurst),             // inside, unknown
		op(6*s, 7*s, 200, history.PhaseRetry),           // inside, a retry
		op(8*s, 8*s+100*time.Millisecond, 200, "burst"), // at the end: inside
		op(9*s, 10*s, 503, history.PhaseBurst),          // after
	}
	// Inside, but sent with keys that may not register: refused by design, left out.
	for _, k := range []history.KeyKind{history.KeyNone, history.KeyMalformed, history.KeyUnknown, history.KeyForeign} {
		o := op(4*s, 4*s+100*time.Millisecond, 401, history.PhaseBurst)
		o.KeyKind = k
		ops = append(ops, o)
	}
	w := Window(ops, history.Event{Start: 3 * s, End: 8 * s})
	want := WindowStats{Requests: 5, Successes: 3, Errors: 1, Unknown: 1}
	if w != want {
		t.Fatalf("Window = %+v, want %+v", w, want)
	}
	if r := w.Ratio(); r != 0.6 {
		t.Errorf("Ratio = %v, want 0.6", r)
	}
	if (WindowStats{}).Ratio() != 0 {
		t.Errorf("an empty window has ratio 0")
	}
}

func TestRecovery(t *testing.T) {
	s := time.Second
	ms := time.Millisecond
	good := func(start time.Duration) Round {
		return Round{Start: start, Ops: []history.Op{
			op(start, start+100*ms, 200, history.PhaseBurst),
			op(start+10*ms, start+300*ms, 200, history.PhaseBurst),
		}}
	}
	bad := func(start time.Duration) Round {
		return Round{Start: start, Ops: []history.Op{
			op(start, start+100*ms, 200, history.PhaseBurst),
			op(start, start+5*s, 503, history.PhaseBurst),
			op(start+6*s, start+6100*ms, 200, history.PhaseRetry), // retried to success: still not recovered
		}}
	}
	unknown := Round{Start: 12 * s, Ops: []history.Op{op(12*s, 13*s, 0, history.PhaseBurst)}}
	// A round whose own-key requests all got a 2xx, and whose wrong-key ones were refused as
	// they must be: recovered. The same 401 to an own-key request is not.
	refused := func(o history.Op, kind history.KeyKind) history.Op {
		o.KeyKind = kind
		return o
	}
	withRefusals := func(start time.Duration, ownStatus int) Round {
		r := good(start)
		for i := range r.Ops {
			r.Ops[i].KeyKind = history.KeyOwn
		}
		r.Ops = append(r.Ops, refused(op(start, start+50*ms, 401, history.PhaseBurst), history.KeyMalformed),
			refused(op(start, start+60*ms, 403, history.PhaseBurst), history.KeyForeign),
			refused(op(start, start+70*ms, ownStatus, history.PhaseBurst), history.KeyOwn))
		return r
	}
	// A round of two customers whose bursts' losers got 409 (in progress): by design when the
	// mode's contract gives it to a race's loser, but only while each customer got a 2xx.
	raced := func(start time.Duration, secondWon bool) Round {
		r := Round{Start: start}
		for c := range 2 {
			won := op(start, start+100*ms, 201, history.PhaseBurst)
			if c == 1 && !secondWon {
				won.Status = 409
			}
			lost := op(start+10*ms, start+300*ms, 409, history.PhaseBurst)
			won.Customer.Index, lost.Customer.Index = c, c
			r.Ops = append(r.Ops, won, lost)
		}
		return r
	}
	in409 := func(o history.Op) bool { return o.Status == 409 }
	for _, tc := range []struct {
		name     string
		rounds   []Round
		end      time.Duration
		byDesign func(history.Op) bool
		want     time.Duration
		ok       bool
	}{
		{"a race's losers answered by design", []Round{raced(11*s, true)}, 10 * s, in409, 1300 * ms, true},
		{"the same answers, not by design", []Round{raced(11*s, true)}, 10 * s, nil, 0, false},
		{"by design, but a customer got no 2xx", []Round{raced(11*s, false), raced(12*s, true)}, 10 * s, in409, 2300 * ms, true},
		{"by design does not excuse a 503", []Round{bad(11 * s)}, 10 * s, in409, 0, false},
		{"first round after the end", []Round{good(5 * s), bad(10 * s), good(11 * s)}, 10 * s, nil, 1300 * ms, true},
		{"a good round before the end does not count", []Round{good(9 * s)}, 10 * s, nil, 0, false},
		{"unknown outcomes are not successes", []Round{unknown, good(14 * s)}, 10 * s, nil, 4300 * ms, true},
		{"order of the slice does not matter", []Round{good(15 * s), good(11 * s)}, 10 * s, nil, 1300 * ms, true},
		{"never", []Round{bad(11 * s), bad(12 * s)}, 10 * s, nil, 0, false},
		{"a round without bursts is not a success", []Round{{Start: 11 * s}}, 10 * s, nil, 0, false},
		{"wrong keys refused do not count", []Round{withRefusals(11*s, 200)}, 10 * s, nil, 1300 * ms, true},
		{"an own key refused does", []Round{withRefusals(11*s, 401)}, 10 * s, nil, 0, false},
	} {
		got, ok := Recovery(tc.rounds, tc.end, tc.byDesign)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: Recovery = %s, %v; want %s, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func readyPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{manifests.NameLabel: manifests.TokensvcName}},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func TestPodKillDeletesThePlannedPod(t *testing.T) {
	cs := fake.NewClientset(readyPod("tokensvc-c", "w2"), readyPod("tokensvc-a", "w1"), readyPod("tokensvc-b", "w1"))
	target := &Target{Client: cs, Namespace: "ns", Replicas: 3, Workload: tokensvc, Container: tokensvc, Pods: manifests.Selector(tokensvc)}
	p := NewPlan(1, "pod-kill")
	want := []string{"tokensvc-a", "tokensvc-b", "tokensvc-c"}[p.Pick(3)]
	inj, err := PodKill{}.Inject(context.Background(), target, p)
	if err != nil {
		t.Fatal(err)
	}
	if inj.Target != want {
		t.Errorf("killed %s, the plan picked %s", inj.Target, want)
	}
	left, _ := cs.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
	for _, pod := range left.Items {
		if pod.Name == want {
			t.Errorf("%s still exists", want)
		}
	}
	if len(left.Items) != 2 {
		t.Errorf("%d pods left, want 2", len(left.Items))
	}
}

func TestNodeFaultsTouchOnlyTheirClusterContainers(t *testing.T) {
	target := &Target{Mode: "kind", Cluster: "mine", Nodes: []cluster.Node{
		{Name: "mine-control-plane", Role: "control-plane", Container: "mine-control-plane"},
		{Name: "mine-worker", Role: "worker", Container: "mine-worker"},
	}}
	if _, err := target.container("other-worker"); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("a node that is not the cluster's must be refused, got %v", err)
	}
	if c, err := target.container("mine-worker"); err != nil || c != "mine-worker" {
		t.Errorf("the cluster's own worker: %q, %v", c, err)
	}
	if ws := target.workers(); len(ws) != 1 || ws[0].Name != "mine-worker" {
		t.Errorf("workers = %+v, want mine-worker only", ws)
	}
	if err := (NodeLoss{}).Available(&Target{Mode: "kind", Cluster: "mine"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("node-loss without the cluster's nodes: %v, want unavailable", err)
	}
}

func TestNodeLossPausesAndResumesThePlannedWorker(t *testing.T) {
	node := func(name string, cp bool) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		if cp {
			n.Labels["node-role.kubernetes.io/control-plane"] = ""
		}
		return n
	}
	cs := fake.NewClientset(node("mine-control-plane", true), node("mine-worker", false), node("mine-worker2", false))
	var calls []string
	target := &Target{Client: cs, Namespace: "ns", Workload: tokensvc, Container: tokensvc, Pods: manifests.Selector(tokensvc), Mode: "reuse", Cluster: "mine", Nodes: []cluster.Node{
		{Name: "mine-control-plane", Role: "control-plane", Container: "mine-control-plane"},
		{Name: "mine-worker2", Role: "worker", Container: "mine-worker2"},
		{Name: "mine-worker", Role: "worker", Container: "mine-worker"},
	}, Docker: func(_ context.Context, args ...string) ([]byte, error) {
		calls = append(calls, strings.Join(args, " "))
		return nil, nil
	}}
	p := NewPlan(3, "node-loss")
	want := []string{"mine-worker", "mine-worker2"}[p.Pick(2)]
	inj, err := NodeLoss{}.Inject(context.Background(), target, p)
	if err != nil {
		t.Fatal(err)
	}
	if inj.Target != want || !slices.Contains(calls, "pause "+want) {
		t.Fatalf("paused %s (calls %v), the plan picked %s", inj.Target, calls, want)
	}
	// Recover resumes the node first; the waits that follow need pods this fake has not.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = inj.Recover(ctx)
	if !slices.Contains(calls, "unpause "+want) {
		t.Errorf("Recover did not resume %s: %v", want, calls)
	}
}

// db-crash kills the postmaster's PID inside the node that runs postgres-0, found through
// crictl, and touches nothing else; Recover waits for a restart of the same pod's container.
func TestDBCrashKillsThePostmasterInItsNode(t *testing.T) {
	pg := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: manifests.PostgresPod, Namespace: "ns", UID: "pg-1"},
		Spec:       corev1.PodSpec{NodeName: "mine-worker2"},
		Status: corev1.PodStatus{
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: manifests.PostgresName, RestartCount: 2}},
		},
	}
	cs := fake.NewClientset(pg)
	var calls []string
	target := &Target{Client: cs, Namespace: "ns", Workload: tokensvc, Container: tokensvc, Pods: manifests.Selector(tokensvc), Mode: "kind", Cluster: "mine", Replicas: 3, Nodes: []cluster.Node{
		{Name: "mine-worker", Role: "worker", Container: "mine-worker"},
		{Name: "mine-worker2", Role: "worker", Container: "mine-worker2"},
	}, Docker: func(_ context.Context, args ...string) ([]byte, error) {
		calls = append(calls, strings.Join(args, " "))
		switch {
		case slices.Contains(args, "pods"):
			return []byte("sandbox1\n"), nil
		case slices.Contains(args, "ps"):
			return []byte("container1\n"), nil
		case slices.Contains(args, "inspect"):
			return []byte("4242\n"), nil
		}
		return nil, nil
	}}
	inj, err := DBCrash{}.Inject(context.Background(), target, NewPlan(1, "db-crash"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(calls, "exec mine-worker2 kill -KILL 4242") {
		t.Fatalf("no SIGKILL of the postmaster in postgres-0's node: %v", calls)
	}
	for _, c := range calls {
		if !strings.HasPrefix(c, "exec mine-worker2 ") {
			t.Errorf("touched something besides postgres-0's node: %q", c)
		}
	}
	if inj.Held || inj.Target != manifests.PostgresPod || !strings.Contains(inj.Detail, "restart 3") {
		t.Errorf("injection %+v", inj)
	}
	// Still the old container status: Recover must not call that recovered.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := inj.Recover(ctx); err == nil {
		t.Errorf("Recover succeeded before the container restarted")
	}
	// The pod replaced instead of its container restarted: an error at once, not a long wait.
	if err := cs.CoreV1().Pods("ns").Delete(context.Background(), pg.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	other := pg.DeepCopy()
	other.UID = "pg-2"
	if _, err := cs.CoreV1().Pods("ns").Create(context.Background(), other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := inj.Recover(context.Background()); err == nil || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("Recover after the pod was replaced: %v, want an error naming it", err)
	}
}

// tokensvc names the target workload the tests' fake pods belong to.
const tokensvc = manifests.TokensvcName
