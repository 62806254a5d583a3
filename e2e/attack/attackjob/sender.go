package attackjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// Forward opens a port-forward to port of pod: the local port it listens on, and how to close it.
type Forward func(ctx context.Context, pod string, port int) (local int, stop func(), err error)

// Cluster is what the senders from inside the cluster share: where they run, what they send,
// and how the suite reaches its attacker pods.
type Cluster struct {
	Client    kubernetes.Interface
	Namespace string
	// Image is the attacker image; Labels go on everything a sender creates.
	Image  string
	Labels map[string]string
	// URL is the target as pods reach it (its ClusterIP Service); Request its create request.
	URL     string
	Request request.Template
	// Keys are the tenants' keys, by tenant: a sender mounts them into its pods from a Secret.
	Keys map[string]string
	// Clock and Seqs are the spec's time base and request numbering.
	Clock *history.Clock
	Seqs  *history.Seqs
	// Forward reaches an attacker pod from the suite's host (its clock, a round server's rounds).
	Forward Forward
	// CorrectClocks moves the ops of an attacker whose clock is measurably off the host's onto
	// the host's: the nodes of a cluster not made here may disagree on the time.
	CorrectClocks bool
	// WriteLog takes the attackers' logs (attackers.log) after each Job, or when round servers
	// close.
	WriteLog func(text string) error
	Log      *slog.Logger
}

// clockExchanges is how many clock readings a measurement takes: the one with the shortest
// round trip is used.
const clockExchanges = 16

// createKeysSecret creates the Secret name that holds c.Keys as the attackers read them, and
// returns its name; "" without keys.
func (c *Cluster) createKeysSecret(ctx context.Context, name string) (string, error) {
	if len(c.Keys) == 0 {
		return "", nil
	}
	secret, err := KeysSecret(name, c.Namespace, c.Keys, c.Labels)
	if err != nil {
		return "", err
	}
	if _, err := c.Client.CoreV1().Secrets(c.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create the attackers' keys Secret %s: %w", name, err)
	}
	return name, nil
}

// measure reads the clock of pod through a port-forward to its attack.RoundsPort.
func (c *Cluster) measure(ctx context.Context, pod string, client *http.Client) (attack.NodeClock, error) {
	port, stop, err := c.Forward(ctx, pod, attack.RoundsPort)
	if err != nil {
		return attack.NodeClock{}, fmt.Errorf("port-forward to %s: %w", pod, err)
	}
	defer stop()
	offset, bound, err := attack.MeasureClock(ctx, client, fmt.Sprintf("http://127.0.0.1:%d%s", port, attack.ClockPath), clockExchanges)
	if err != nil {
		return attack.NodeClock{}, err
	}
	return attack.NewNodeClock(offset, bound, c.CorrectClocks), nil
}

// JobSender sends each batch from a Job of Pods attacker pods (Run), each its share of every
// customer's burst through the target's ClusterIP Service, all from one agreed start Lead after
// the Job is created. Their histories come back through the pods' logs and are merged onto the
// spec's clock and request numbering, as a host run's would be.
type JobSender struct {
	Cluster
	Pods int
	Lead time.Duration
	jobs int
	// clockBound is the largest disagreement of the attackers' clocks over every Job so far.
	clockBound time.Duration
}

// ClockBound bounds how far two attackers' clocks that timed the batches so far may disagree,
// once corrected (attack.ClockDisagreement).
func (s *JobSender) ClockBound() time.Duration { return s.clockBound }

// Send runs b as a Job and merges its pods' outputs.
func (s *JobSender) Send(ctx context.Context, b attack.Batch) ([]history.Op, error) {
	s.jobs++
	name := fmt.Sprintf("attacker-%d", s.jobs)
	keysSecret, err := s.createKeysSecret(ctx, name+"-keys")
	if err != nil {
		return nil, err
	}
	plan := attack.Plan{URL: s.URL, Request: s.Request, Customers: b.Customers, Burst: b.Burst, Gap: b.Gap, Retry: b.Retry,
		Start: time.Now().Add(s.Lead), Shard: traffic.Shard{Count: s.Pods}, Foreign: b.Foreign, Wrong: b.Wrong, Keys: s.Keys}
	seqs := attack.ReserveSeqs(s.Seqs, b.Customers, b.Burst)
	deadline := attack.Deadline(plan, s.Lead)
	p := Params{Name: name, Namespace: s.Namespace, Image: s.Image, Plan: plan, Deadline: deadline, Labels: s.Labels, KeysSecret: keysSecret}
	jctx, cancel := context.WithTimeout(ctx, deadline+30*time.Second)
	defer cancel()
	collect := s.jobClocks(jctx, name, s.Pods)
	res, err := Run(jctx, s.Client, p, s.Log)
	clocks := collect()
	if res != nil {
		if werr := s.WriteLog(AttackersLog(res, clocks)); werr != nil {
			err = errors.Join(err, fmt.Errorf("write the attackers' log: %w", werr))
		}
		for _, pod := range res.Pods {
			s.Log.Info("attacker pod", "pod", pod.Name, "index", pod.Index, "node", pod.Node,
				"slack", pod.Output.Slack.Round(time.Millisecond), "ops", len(pod.Output.Ops))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("traffic from inside the cluster: %w", err)
	}
	outs, err := res.Outputs()
	if err != nil {
		return nil, fmt.Errorf("the attacker pods' outputs: %w", err)
	}
	var unmeasured []string
	for _, pod := range res.Pods {
		if pod.Index < 0 || pod.Index >= len(clocks) {
			continue
		}
		c := clocks[pod.Index]
		if !c.Measured {
			unmeasured = append(unmeasured, pod.Name)
		}
		s.Log.Info("attacker clock", "pod", pod.Name, "node", pod.Node, "measured", c.Measured,
			"offset", c.Offset.Round(time.Microsecond), "bound", c.Bound.Round(time.Microsecond), "shift", c.Shift.Round(time.Microsecond))
	}
	// An attacker's calls and returns are comparable with another's only on one clock (the
	// checker's created rule compares them).
	if s.CorrectClocks && len(unmeasured) > 0 {
		return nil, fmt.Errorf("the clocks of attacker pods %v could not be read, so their times cannot be put on this host's clock", unmeasured)
	}
	for i := range outs {
		if o := outs[i].Index; o >= 0 && o < len(clocks) {
			clocks[o].Correct(outs[i].Ops)
		}
	}
	s.clockBound = max(s.clockBound, attack.ClockDisagreement(clocks))
	return attack.Merge(outs, plan, s.Clock.Base(), seqs)
}

// jobClocks measures the clock of each of the n pods of the Job named job as soon as it runs
// (a Job's attacker answers attack.ClockPath while it runs: Render sets attack.ClockAddrEnv). It
// measures until ctx ends or every pod is measured; collect stops it and returns the clocks by
// completion index (a pod that could not be read is not measured).
func (s *JobSender) jobClocks(ctx context.Context, job string, n int) (collect func() []attack.NodeClock) {
	ctx, cancel := context.WithCancel(ctx)
	clocks := make([]attack.NodeClock, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		tries := map[string]int{}
		for left := n; left > 0; {
			list, err := s.Client.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: JobLabel + "=" + job})
			for _, pod := range listed(list, err) {
				i, err := strconv.Atoi(pod.Annotations[IndexAnnotation])
				if err != nil || i < 0 || i >= n || clocks[i].Measured || pod.Status.Phase != corev1.PodRunning || tries[pod.Name] >= 3 {
					continue
				}
				tries[pod.Name]++
				c, err := s.measure(ctx, pod.Name, http.DefaultClient)
				if err != nil {
					s.Log.Warn("reading an attacker's clock", "pod", pod.Name, "err", err)
					continue
				}
				clocks[i] = c
				left--
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() []attack.NodeClock {
		cancel()
		<-done
		return clocks
	}
}

// listed are the pods of list, none if err.
func listed(list *corev1.PodList, err error) []corev1.Pod {
	if err != nil || list == nil {
		return nil
	}
	return list.Items
}

// AttackersLog is attackers.log of a Job: a header per pod (index, node, start slack, ops,
// error, its clock as measured, by index in clocks) and its own logging.
func AttackersLog(r *Result, clocks []attack.NodeClock) string {
	var b strings.Builder
	fmt.Fprintf(&b, "attacker job: %d pods, %s from creation to completion\n", len(r.Pods), r.Took.Round(time.Millisecond))
	for _, p := range r.Pods {
		fmt.Fprintf(&b, "\n== pod %s, index %d, node %s, %s: slack %s before the start, %d ops",
			p.Name, p.Index, p.Node, p.Phase, p.Output.Slack.Round(time.Millisecond), len(p.Output.Ops))
		if p.Output.Error != "" {
			fmt.Fprintf(&b, ", error: %s", p.Output.Error)
		}
		if p.OutputErr != nil {
			fmt.Fprintf(&b, ", output unreadable: %v", p.OutputErr)
		}
		b.WriteString("\n")
		switch c := clockOf(clocks, p.Index); {
		case c.Measured:
			fmt.Fprintf(&b, "clock: %s ahead of this host's, within %s; ops moved by %s\n",
				c.Offset.Round(time.Microsecond), c.Bound.Round(time.Microsecond), (-c.Shift).Round(time.Microsecond))
		default:
			b.WriteString("clock: not measured; ops left as timed\n")
		}
		lines := p.Output.Log
		if p.OutputErr != nil {
			lines = strings.Split(string(p.Log), "\n")
		}
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// clockOf is clocks[i], or an unmeasured clock outside them.
func clockOf(clocks []attack.NodeClock, i int) attack.NodeClock {
	if i < 0 || i >= len(clocks) {
		return attack.NodeClock{}
	}
	return clocks[i]
}
