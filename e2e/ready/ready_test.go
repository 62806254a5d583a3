package ready

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func pod(name string, ready, terminating bool) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "x"}}}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	if terminating {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	return p
}

func deployment(gen, observed int64, updated, ready, available, total int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", Generation: gen},
		Status: appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated,
			ReadyReplicas: ready, AvailableReplicas: available, Replicas: total},
	}
}

func TestRollout(t *testing.T) {
	three := []corev1.Pod{pod("a", true, false), pod("b", true, false), pod("c", true, false)}
	for _, tc := range []struct {
		name string
		d    *appsv1.Deployment
		pods []corev1.Pod
		want bool
		why  string
	}{
		{"rolled out", deployment(2, 2, 3, 3, 3, 3), three, true, ""},
		{"generation not observed", deployment(3, 2, 3, 3, 3, 3), three, false, "not observed"},
		{"not all available", deployment(2, 2, 3, 3, 2, 3), three, false, "available 2"},
		{"old replica set still counted", deployment(2, 2, 3, 3, 3, 4), three, false, "total 4"},
		{"status says done, a deleted pod still terminating", deployment(2, 2, 3, 3, 3, 3),
			append(three, pod("old", true, true)), false, "4 exist"},
		{"a pod not ready yet", deployment(2, 2, 3, 3, 3, 3),
			[]corev1.Pod{pod("a", true, false), pod("b", true, false), pod("c", false, false)}, false, "2 ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := Rollout(tc.d, tc.pods, 3)
			if ok != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("Rollout = %v, %q; want %v, containing %q", ok, why, tc.want, tc.why)
			}
		})
	}
}

func TestPodNodeAndNodes(t *testing.T) {
	if p := pod("a", true, true); Pod(&p) {
		t.Error("a terminating pod counted as ready")
	}
	if p := pod("a", true, false); !Pod(&p) {
		t.Error("a ready pod not counted")
	}
	n := func(name string, status corev1.ConditionStatus) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}}}
	}
	if ok, _ := Nodes(nil); ok {
		t.Error("a cluster without nodes counted as ready")
	}
	if ok, why := Nodes([]corev1.Node{n("w2", corev1.ConditionUnknown), n("cp", corev1.ConditionTrue), n("w1", corev1.ConditionFalse)}); ok || why != "not ready: w1, w2" {
		t.Errorf("Nodes = %v, %q", ok, why)
	}
	if ok, _ := Nodes([]corev1.Node{n("cp", corev1.ConditionTrue)}); !ok {
		t.Error("a ready cluster not counted")
	}
}

func TestStatefulSetReady(t *testing.T) {
	ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 1}, Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, ReadyReplicas: 1, Replicas: 1}}
	if ok, why := StatefulSetReady(ss, 1); !ok {
		t.Errorf("ready statefulset: %s", why)
	}
	ss.Status.ReadyReplicas = 0
	if ok, _ := StatefulSetReady(ss, 1); ok {
		t.Error("a statefulset without a ready replica counted as ready")
	}
}

func TestWaitAgainstAFakeAPI(t *testing.T) {
	d := deployment(1, 1, 2, 2, 2, 2)
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	a, b := pod("a", true, false), pod("b", false, false)
	cs := fake.NewClientset(d, &a, &b)
	check := DeploymentRolledOut(cs, "ns", "x", "app=x", 2)
	err := Wait(context.Background(), "rollout of x", 5*time.Millisecond, 50*time.Millisecond, check)
	if err == nil || !strings.Contains(err.Error(), "1 ready") || !strings.Contains(err.Error(), "rollout of x") {
		t.Fatalf("Wait on a pod that never gets ready = %v; want the bound, naming the reason", err)
	}
	b = pod("b", true, false)
	if _, err := cs.CoreV1().Pods("ns").UpdateStatus(context.Background(), &b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Wait(context.Background(), "rollout of x", 5*time.Millisecond, time.Second, check); err != nil {
		t.Errorf("Wait once every pod is ready: %v", err)
	}
	missing := Wait(context.Background(), "rollout of y", 5*time.Millisecond, 30*time.Millisecond, DeploymentRolledOut(cs, "ns", "y", "app=y", 1))
	if missing == nil || !strings.Contains(missing.Error(), "get deployment y") {
		t.Errorf("Wait on a missing deployment = %v, want the API error as the reason", missing)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Wait(ctx, "x", time.Millisecond, time.Minute, func(context.Context) (bool, string, error) { return false, "never", nil }); err == nil ||
		!errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a cancelled context = %v", err)
	}
}

// A pod waiting for an image it could not pull ends a NoPulls wait at once, naming the pod, its
// node and the image; without one the wait runs to its timeout with the rollout's own reason.
func TestNoPullsStopsAtAMissingImage(t *testing.T) {
	ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"}, Status: appsv1.StatefulSetStatus{Replicas: 1}}
	stuck := pod("db-0", false, false)
	stuck.Spec.NodeName = "w1"
	stuck.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "db", Image: "stampede/postgres:abc",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
	starting := pod("db-0", false, false)
	starting.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "db", Image: "stampede/postgres:abc",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
	for _, tc := range []struct {
		name     string
		p        corev1.Pod
		wantStop bool
	}{{"image missing", stuck, true}, {"still starting", starting, false}} {
		cs := fake.NewClientset(ss, &tc.p)
		start := time.Now()
		err := Wait(context.Background(), "database ready", 10*time.Millisecond, 300*time.Millisecond,
			NoPulls(cs, "ns", "app=x", StatefulSetRolledOut(cs, "ns", "db", 1)))
		var stop Stop
		switch {
		case err == nil:
			t.Errorf("%s: the wait succeeded", tc.name)
		case tc.wantStop && (!errors.As(err, &stop) || !strings.Contains(err.Error(), "pod db-0 on w1: image stampede/postgres:abc: ImagePullBackOff") || time.Since(start) > 200*time.Millisecond):
			t.Errorf("%s: %v after %s, want a stop at once naming the pod, node and image", tc.name, err, time.Since(start))
		case !tc.wantStop && (errors.As(err, &stop) || !strings.Contains(err.Error(), "replicas: want 1")):
			t.Errorf("%s: %v, want the timeout with the rollout's reason", tc.name, err)
		}
	}
}
