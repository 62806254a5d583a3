// Package ready holds the suite's one set of "wait until ready" rules, for the framework, the
// chaos faults and the cluster code alike. Each rule is a pure function over API objects that
// says whether the thing is ready and, when not, why; Wait polls a rule until it holds or the
// bound passes and puts the last reason into the error.
//
// The rules, chosen on purpose:
//   - a Deployment has rolled out when its controller observed the latest generation, every one
//     of want replicas is updated, ready and available, and no pod of an older ReplicaSet is
//     left, counted from the pods themselves: the status lags a deletion, and a terminating pod
//     still receives traffic until its endpoints go;
//   - a StatefulSet when its controller observed the latest generation and want replicas are
//     ready and current;
//   - a pod when it is Ready and not terminating;
//   - a node when its Ready condition is True; a cluster when it has nodes and all are Ready.
package ready

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Pod reports whether p is Ready and not terminating.
func Pod(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Node reports whether n's Ready condition is True.
func Node(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Rollout says whether d has rolled out want replicas, given the pods its selector matches;
// when not, the second result says why.
func Rollout(d *appsv1.Deployment, pods []corev1.Pod, want int32) (bool, string) {
	s := d.Status
	if s.ObservedGeneration < d.Generation {
		return false, fmt.Sprintf("generation %d not observed yet (%d)", d.Generation, s.ObservedGeneration)
	}
	if s.UpdatedReplicas != want || s.ReadyReplicas != want || s.AvailableReplicas != want || s.Replicas != want {
		return false, fmt.Sprintf("replicas: want %d, updated %d, ready %d, available %d, total %d (old ones still terminating?)",
			want, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.Replicas)
	}
	readyPods := 0
	for i := range pods {
		if Pod(&pods[i]) {
			readyPods++
		}
	}
	if len(pods) != int(want) || readyPods != int(want) {
		return false, fmt.Sprintf("pods: want %d, %d exist, %d ready (a deleted one still terminating?)", want, len(pods), readyPods)
	}
	return true, ""
}

// StatefulSetReady says whether ss has want ready, current replicas; when not, why.
func StatefulSetReady(ss *appsv1.StatefulSet, want int32) (bool, string) {
	s := ss.Status
	if s.ObservedGeneration < ss.Generation {
		return false, fmt.Sprintf("generation %d not observed yet (%d)", ss.Generation, s.ObservedGeneration)
	}
	if s.ReadyReplicas != want || s.Replicas != want {
		return false, fmt.Sprintf("replicas: want %d, ready %d, total %d", want, s.ReadyReplicas, s.Replicas)
	}
	return true, ""
}

// Nodes says whether there are nodes and every one is Ready; when not, which are not.
func Nodes(nodes []corev1.Node) (bool, string) {
	if len(nodes) == 0 {
		return false, "no nodes"
	}
	var notReady []string
	for i := range nodes {
		if !Node(&nodes[i]) {
			notReady = append(notReady, nodes[i].Name)
		}
	}
	slices.Sort(notReady)
	return len(notReady) == 0, "not ready: " + strings.Join(notReady, ", ")
}

// Check is one look at a condition: whether it holds and, when not, why. An error is a failed
// look (an API error), retried like a false; a Stop error ends the wait at once.
type Check func(ctx context.Context) (bool, string, error)

// Stop is a Check's error that no later look can mend: Wait returns it at once.
type Stop struct{ Err error }

func (s Stop) Error() string { return s.Err.Error() }
func (s Stop) Unwrap() error { return s.Err }

// pullReasons are the waiting reasons of a container whose image could not be had.
var pullReasons = []string{"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"}

// PullFailures names, one line each, the containers of pods waiting for an image that could not be
// pulled: pod, node, image, reason and the kubelet's message.
func PullFailures(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		for _, c := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
			if w := c.State.Waiting; w != nil && slices.Contains(pullReasons, w.Reason) {
				out = append(out, fmt.Sprintf("pod %s on %s: image %s: %s: %s", p.Name, p.Spec.NodeName, c.Image, w.Reason, w.Message))
			}
		}
	}
	return out
}

// NoPulls is check, stopped as soon as a pod that selector selects in namespace waits for an
// image it could not pull: for a cluster whose nodes were given every image (kind), where any
// pull is a missing image, which no wait mends (the kubelet asks a registry this host has not).
func NoPulls(cs kubernetes.Interface, namespace, selector string, check Check) Check {
	return func(ctx context.Context) (bool, string, error) {
		ok, why, err := check(ctx)
		if ok {
			return ok, why, err
		}
		pods, lerr := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if lerr != nil {
			return ok, why, err
		}
		if f := PullFailures(pods.Items); len(f) > 0 {
			return false, "", Stop{fmt.Errorf("an image is not on the node that runs its pod (the nodes were given every image; a pull cannot succeed here): %s",
				strings.Join(f, "; "))}
		}
		return ok, why, err
	}
}

// Wait polls check every interval until it holds, ctx ends or timeout passes (zero: only ctx
// bounds it), and returns an error naming what was awaited and the last reason it did not hold.
func Wait(ctx context.Context, what string, interval, timeout time.Duration, check Check) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var last string
	var stop Stop
	err := wait.PollUntilContextCancel(ctx, interval, true, func(ctx context.Context) (bool, error) {
		ok, why, err := check(ctx)
		if errors.As(err, &stop) {
			return false, err
		}
		switch {
		case err != nil:
			last = err.Error()
		case !ok:
			last = why
		}
		return err == nil && ok, nil
	})
	if errors.As(err, &stop) {
		return fmt.Errorf("wait for %s: %w", what, err)
	}
	if err != nil {
		return fmt.Errorf("wait for %s: %w (last: %s)", what, err, last)
	}
	return nil
}

// DeploymentRolledOut is the Check of Rollout for the Deployment name in namespace, whose pods
// carry selector.
func DeploymentRolledOut(cs kubernetes.Interface, namespace, name, selector string, want int32) Check {
	return func(ctx context.Context) (bool, string, error) {
		d, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", fmt.Errorf("get deployment %s: %w", name, err)
		}
		pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, "", fmt.Errorf("list pods of %s: %w", name, err)
		}
		ok, why := Rollout(d, pods.Items, want)
		return ok, why, nil
	}
}

// StatefulSetRolledOut is the Check of StatefulSetReady for the StatefulSet name in namespace.
func StatefulSetRolledOut(cs kubernetes.Interface, namespace, name string, want int32) Check {
	return func(ctx context.Context) (bool, string, error) {
		ss, err := cs.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", fmt.Errorf("get statefulset %s: %w", name, err)
		}
		ok, why := StatefulSetReady(ss, want)
		return ok, why, nil
	}
}

// PodReady is the Check of Pod for the pod name in namespace.
func PodReady(cs kubernetes.Interface, namespace, name string) Check {
	return func(ctx context.Context) (bool, string, error) {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", fmt.Errorf("get pod %s: %w", name, err)
		}
		return Pod(p), "pod " + name + " not ready", nil
	}
}

// NodeReady is the Check of Node for the node name.
func NodeReady(cs kubernetes.Interface, name string) Check {
	return func(ctx context.Context) (bool, string, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", fmt.Errorf("get node %s: %w", name, err)
		}
		return Node(n), "node " + name + " not Ready", nil
	}
}

// NodesReady is the Check of Nodes for every node of the cluster.
func NodesReady(cs kubernetes.Interface) Check {
	return func(ctx context.Context) (bool, string, error) {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "", fmt.Errorf("list nodes: %w", err)
		}
		ok, why := Nodes(list.Items)
		return ok, why, nil
	}
}
