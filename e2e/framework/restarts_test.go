package framework

import (
	"context"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/manifests"
)

// podMaker makes pods of a workload: named name, whose container restarted restarts times, the
// last one ending at lastEnd (none if zero).
type podMaker func(name string, uid types.UID, created time.Time, restarts int32, lastEnd time.Time) corev1.Pod

// workloadPods makes pods of the test target's workload, labelled with its name, and returns
// its container's name.
func workloadPods(t *testing.T) (podMaker, string) {
	t.Helper()
	w := loadTestTarget(t).Deploy.Workload
	return func(name string, uid types.UID, created time.Time, restarts int32, lastEnd time.Time) corev1.Pod {
		cs := corev1.ContainerStatus{Name: w.Container, RestartCount: restarts}
		if !lastEnd.IsZero() {
			cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, FinishedAt: metav1.NewTime(lastEnd)}
		}
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: uid, CreationTimestamp: metav1.NewTime(created),
				Labels: map[string]string{manifests.NameLabel: w.Name}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{cs}},
		}
	}, w.Container
}

func TestPodChanges(t *testing.T) {
	pod, container := workloadPods(t)
	base := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	s := time.Second
	created := base.Add(-time.Minute)
	lookBefore, lookAfter := base.Add(-2*s), base.Add(40*s)
	before := podLookOf([]corev1.Pod{
		pod("a", "uid-a", created, 0, time.Time{}),
		pod("b", "uid-b", created, 1, created.Add(s)), // restarted before the run: no change
		pod("c", "uid-c", created, 0, time.Time{}),
		pod("d", "uid-d", created, 0, time.Time{}),
	}, lookBefore)

	same := podLookOf([]corev1.Pod{
		pod("a", "uid-a", created, 0, time.Time{}),
		pod("b", "uid-b", created, 1, created.Add(s)),
		pod("c", "uid-c", created, 0, time.Time{}),
		pod("d", "uid-d", created, 0, time.Time{}),
	}, lookAfter)
	if got := PodChanges(before, same, base); len(got) != 0 {
		t.Fatalf("nothing changed, yet %+v", got)
	}

	terminating := pod("d", "uid-d", created, 0, time.Time{})
	terminating.DeletionTimestamp = &metav1.Time{Time: base.Add(30 * s)}
	after := podLookOf([]corev1.Pod{
		pod("a", "uid-a", created, 2, base.Add(12*s+300*time.Millisecond)), // crashed twice
		pod("b", "uid-b", created, 1, created.Add(s)),
		pod("c", "uid-c2", base.Add(20*s), 1, base.Add(25*s)), // replaced under its name, then crashed
		terminating,
		pod("e", "uid-e", base.Add(21*s), 0, time.Time{}), // new
	}, lookAfter)
	want := []check.Restart{
		{Pod: "c", Change: check.RestartPodGone, From: -2 * s, To: 40 * s},
		{Pod: "d", Change: check.RestartPodGone, From: -2 * s, To: 40 * s},
		{Pod: "a", Change: check.RestartContainer, Container: container, Count: 2, From: 12 * s, To: 13 * s, Reason: "Error, exit code 1"},
		{Pod: "c", Change: check.RestartPodNew, From: 20 * s, To: 21 * s},
		{Pod: "c", Change: check.RestartContainer, Container: container, Count: 1, From: 25 * s, To: 26 * s, Reason: "Error, exit code 1"},
		{Pod: "e", Change: check.RestartPodNew, From: 21 * s, To: 22 * s},
	}
	if got := PodChanges(before, after, base); !reflect.DeepEqual(got, want) {
		t.Errorf("changes\n got %+v\nwant %+v", got, want)
	}

	if got := PodChanges(PodLook{}, after, base); got != nil {
		t.Errorf("no look before, yet changes %+v", got)
	}

	// A restart whose pod does not say when: anywhere between the looks.
	noTime := podLookOf([]corev1.Pod{pod("a", "uid-a", created, 1, time.Time{})}, lookAfter)
	got := PodChanges(podLookOf([]corev1.Pod{pod("a", "uid-a", created, 0, time.Time{})}, lookBefore), noTime, base)
	if want := []check.Restart{{Pod: "a", Change: check.RestartContainer, Container: container, Count: 1, From: -2 * s, To: 40 * s}}; !reflect.DeepEqual(got, want) {
		t.Errorf("a restart without a time: %+v, want %+v", got, want)
	}
}

// TestLookAtPods: only the target's pods are looked at.
func TestLookAtPods(t *testing.T) {
	pod, container := workloadPods(t)
	name := loadTestTarget(t).Deploy.Workload.Name
	other := pod("pg-0", "uid-pg", time.Now(), 3, time.Time{})
	other.Labels = map[string]string{manifests.NameLabel: manifests.PostgresName}
	mine := pod("a", "uid-a", time.Now(), 1, time.Time{})
	cs := fake.NewClientset(&mine, &other)
	look, err := lookAtPods(context.Background(), cs, "ns", manifests.Selector(name))
	if err != nil {
		t.Fatal(err)
	}
	if len(look.Pods) != 1 || look.Pods["a"].Containers[container].Restarts != 1 {
		t.Errorf("look %+v, want pod a alone, restarted once", look)
	}
}
