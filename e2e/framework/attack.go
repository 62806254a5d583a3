package framework

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/attack/attackjob"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// attackFromCluster sends the bursts from inside the cluster: a Job of Config.Attackers pods,
// each sending its share of every customer's burst through the token service's ClusterIP
// Service, all from one agreed start instant. Their histories come back through the pods' logs
// and are merged onto d's clock and request numbering, as a host run's would be; each pod's
// own logging goes to dir's attackers.log.
func (d *Deployment) attackFromCluster(ctx context.Context, customers []history.Customer, burst int, retry traffic.RetryParams, foreign traffic.ForeignKeys, dir string) []history.Op {
	GinkgoHelper()
	cfg := d.Env.Config
	d.attacks++
	labels := d.attackerLabels()
	keysSecret := d.createKeysSecret(ctx, fmt.Sprintf("attacker-%d-keys", d.attacks))
	method, path := cfg.createRequest()
	plan := attack.Plan{
		URL:       d.clusterURL(),
		Method:    method,
		Path:      path,
		Customers: customers,
		Burst:     burst,
		Gap:       cfg.Gap,
		Retry:     retry,
		Start:     time.Now().Add(cfg.AttackLead),
		Shard:     traffic.Shard{Count: cfg.Attackers},
		Foreign:   foreign,
		Wrong:     wrongKeys(d.APIKeys, burst),
		Keys:      d.APIKeys,
	}
	seqs := attack.ReserveSeqs(d.Seqs, customers, burst)
	deadline := attackDeadline(plan, cfg.AttackLead)
	p := attackjob.Params{
		Name:       fmt.Sprintf("attacker-%d", d.attacks),
		Namespace:  d.Namespace,
		Image:      cfg.AttackerImage,
		Plan:       plan,
		Deadline:   deadline,
		Labels:     labels,
		KeysSecret: keysSecret,
	}
	jctx, cancel := context.WithTimeout(ctx, deadline+30*time.Second)
	defer cancel()
	correct := cfg.Mode == "existing"
	collect := d.jobClocks(jctx, p.Name, plan.Shard.Count, correct)
	res, err := attackjob.Run(jctx, d.Env.Client, p, d.Env.Logger)
	clocks := collect()
	if res != nil {
		Expect(report.WriteTextFile(dir, report.AttackersFile, attackersLog(res, clocks))).To(Succeed())
		for _, pod := range res.Pods {
			d.Env.Logger.Info("attacker pod", "pod", pod.Name, "index", pod.Index, "node", pod.Node,
				"slack", pod.Output.Slack.Round(time.Millisecond), "ops", len(pod.Output.Ops))
		}
	}
	Expect(err).NotTo(HaveOccurred(), "traffic from inside the cluster")
	outs, err := res.Outputs()
	Expect(err).NotTo(HaveOccurred(), "the attacker pods' outputs")
	var unmeasured []string
	for _, pod := range res.Pods {
		if pod.Index < 0 || pod.Index >= len(clocks) {
			continue
		}
		c := clocks[pod.Index]
		if !c.measured {
			unmeasured = append(unmeasured, pod.Name)
		}
		d.Env.Logger.Info("attacker clock", "pod", pod.Name, "node", pod.Node, "measured", c.measured,
			"offset", c.offset.Round(time.Microsecond), "bound", c.bound.Round(time.Microsecond), "shift", c.shift.Round(time.Microsecond))
	}
	// The nodes of a cluster not made here may disagree on the time: an attacker's calls and
	// returns are comparable with another's only on one clock (RuleCreated compares them).
	Expect(correct && len(unmeasured) > 0).To(BeFalse(), "the clocks of attacker pods %v could not be read, so their times cannot be put on this host's clock", unmeasured)
	for i := range outs {
		if o := outs[i].Index; o >= 0 && o < len(clocks) {
			clocks[o].correct(outs[i].Ops)
		}
	}
	d.attackerClocks = max(d.attackerClocks, clockDisagreement(clocks))
	ops, err := attack.Merge(outs, plan, d.Clock.Base(), seqs)
	Expect(err).NotTo(HaveOccurred())
	return ops
}

// jobClocks measures the clock of each of the n pods of the attacker Job named job as soon as
// it runs (a Job's attacker answers attack.ClockPath while it runs: attackjob renders
// attack.ClockAddrEnv), through a port-forward, as the round servers' are measured; with correct
// a clock measurably off this host's gets the shift its ops move by. It measures until ctx ends
// or every pod is measured; collect stops it and returns the clocks by completion index (a pod
// that could not be read is not measured).
func (d *Deployment) jobClocks(ctx context.Context, job string, n int, correct bool) (collect func() []serverClock) {
	ctx, cancel := context.WithCancel(ctx)
	clocks := make([]serverClock, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		tries := map[string]int{}
		for left := n; left > 0; {
			list, err := d.Env.Client.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: attackjob.JobLabel + "=" + job})
			for _, pod := range listed(list, err) {
				i, err := strconv.Atoi(pod.Annotations[attackjob.IndexAnnotation])
				if err != nil || i < 0 || i >= n || clocks[i].measured || pod.Status.Phase != corev1.PodRunning || tries[pod.Name] >= 3 {
					continue
				}
				tries[pod.Name]++
				offset, bound, err := d.readPodClock(ctx, pod.Name)
				if err != nil {
					d.Env.Logger.Warn("reading an attacker's clock", "pod", pod.Name, "err", err)
					continue
				}
				clocks[i] = newServerClock(offset, bound, correct)
				left--
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() []serverClock {
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

// readPodClock measures the clock of the attacker pod through a port-forward to its
// attack.RoundsPort: how far ahead of this host's it is, within bound.
func (d *Deployment) readPodClock(ctx context.Context, pod string) (offset, bound time.Duration, err error) {
	port, stop, err := PortForwardPod(ctx, d.Env.RestConfig, d.Namespace, pod, attack.RoundsPort)
	if err != nil {
		return 0, 0, fmt.Errorf("port-forward to %s: %w", pod, err)
	}
	defer stop()
	return attack.MeasureClock(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d%s", port, attack.ClockPath), clockExchanges)
}

// attackerLabels go on everything the suite creates for its attackers: the run's owner labels.
func (d *Deployment) attackerLabels() map[string]string {
	return map[string]string{RunLabel: d.Env.Config.RunID, ManagedByLabel: ManagedBy}
}

// createKeysSecret creates the Secret name in d's namespace that holds the merchants' API keys
// as the attackers read them (attackjob.KeysSecret), and returns its name.
func (d *Deployment) createKeysSecret(ctx context.Context, name string) string {
	GinkgoHelper()
	secret, err := attackjob.KeysSecret(name, d.Namespace, d.APIKeys, d.attackerLabels())
	Expect(err).NotTo(HaveOccurred())
	_, err = d.Env.Client.CoreV1().Secrets(d.Namespace).Create(ctx, secret, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "create the attackers' keys Secret %s", name)
	return name
}

// attackDeadline bounds an attacker Job: the lead, every burst, and each request's worst case
// of a timeout and every retry with its longest wait, with a margin for a slow cluster.
func attackDeadline(p attack.Plan, lead time.Duration) time.Duration {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = traffic.DefaultTimeout
	}
	maxWait := p.Retry.MaxWait
	if maxWait <= 0 {
		maxWait = traffic.DefaultMaxWait
	}
	bursts := time.Duration(len(p.Customers)) * p.Gap
	retries := time.Duration(p.Retry.MaxAttempts) * (maxWait + timeout)
	// Retry chains run at most Retry.Concurrency at once; a whole run's worth queued behind
	// each other is not expected, but one more chain's length covers stragglers.
	return lead + bursts + timeout + 2*retries + time.Minute
}

// attackersLog is attackers.log: a header per pod (index, node, start slack, ops, error, its
// clock as measured, by index in clocks) and its own logging.
func attackersLog(r *attackjob.Result, clocks []serverClock) string {
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
		case c.measured:
			fmt.Fprintf(&b, "clock: %s ahead of this host's, within %s; ops moved by %s\n",
				c.offset.Round(time.Microsecond), c.bound.Round(time.Microsecond), (-c.shift).Round(time.Microsecond))
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
func clockOf(clocks []serverClock, i int) serverClock {
	if i < 0 || i >= len(clocks) {
		return serverClock{}
	}
	return clocks[i]
}
