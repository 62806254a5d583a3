package framework

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	. "github.com/onsi/gomega" //nolint:revive
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/stampede-e2e/stampede/e2e/check"
)

// PodLook is the target's pods as one look at the deployment saw them: what a restart
// or a replacement changes.
type PodLook struct {
	// At is when the pods were listed.
	At   time.Time
	Pods map[string]PodState
}

// PodState is one pod of a PodLook.
type PodState struct {
	UID     types.UID
	Created time.Time
	// Containers are its containers' states, by name.
	Containers map[string]ContainerState
}

// ContainerState is what a look tells of one container's restarts.
type ContainerState struct {
	Restarts int32
	// LastTerminated is when its previous instance ended, zero if it never did; Reason says
	// why ("Error, exit code 1").
	LastTerminated time.Time
	Reason         string
}

// lookAtPods lists the target's pods: every one not being deleted (a terminating pod is
// on its way out, as the metrics witness has it too).
func lookAtPods(ctx context.Context, client kubernetes.Interface, namespace, selector string) (PodLook, error) {
	at := time.Now()
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return PodLook{}, fmt.Errorf("list target pods: %w", err)
	}
	return podLookOf(pods.Items, at), nil
}

// podLookOf is the PodLook of pods listed at at.
func podLookOf(pods []corev1.Pod, at time.Time) PodLook {
	look := PodLook{At: at, Pods: map[string]PodState{}}
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		st := PodState{UID: p.UID, Created: p.CreationTimestamp.Time, Containers: map[string]ContainerState{}}
		for _, cs := range p.Status.ContainerStatuses {
			c := ContainerState{Restarts: cs.RestartCount}
			if t := cs.LastTerminationState.Terminated; t != nil {
				c.LastTerminated = t.FinishedAt.Time
				c.Reason = fmt.Sprintf("%s, exit code %d", t.Reason, t.ExitCode)
			}
			st.Containers[cs.Name] = c
		}
		look.Pods[p.Name] = st
	}
	return look
}

// lookAtPodsEventually is lookAtPods, tried for up to a minute (an API server that a fault
// has just shaken may refuse once).
func (d *Deployment) lookAtPodsEventually(ctx context.Context) PodLook {
	var look PodLook
	Eventually(ctx, func() (err error) {
		look, err = lookAtPods(ctx, d.Env.Client, d.Namespace, d.pods)
		return err
	}).WithTimeout(time.Minute).WithPolling(time.Second).Should(Succeed(), "list the target's pods")
	return look
}

// PodChanges are the restarts and replacements of the target's pods from before to after,
// for the checker (check.Params.Restarts), timed from base, the history's time base: a container
// whose restart count grew, a pod gone (or replaced under its name: another UID), a pod new.
// Kubernetes gives times in whole seconds, so a time it gives becomes the second it names; a pod
// gone is known only to have gone between the two looks.
func PodChanges(before, after PodLook, base time.Time) []check.Restart {
	if before.At.IsZero() {
		// No look before: nothing to compare with, rather than every pod new.
		return nil
	}
	second := func(t time.Time) (from, to time.Duration) {
		t = t.Truncate(time.Second)
		return t.Sub(base), t.Add(time.Second).Sub(base)
	}
	var out []check.Restart
	for _, name := range slices.Sorted(maps.Keys(before.Pods)) {
		if a, ok := after.Pods[name]; !ok || a.UID != before.Pods[name].UID {
			out = append(out, check.Restart{Pod: name, Change: check.RestartPodGone, From: before.At.Sub(base), To: after.At.Sub(base)})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(after.Pods)) {
		a := after.Pods[name]
		b, ok := before.Pods[name]
		if !ok || b.UID != a.UID {
			r := check.Restart{Pod: name, Change: check.RestartPodNew}
			r.From, r.To = second(a.Created)
			out = append(out, r)
			// Its containers' restarts since it was created count too.
			b = PodState{}
		}
		for _, c := range slices.Sorted(maps.Keys(a.Containers)) {
			cs := a.Containers[c]
			n := cs.Restarts - b.Containers[c].Restarts
			if n <= 0 {
				continue
			}
			r := check.Restart{Pod: name, Change: check.RestartContainer, Container: c, Count: n, Reason: cs.Reason,
				From: before.At.Sub(base), To: after.At.Sub(base)}
			if !cs.LastTerminated.IsZero() {
				r.From, r.To = second(cs.LastTerminated)
			}
			out = append(out, r)
		}
	}
	return out
}
