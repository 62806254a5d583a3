package framework

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/attack/attackjob"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/traffic"
	"github.com/stampede-e2e/stampede/manifests"
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
	plan := attack.Plan{
		URL:       manifests.TokensvcClusterURL(d.Namespace),
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
	res, err := attackjob.Run(jctx, d.Env.Client, p, d.Env.Logger)
	if res != nil {
		Expect(report.WriteTextFile(dir, report.AttackersFile, attackersLog(res))).To(Succeed())
		for _, pod := range res.Pods {
			d.Env.Logger.Info("attacker pod", "pod", pod.Name, "index", pod.Index, "node", pod.Node,
				"slack", pod.Output.Slack.Round(time.Millisecond), "ops", len(pod.Output.Ops))
		}
	}
	Expect(err).NotTo(HaveOccurred(), "traffic from inside the cluster")
	outs, err := res.Outputs()
	Expect(err).NotTo(HaveOccurred(), "the attacker pods' outputs")
	ops, err := attack.Merge(outs, plan, d.Clock.Base(), seqs)
	Expect(err).NotTo(HaveOccurred())
	return ops
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

// attackersLog is attackers.log: a header per pod (index, node, start slack, ops, error) and its
// own logging.
func attackersLog(r *attackjob.Result) string {
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
