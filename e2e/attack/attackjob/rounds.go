package attackjob

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/stampede-e2e/stampede/e2e/attack"
)

// RoundsLabel carries the round servers' Deployment name on its pods: the anti-affinity and the
// listing use it.
const RoundsLabel = "stampede.io/rounds"

// RoundServerParams say what RenderRoundServers renders: Replicas long-lived attacker pods
// (stampede-attacker serve) that take plans over a port-forward, for traffic in many short
// rounds.
type RoundServerParams struct {
	// Name is the Deployment's, a DNS label.
	Name      string
	Namespace string
	Image     string
	// PullPolicy is IfNotPresent unless set.
	PullPolicy corev1.PullPolicy
	// Replicas is the number of servers, the shards of every round.
	Replicas int
	// Labels go on the Deployment and its pods, besides its own.
	Labels map[string]string
	// KeysSecret names the Secret of the tenants' API keys (KeysSecret renders one); empty:
	// no request carries a key.
	KeysSecret string
}

func (p RoundServerParams) validate() error {
	var errs []error
	for _, msg := range validation.IsDNS1123Label(p.Name) {
		errs = append(errs, fmt.Errorf("round servers' name %q: %s", p.Name, msg))
	}
	for _, msg := range validation.IsDNS1123Label(p.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: %s", p.Namespace, msg))
	}
	if err := validImage(p.Image); err != nil {
		errs = append(errs, err)
	}
	if p.Replicas < 1 {
		errs = append(errs, fmt.Errorf("%d round servers: want at least 1", p.Replicas))
	}
	return errors.Join(errs...)
}

// RenderRoundServers returns the Deployment of p.Replicas round servers: the same pod as a
// Job's attacker (restricted profile, keys mounted read-only, spread over the nodes by
// preference) running "stampede-attacker serve", ready once it answers attack.HealthPath.
func RenderRoundServers(p RoundServerParams) (*appsv1.Deployment, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("render the round servers: %w", err)
	}
	labels := maps.Clone(p.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels["app.kubernetes.io/name"] = AppName
	labels[RoundsLabel] = p.Name
	pull := p.PullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	args := []string{"serve", "-listen=:" + strconv.Itoa(attack.RoundsPort)}
	if p.KeysSecret != "" {
		args = append(args, "-api-keys="+KeysDir+"/"+KeysSecretKey)
	}
	pod := attackerPod(p.Image, pull, args, p.KeysSecret, map[string]string{RoundsLabel: p.Name})
	c := &pod.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "rounds", ContainerPort: attack.RoundsPort, Protocol: corev1.ProtocolTCP}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: attack.HealthPath, Port: intstr.FromString("rounds")}},
		PeriodSeconds: 1, FailureThreshold: 3,
	}
	// A round in flight finishes before the pod goes (serve drains for up to a minute).
	pod.TerminationGracePeriodSeconds = ptr.To[int64](60)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(p.Replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{RoundsLabel: p.Name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod},
		},
	}, nil
}

// StartRoundServers creates the round servers' Deployment and waits, bounded by ctx, until
// p.Replicas of its pods are ready; it returns their names, sorted: shard i of every round is
// the i-th.
func StartRoundServers(ctx context.Context, cs kubernetes.Interface, p RoundServerParams) ([]string, error) {
	d, err := RenderRoundServers(p)
	if err != nil {
		return nil, err
	}
	if _, err := cs.AppsV1().Deployments(p.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create the round servers %s/%s: %w", p.Namespace, p.Name, err)
	}
	tick := time.NewTicker(PollEvery)
	defer tick.Stop()
	var last string
	for {
		pods, err := cs.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: RoundsLabel + "=" + p.Name})
		if err == nil {
			var ready []string
			for _, pod := range pods.Items {
				if podReady(&pod) {
					ready = append(ready, pod.Name)
				}
			}
			if len(ready) >= p.Replicas {
				slices.Sort(ready)
				return ready[:p.Replicas], nil
			}
			last = fmt.Sprintf("%d of %d ready\n%s", len(ready), p.Replicas, describePods(pods.Items))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("round servers %s/%s: %w; %s", p.Namespace, p.Name, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// describePods says, a line per pod, where each is and why it is not running.
func describePods(pods []corev1.Pod) string {
	var s string
	for _, p := range pods {
		s += fmt.Sprintf("  pod %s on %q: %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil {
				s += fmt.Sprintf(", %s: %s %s", c.Name, w.Reason, w.Message)
			}
		}
		s += "\n"
	}
	return s
}
