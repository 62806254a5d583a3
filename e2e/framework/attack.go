package framework

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/attack/attackjob"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// The three ways of sending a spec's traffic live behind attack.Sender: from this process
// (attack.Host), from a Job of attacker pods per run (attackjob.JobSender), and through round
// servers for a chaos spec's many short runs (attackjob.RoundSender). This file only picks one
// and hands it what the deployment knows.

// hostSender sends from this process, through ServiceURL.
func (d *Deployment) hostSender() *attack.Host {
	return &attack.Host{URL: d.Env.ServiceURL, Request: d.Env.Config.createRequest(), Keys: d.tenantKeys(),
		Clock: d.Clock, Seqs: d.Seqs, Log: d.Env.Logger}
}

// jobSender is d's sender of attacker Jobs, one for the whole spec so that its Jobs are numbered
// apart; each run's attackers.log goes to dir.
func (d *Deployment) jobSender(dir string) *attackjob.JobSender {
	if d.jobs == nil {
		cfg := d.Env.Config
		d.jobs = &attackjob.JobSender{Cluster: d.cluster(dir), Pods: cfg.Attackers, Lead: cfg.AttackLead}
	}
	d.jobs.WriteLog = attackersLogTo(dir)
	return d.jobs
}

// cluster is what d's senders from inside the cluster share.
func (d *Deployment) cluster(dir string) attackjob.Cluster {
	cfg := d.Env.Config
	return attackjob.Cluster{
		Client: d.Env.Client, Namespace: d.Namespace, Image: cfg.AttackerImage, Labels: d.attackerLabels(),
		URL: d.clusterURL(), Request: cfg.createRequest(), Keys: d.tenantKeys(),
		Clock: d.Clock, Seqs: d.Seqs,
		Forward: func(ctx context.Context, pod string, port int) (int, func(), error) {
			return PortForwardPod(ctx, d.Env.RestConfig, d.Namespace, pod, port)
		},
		// The nodes of a cluster not made here may disagree with this host on the time.
		CorrectClocks: cfg.Mode == "existing",
		WriteLog:      attackersLogTo(dir),
		Log:           d.Env.Logger,
	}
}

func attackersLogTo(dir string) func(string) error {
	return func(text string) error { return report.WriteTextFile(dir, report.AttackersFile, text) }
}

// clockBounded is a sender whose attackers time their requests on clocks of their own.
type clockBounded interface{ ClockBound() time.Duration }

// noteClocks widens d.attackerClocks by how far the clocks of s's attackers may disagree.
func (d *Deployment) noteClocks(s attack.Sender) {
	if c, ok := s.(clockBounded); ok {
		d.attackerClocks = max(d.attackerClocks, c.ClockBound())
	}
}

// batch is one traffic run of d: the auth surface of wrongKeys, the rest as given.
func (d *Deployment) batch(customers []history.Customer, burst int, gap time.Duration, retry traffic.RetryParams, foreign traffic.ForeignKeys, log *slog.Logger) attack.Batch {
	return attack.Batch{Customers: customers, Burst: burst, Gap: gap, Retry: retry, Foreign: foreign,
		Wrong: wrongKeys(d.tenantKeys(), burst), Log: log}
}

// tenantKeys are the keys d's requests carry: none when the target's request carries no key
// (create.auth left out), whatever keys the deployment made.
func (d *Deployment) tenantKeys() map[string]string {
	if d.Env.Config.createRequest().Auth.Header == "" {
		return nil
	}
	return d.APIKeys
}

// attackerLabels go on everything the suite creates for its attackers: the run's owner labels.
func (d *Deployment) attackerLabels() map[string]string {
	return map[string]string{RunLabel: d.Env.Config.RunID, ManagedByLabel: ManagedBy}
}

// roundSender is where d's chaos rounds come from: this host, or with -e2e.traffic=cluster the
// round servers, started with d's first run under a fault and kept for the next; the cleanup it
// registers writes their logs to d's attackers.log.
func (d *Deployment) roundSender(ctx context.Context) attack.Sender {
	GinkgoHelper()
	if d.Env.Config.Traffic != TrafficCluster {
		if d.Env.ServiceURL == "" {
			Skip(noHostRoute)
		}
		return d.hostSender()
	}
	if d.rounds == nil {
		By(fmt.Sprintf("starting %d attacker pods that take rounds inside the cluster", d.Env.Config.Attackers))
		rs, err := attackjob.StartRounds(ctx, d.cluster(d.Dir), d.Env.Config.Attackers)
		Expect(err).NotTo(HaveOccurred(), "the round servers")
		DeferCleanup(func() {
			if err := rs.Close(); err != nil {
				GinkgoWriter.Printf("round servers' log: %v\n", err)
			}
		})
		d.noteClocks(rs)
		d.rounds = rs
	}
	return d.rounds
}
