package cluster

// The traffic half of Smoke: requests from the host and from a client pod on every worker,
// tallied per answering pod.
import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stampede-e2e/stampede/e2e/cluster/whoami/client"
)

// fromHost asks the mapped host port until a round of requests all succeed and more than one
// pod answers: kube-proxy's rules may lag the endpoints for a moment.
func (s *smoke) fromHost(ctx context.Context) error {
	url, err := s.c.ServiceURL()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return poll(ctx, time.Second, func(ctx context.Context) (bool, string) {
		t := Tally{URL: url, Requests: s.p.Requests, Answers: map[string]int{}}
		for range s.p.Requests {
			pod, err := client.Ask(ctx, hc, url)
			if err != nil {
				t.Errors = append(t.Errors, err.Error())
				continue
			}
			t.Answers[pod]++
		}
		s.r.Host = t
		switch {
		case len(t.Errors) > 0:
			return false, fmt.Sprintf("%d errors, first: %s", len(t.Errors), t.Errors[0])
		case len(t.Answers) < 2:
			return false, fmt.Sprintf("only %d pod answered %d requests", len(t.Answers), t.Requests)
		}
		return true, ""
	})
}

// fromWorkers runs a whoami client pod pinned to each worker against the Service's DNS name,
// and requires answers from pods on other nodes when there are any.
func (s *smoke) fromWorkers(ctx context.Context, image string) error {
	workers := s.c.Workers()
	if len(workers) == 0 {
		return errors.New("the cluster has no worker nodes")
	}
	url := fmt.Sprintf("http://%s.%s.svc.cluster.local/", smokeApp, s.ns)
	for _, w := range workers {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "client-" + w.Name},
			Spec: corev1.PodSpec{
				NodeName:                      w.Name,
				RestartPolicy:                 corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: ptr.To[int64](1),
				Containers: []corev1.Container{{
					Name:            "client",
					Image:           image,
					ImagePullPolicy: s.pullPolicy(),
					Args:            []string{"-get", url, "-n", fmt.Sprint(s.p.Requests)},
				}},
			},
		}
		if _, err := s.c.client.CoreV1().Pods(s.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create client pod on %s: %w", w.Name, err)
		}
	}
	var errs []error
	for _, w := range workers {
		errs = append(errs, s.clientResult(ctx, w.Name))
	}
	return errors.Join(errs...)
}

func (s *smoke) clientResult(ctx context.Context, node string) error {
	name := "client-" + node
	var phase corev1.PodPhase
	err := poll(ctx, time.Second, func(ctx context.Context) (bool, string) {
		p, err := s.c.client.CoreV1().Pods(s.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, string(phase) + containerWaiting(p)
	})
	if err != nil {
		return fmt.Errorf("client pod on %s: %w", node, err)
	}
	raw, err := s.c.client.CoreV1().Pods(s.ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("logs of client pod on %s: %w", node, err)
	}
	t, perr := parseTally(raw)
	if perr == nil {
		s.r.Clients[node] = t
	}
	if phase == corev1.PodFailed || perr != nil {
		return fmt.Errorf("client pod on %s %s: %s", node, phase, strings.TrimSpace(string(raw)))
	}
	return s.crossNode(node, t)
}

// crossNode requires that a client on node reached pods on other nodes when there are some:
// with Requests spread at random over 3 pods, missing them all is vanishingly unlikely unless
// traffic between nodes is broken.
func (s *smoke) crossNode(node string, t Tally) error {
	var remote []string
	for pod, n := range s.r.Pods {
		if n != node {
			remote = append(remote, pod)
		}
	}
	if len(remote) == 0 {
		return nil
	}
	for pod := range t.Answers {
		if slices.Contains(remote, pod) {
			return nil
		}
	}
	return fmt.Errorf("client on %s got no answer from pods on other nodes (%s) in %d requests: pod network across nodes is broken",
		node, strings.Join(remote, ", "), t.Requests)
}

// parseTally finds the JSON line in a client pod's log (its stderr lines are slog text).
func parseTally(log []byte) (Tally, error) {
	for _, line := range strings.Split(string(log), "\n") {
		if strings.HasPrefix(line, "{") {
			var t Tally
			if err := json.Unmarshal([]byte(line), &t); err != nil {
				return Tally{}, fmt.Errorf("parse tally: %w", err)
			}
			return t, nil
		}
	}
	return Tally{}, errors.New("parse tally: no JSON line in the client's log")
}
