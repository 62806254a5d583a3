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

// tokensvcPod is a token service pod whose container restarted restarts times, the last one
// ending at lastEnd (none if zero).
func tokensvcPod(name string, uid types.UID, created time.Time, restarts int32, lastEnd time.Time) corev1.Pod {
	cs := corev1.ContainerStatus{Name: "tokensvc", RestartCount: restarts}
	if !lastEnd.IsZero() {
		cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, FinishedAt: metav1.NewTime(lastEnd)}
	}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: uid, CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{manifests.NameLabel: manifests.TokensvcName}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{cs}},
	}
}

func TestPodChanges(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	s := time.Second
	created := base.Add(-time.Minute)
	lookBefore, lookAfter := base.Add(-2*s), base.Add(40*s)
	before := podLookOf([]corev1.Pod{
		tokensvcPod("a", "uid-a", created, 0, time.Time{}),
		tokensvcPod("b", "uid-b", created, 1, created.Add(s)), // restarted before the run: no change
		tokensvcPod("c", "uid-c", created, 0, time.Time{}),
		tokensvcPod("d", "uid-d", created, 0, time.Time{}),
	}, lookBefore)

	same := podLookOf([]corev1.Pod{
		tokensvcPod("a", "uid-a", created, 0, time.Time{}),
		tokensvcPod("b", "uid-b", created, 1, created.Add(s)),
		tokensvcPod("c", "uid-c", created, 0, time.Time{}),
		tokensvcPod("d", "uid-d", created, 0, time.Time{}),
	}, lookAfter)
	if got := PodChanges(before, same, base); len(got) != 0 {
		t.Fatalf("nothing changed, yet %+v", got)
	}

	terminating := tokensvcPod("d", "uid-d", created, 0, time.Time{})
	terminating.DeletionTimestamp = &metav1.Time{Time: base.Add(30 * s)}
	after := podLookOf([]corev1.Pod{
		tokensvcPod("a", "uid-a", created, 2, base.Add(12*s+300*time.Millisecond)), // crashed twice
		tokensvcPod("b", "uid-b", created, 1, created.Add(s)),
		tokensvcPod("c", "uid-c2", base.Add(20*s), 1, base.Add(25*s)), // replaced under its name, then crashed
		terminating,
		tokensvcPod("e", "uid-e", base.Add(21*s), 0, time.Time{}), // new
	}, lookAfter)
	want := []check.Restart{
		{Pod: "c", Change: check.RestartPodGone, From: -2 * s, To: 40 * s},
		{Pod: "d", Change: check.RestartPodGone, From: -2 * s, To: 40 * s},
		{Pod: "a", Change: check.RestartContainer, Container: "tokensvc", Count: 2, From: 12 * s, To: 13 * s, Reason: "Error, exit code 1"},
		{Pod: "c", Change: check.RestartPodNew, From: 20 * s, To: 21 * s},
		{Pod: "c", Change: check.RestartContainer, Container: "tokensvc", Count: 1, From: 25 * s, To: 26 * s, Reason: "Error, exit code 1"},
		{Pod: "e", Change: check.RestartPodNew, From: 21 * s, To: 22 * s},
	}
	if got := PodChanges(before, after, base); !reflect.DeepEqual(got, want) {
		t.Errorf("changes\n got %+v\nwant %+v", got, want)
	}

	if got := PodChanges(PodLook{}, after, base); got != nil {
		t.Errorf("no look before, yet changes %+v", got)
	}

	// A restart whose pod does not say when: anywhere between the looks.
	noTime := podLookOf([]corev1.Pod{tokensvcPod("a", "uid-a", created, 1, time.Time{})}, lookAfter)
	got := PodChanges(podLookOf([]corev1.Pod{tokensvcPod("a", "uid-a", created, 0, time.Time{})}, lookBefore), noTime, base)
	if want := []check.Restart{{Pod: "a", Change: check.RestartContainer, Container: "tokensvc", Count: 1, From: -2 * s, To: 40 * s}}; !reflect.DeepEqual(got, want) {
		t.Errorf("a restart without a time: %+v, want %+v", got, want)
	}
}

// TestLookAtPods: only the token service's pods are looked at.
func TestLookAtPods(t *testing.T) {
	other := tokensvcPod("pg-0", "uid-pg", time.Now(), 3, time.Time{})
	other.Labels = map[string]string{manifests.NameLabel: manifests.PostgresName}
	mine := tokensvcPod("a", "uid-a", time.Now(), 1, time.Time{})
	cs := fake.NewClientset(&mine, &other)
	look, err := lookAtPods(context.Background(), cs, "ns", manifests.Selector(manifests.TokensvcName))
	if err != nil {
		t.Fatal(err)
	}
	if len(look.Pods) != 1 || look.Pods["a"].Containers["tokensvc"].Restarts != 1 {
		t.Errorf("look %+v, want pod a alone, restarted once", look)
	}
}
