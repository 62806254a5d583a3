package attackjob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// Round servers' timing: a round's plan starts RoundLead after it is posted, long enough for the
// post to cross a port-forward to every server; a server that still gets it late sends its share
// up to roundMaxLate late rather than not at all (a round's bursts are judged the same either
// way; only their spread suffers, and the trailer's slack says by how much).
const (
	RoundLead    = 300 * time.Millisecond
	roundMaxLate = 10 * time.Second
)

// RoundSender sends each batch through long-lived round servers (StartRoundServers), each
// reached through a port-forward of its own: it posts the batch's plan to every server, each its
// shard, from one agreed start, and merges their outputs as JobSender merges a Job's. A chaos
// spec's traffic is many short batches, for which a Job each would start too slowly.
type RoundSender struct {
	Cluster
	pods   []string
	client *http.Client
	// open opens a port-forward to server i: its local port and how to close it.
	open func(ctx context.Context, i int) (int, func(), error)

	mu    sync.Mutex
	ports []int
	stops []func()
	// slack is the least slack any server had before a round's start: negative if one was late.
	slack time.Duration
	// clocks are the servers' clocks as measured before the first round.
	clocks []attack.NodeClock
}

// roundsName names the round servers' Deployment and its keys Secret.
const roundsName = "attacker-rounds"

// StartRounds starts replicas round servers in c's namespace, port-forwards to each and measures
// its clock. Close stops the port-forwards and writes the servers' logs; the servers go with the
// namespace.
func StartRounds(ctx context.Context, c Cluster, replicas int) (*RoundSender, error) {
	keysSecret, err := c.createKeysSecret(ctx, roundsName+"-keys")
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	pods, err := StartRoundServers(sctx, c.Client, RoundServerParams{
		Name: roundsName, Namespace: c.Namespace, Image: c.Image, Replicas: replicas, Labels: c.Labels, KeysSecret: keysSecret,
	})
	if err != nil {
		return nil, fmt.Errorf("the round servers: %w", err)
	}
	rs := NewRoundSender(c, pods, func(ctx context.Context, i int) (int, func(), error) {
		return c.Forward(ctx, pods[i], attack.RoundsPort)
	})
	for i := range pods {
		if err := errors.Join(rs.forward(ctx, i), rs.measureClock(ctx, i)); err != nil {
			rs.stopForwards()
			return nil, err
		}
	}
	c.Log.Info("round servers ready", "pods", pods)
	return rs, nil
}

// NewRoundSender sends through the round servers pods, server i reached through open(ctx, i); it
// opens no port-forward until asked (StartRounds opens them all and measures every clock).
func NewRoundSender(c Cluster, pods []string, open func(ctx context.Context, i int) (int, func(), error)) *RoundSender {
	// Keep-alive on: a round's post reuses the port-forward's connection, so the lead is not
	// spent dialing through the API server.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * attack.DefaultMaxRounds
	return &RoundSender{Cluster: c, pods: pods, open: open, client: &http.Client{Transport: tr},
		ports: make([]int, len(pods)), stops: make([]func(), len(pods)), clocks: make([]attack.NodeClock, len(pods)), slack: time.Hour}
}

// ClockBound bounds how far two servers' clocks may disagree once corrected.
func (rs *RoundSender) ClockBound() time.Duration {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return attack.ClockDisagreement(rs.clocks)
}

// forward (re)opens the port-forward to server i.
func (rs *RoundSender) forward(ctx context.Context, i int) error {
	port, stop, err := rs.open(ctx, i)
	if err != nil {
		return fmt.Errorf("port-forward to round server %s: %w", rs.pods[i], err)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.stops[i] != nil {
		rs.stops[i]()
	}
	rs.ports[i], rs.stops[i] = port, stop
	return nil
}

func (rs *RoundSender) port(i int) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.ports[i]
}

// measureClock estimates server i's clock offset from clockExchanges readings of its clock
// (attack.MeasureClock), and the shift its ops will move by.
func (rs *RoundSender) measureClock(ctx context.Context, i int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", rs.port(i), attack.ClockPath)
	offset, bound, err := attack.MeasureClock(ctx, rs.client, url, clockExchanges)
	if err != nil {
		return fmt.Errorf("round server %s: %w", rs.pods[i], err)
	}
	rs.mu.Lock()
	rs.clocks[i] = attack.NewNodeClock(offset, bound, rs.CorrectClocks)
	rs.mu.Unlock()
	return nil
}

// Send posts b to every server and merges what they sent.
func (rs *RoundSender) Send(ctx context.Context, b attack.Batch) ([]history.Op, error) {
	plan := attack.Plan{URL: rs.URL, Request: rs.Request, Customers: b.Customers, Burst: b.Burst, Gap: b.Gap, Retry: b.Retry,
		Start: time.Now().Add(RoundLead), MaxLate: roundMaxLate, Shard: traffic.Shard{Count: len(rs.pods)},
		Foreign: b.Foreign, Wrong: b.Wrong} // the servers hold the keys, from their Secret
	seqs := attack.ReserveSeqs(rs.Seqs, b.Customers, b.Burst)
	rctx, cancel := context.WithTimeout(ctx, attack.Deadline(plan, RoundLead)+30*time.Second)
	defer cancel()
	outs := make([]attack.Output, len(rs.pods))
	errs := make([]error, len(rs.pods))
	var wg sync.WaitGroup
	for i := range rs.pods {
		wg.Go(func() {
			p := plan
			p.Shard.Index = i
			outs[i], errs[i] = rs.post(rctx, i, p)
		})
	}
	wg.Wait()
	var failed []error
	for i, err := range errs {
		switch {
		case err != nil:
			failed = append(failed, fmt.Errorf("round server %s: %w", rs.pods[i], err))
			continue
		case outs[i].Error != "":
			failed = append(failed, fmt.Errorf("round server %s: %s", rs.pods[i], outs[i].Error))
		}
		rs.noteSlack(outs[i].Slack)
		// The server timed its ops on its node's clock, shift ahead of this host's, on which
		// a fault's event is timed: move them onto this host's.
		rs.clocks[i].Correct(outs[i].Ops)
	}
	if err := errors.Join(failed...); err != nil {
		return nil, err
	}
	return attack.Merge(outs, plan, rs.Clock.Base(), seqs)
}

// post sends p to server i and reads its output. A post that could not connect never reached
// the server: the port-forward is reopened and the post sent once more. Any other failure is
// the round's: a server that got the plan may have sent requests, and they cannot be sent
// twice.
func (rs *RoundSender) post(ctx context.Context, i int, p attack.Plan) (attack.Output, error) {
	body, err := attack.EncodePlan(p)
	if err != nil {
		return attack.Output{}, err
	}
	for attempt := 0; ; attempt++ {
		out, err := rs.postOnce(ctx, rs.port(i), body)
		if err == nil || attempt > 0 || !refused(err) {
			return out, err
		}
		if ferr := rs.forward(ctx, i); ferr != nil {
			return out, errors.Join(err, ferr)
		}
	}
}

func (rs *RoundSender) postOnce(ctx context.Context, port int, body []byte) (attack.Output, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, attack.RoundsPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return attack.Output{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rs.client.Do(req)
	if err != nil {
		return attack.Output{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return attack.Output{}, fmt.Errorf("read the output: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return attack.Output{}, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return attack.ParseOutput(b)
}

// refused says that a post never reached its server: the local end of the port-forward is gone.
func refused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

func (rs *RoundSender) noteSlack(s time.Duration) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.slack = min(rs.slack, s)
}

func (rs *RoundSender) stopForwards() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i, stop := range rs.stops {
		if stop != nil {
			stop()
			rs.stops[i] = nil
		}
	}
}

// Close stops the port-forwards and writes the servers' clocks and logs (WriteLog).
func (rs *RoundSender) Close() error {
	rs.stopForwards()
	rs.mu.Lock()
	slack, clocks := rs.slack, append([]attack.NodeClock(nil), rs.clocks...)
	rs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "round servers: %d pods; least slack before a round's start %s (negative: a shard was late)\n",
		len(rs.pods), slack.Round(time.Millisecond))
	for i, pod := range rs.pods {
		c := clocks[i]
		fmt.Fprintf(&b, "clock of %s: %s ahead of this host's, within %s (best of %d readings); ops moved by %s\n",
			pod, c.Offset.Round(time.Microsecond), c.Bound.Round(time.Microsecond), clockExchanges, (-c.Shift).Round(time.Microsecond))
	}
	for _, pod := range rs.pods {
		node := ""
		if p, err := rs.Client.CoreV1().Pods(rs.Namespace).Get(ctx, pod, metav1.GetOptions{}); err == nil {
			node = p.Spec.NodeName
		}
		fmt.Fprintf(&b, "\n== round server %s, node %s\n", pod, node)
		log, err := rs.Client.CoreV1().Pods(rs.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: Container}).DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(&b, "(log unreadable: %v)\n", err)
			continue
		}
		b.Write(log)
	}
	return rs.WriteLog(b.String())
}
