package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
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

// A chaos spec's traffic is many short runs (a round of new bursts every second, then the
// catch-up), each judged as one history. sendFunc sends one such run and returns its history on
// the spec's clock and request numbering, from wherever -e2e.traffic says.
type sendFunc func(ctx context.Context, customers []history.Customer, burst int, gap time.Duration, retry traffic.RetryParams, log *slog.Logger) ([]history.Op, error)

// hostSender sends each run from this process, through ServiceURL.
func (d *Deployment) hostSender() sendFunc {
	return func(ctx context.Context, customers []history.Customer, burst int, gap time.Duration, retry traffic.RetryParams, log *slog.Logger) ([]history.Op, error) {
		tp := d.trafficParams(customers, burst, retry, log)
		tp.Gap = gap
		out, err := traffic.Run(ctx, tp)
		if out == nil {
			return nil, err
		}
		return out.History, err
	}
}

// Round servers' timing: a round's plan starts roundLead after it is posted, long enough for the
// post to cross a port-forward to every server; a server that still gets it late sends its share
// up to roundMaxLate late rather than not at all (a round's bursts are judged the same either
// way; only their spread suffers, and the trailer's slack says by how much).
const (
	roundLead    = 300 * time.Millisecond
	roundMaxLate = 10 * time.Second
)

// roundServers are the spec's attacker pods that take rounds (attackjob.StartRoundServers),
// each reached through a port-forward of its own.
type roundServers struct {
	d    *Deployment
	pods []string
	// url is the token service as the servers reach it: its ClusterIP Service; method and path
	// the target's create request (empty: the token service's).
	url          string
	method, path string
	client       *http.Client
	// open opens a port-forward to server i: its local port and how to close it.
	open func(ctx context.Context, i int) (int, func(), error)

	mu    sync.Mutex
	ports []int
	stops []func()
	// slack is the least slack any server had before a round's start: negative if one was late.
	slack time.Duration
	// clocks are the servers' clocks as measured before the first round; with correctClocks
	// (existing mode: the nodes' clocks are not this host's) a server whose clock is measurably
	// off has its ops moved onto this host's clock.
	clocks        []serverClock
	correctClocks bool
}

// clusterSender starts Config.Attackers round servers in d's namespace, port-forwards to each,
// and returns a sendFunc that posts every run to all of them, each its shard, from one agreed
// start instant, and merges their outputs as attackFromCluster merges a Job's. The cleanup it
// registers writes the servers' logs to dir's attackers.log and closes the port-forwards; the
// servers go with the namespace.
func (d *Deployment) clusterSender(ctx context.Context, dir string) sendFunc {
	GinkgoHelper()
	cfg := d.Env.Config
	const name = "attacker-rounds"
	keysSecret := d.createKeysSecret(ctx, name+"-keys")
	By(fmt.Sprintf("starting %d attacker pods that take rounds inside the cluster", cfg.Attackers))
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	pods, err := attackjob.StartRoundServers(sctx, d.Env.Client, attackjob.RoundServerParams{
		Name: name, Namespace: d.Namespace, Image: cfg.AttackerImage, Replicas: cfg.Attackers,
		Labels: d.attackerLabels(), KeysSecret: keysSecret,
	})
	Expect(err).NotTo(HaveOccurred(), "the round servers")
	rs := newRoundServers(d, pods, func(ctx context.Context, i int) (int, func(), error) {
		return PortForwardPod(ctx, d.Env.RestConfig, d.Namespace, pods[i], attack.RoundsPort)
	})
	DeferCleanup(func() { rs.close(dir) })
	for i := range pods {
		Expect(rs.forward(ctx, i)).To(Succeed())
		Expect(rs.measureClock(ctx, i)).To(Succeed())
	}
	d.attackerClocks = max(d.attackerClocks, clockDisagreement(rs.clocks))
	d.Env.Logger.Info("round servers ready", "pods", pods)
	return rs.send
}

func newRoundServers(d *Deployment, pods []string, open func(ctx context.Context, i int) (int, func(), error)) *roundServers {
	// Keep-alive on: a round's post reuses the port-forward's connection, so the lead is not
	// spent dialing through the API server.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * attack.DefaultMaxRounds
	rs := &roundServers{d: d, pods: pods, url: d.clusterURL(), open: open, client: &http.Client{Transport: tr},
		ports: make([]int, len(pods)), stops: make([]func(), len(pods)), clocks: make([]serverClock, len(pods)), slack: time.Hour,
		correctClocks: d.Env != nil && d.Env.Config.Mode == "existing"}
	if d.Env != nil {
		rs.method, rs.path = d.Env.Config.createRequest()
	}
	return rs
}

// forward (re)opens the port-forward to server i.
func (rs *roundServers) forward(ctx context.Context, i int) error {
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

func (rs *roundServers) port(i int) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.ports[i]
}

// send posts one run to every server and merges what they sent.
func (rs *roundServers) send(ctx context.Context, customers []history.Customer, burst int, gap time.Duration, retry traffic.RetryParams, _ *slog.Logger) ([]history.Op, error) {
	plan := attack.Plan{
		URL:       rs.url,
		Method:    rs.method,
		Path:      rs.path,
		Customers: customers,
		Burst:     burst,
		Gap:       gap,
		Retry:     retry,
		Start:     time.Now().Add(roundLead),
		MaxLate:   roundMaxLate,
		Shard:     traffic.Shard{Count: len(rs.pods)},
		Wrong:     wrongKeys(rs.d.APIKeys, burst), // the servers hold the same keys, from their Secret
	}
	seqs := attack.ReserveSeqs(rs.d.Seqs, customers, burst)
	rctx, cancel := context.WithTimeout(ctx, attackDeadline(plan, roundLead)+30*time.Second)
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
		// the fault's event is timed: move them onto this host's.
		rs.clocks[i].correct(outs[i].Ops)
	}
	if err := errors.Join(failed...); err != nil {
		return nil, err
	}
	return attack.Merge(outs, plan, rs.d.Clock.Base(), seqs)
}

// serverClock is a server's clock as measured before its first round: offset ahead of this
// host's, within bound, and the shift its ops move by (0 unless correctClocks and the offset
// is larger than its bound: clocks that agree as far as can be told are left alone). One shift
// for every round: an estimate per round, from a post and an answer across a busy
// port-forward, scattered by tens of milliseconds and would move one server's ops against
// another's.
type serverClock struct {
	offset, bound, shift time.Duration
	// measured is false for a pod whose clock could not be read.
	measured bool
}

// newServerClock is a clock measured offset ahead of this host's, within bound; with correct
// its ops move by the offset when it is larger than its bound.
func newServerClock(offset, bound time.Duration, correct bool) serverClock {
	c := serverClock{offset: offset, bound: bound, measured: true}
	if correct && (offset > bound || offset < -bound) {
		c.shift = offset
	}
	return c
}

// correct moves ops' client times by the clock's shift (attack.Correct): the handler intervals
// are the service's clocks and stay.
func (c serverClock) correct(ops []history.Op) {
	if c.shift == 0 {
		return
	}
	for j := range ops {
		ops[j] = attack.Correct(ops[j], c.shift)
	}
}

// residual bounds how far the clock, once its ops are corrected, may still be from this host's.
func (c serverClock) residual() time.Duration {
	d := c.offset - c.shift
	return max(d, -d) + c.bound
}

// clockDisagreement bounds how far two of clocks may disagree once corrected: the sum of the
// two largest residuals. One clock, or none, disagrees with nothing.
func clockDisagreement(clocks []serverClock) time.Duration {
	var first, second time.Duration
	for _, c := range clocks {
		r := c.residual()
		switch {
		case r > first:
			first, second = r, first
		case r > second:
			second = r
		}
	}
	if len(clocks) < 2 {
		return 0
	}
	return first + second
}

// clockExchanges is how many clock readings measureClock takes of a server: the one with the
// shortest round trip is used.
const clockExchanges = 16

// measureClock estimates server i's clock offset from clockExchanges readings of its clock
// (attack.MeasureClock), and the shift its ops will move by.
func (rs *roundServers) measureClock(ctx context.Context, i int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", rs.port(i), attack.ClockPath)
	offset, bound, err := attack.MeasureClock(ctx, rs.client, url, clockExchanges)
	if err != nil {
		return fmt.Errorf("round server %s: %w", rs.pods[i], err)
	}
	rs.mu.Lock()
	rs.clocks[i] = newServerClock(offset, bound, rs.correctClocks)
	rs.mu.Unlock()
	return nil
}

// post sends p to server i and reads its output. A post that could not connect never reached
// the server: the port-forward is reopened and the post sent once more. Any other failure is
// the round's: a server that got the plan may have sent requests, and they cannot be sent
// twice.
func (rs *roundServers) post(ctx context.Context, i int, p attack.Plan) (attack.Output, error) {
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

func (rs *roundServers) postOnce(ctx context.Context, port int, body []byte) (attack.Output, error) {
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

func (rs *roundServers) noteSlack(s time.Duration) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.slack = min(rs.slack, s)
}

// close stops the port-forwards and writes the servers' logs to dir's attackers.log.
func (rs *roundServers) close(dir string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, stop := range rs.stops {
		if stop != nil {
			stop()
		}
	}
	slack := rs.slack
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b strings.Builder
	fmt.Fprintf(&b, "round servers: %d pods; least slack before a round's start %s (negative: a shard was late)\n",
		len(rs.pods), slack.Round(time.Millisecond))
	for i, pod := range rs.pods {
		c := rs.clocks[i]
		fmt.Fprintf(&b, "clock of %s: %s ahead of this host's, within %s (best of %d readings); ops moved by %s\n",
			pod, c.offset.Round(time.Microsecond), c.bound.Round(time.Microsecond), clockExchanges, (-c.shift).Round(time.Microsecond))
	}
	for _, pod := range rs.pods {
		node := ""
		if p, err := rs.d.Env.Client.CoreV1().Pods(rs.d.Namespace).Get(ctx, pod, metav1.GetOptions{}); err == nil {
			node = p.Spec.NodeName
		}
		fmt.Fprintf(&b, "\n== round server %s, node %s\n", pod, node)
		log, err := rs.d.Env.Client.CoreV1().Pods(rs.d.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: attackjob.Container}).DoRaw(ctx)
		if err != nil {
			fmt.Fprintf(&b, "(log unreadable: %v)\n", err)
			continue
		}
		b.Write(log)
	}
	if err := report.WriteTextFile(dir, report.AttackersFile, b.String()); err != nil {
		GinkgoWriter.Printf("round servers' log: %v\n", err)
	}
}
