package attack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// ErrLate means a pod began after the plan's start plus MaxLate: it sent nothing.
var ErrLate = errors.New("began after the agreed start")

// Run sends p's share of every burst from p.Start, then retries it, and returns what it
// recorded, on a clock whose base is p.Start, with the trailer that closes the output
// (without its op count, which WriteOutput sets). A pod that begins too late sends nothing and
// returns ErrLate; an error of the run itself comes with what was recorded before it.
func Run(ctx context.Context, p Plan, log *slog.Logger) ([]history.Op, Trailer, error) {
	t := Trailer{Index: p.Shard.Index, Shards: p.Shard.Count, Start: p.Start.UnixNano()}
	if err := p.Validate(); err != nil {
		return nil, t, fmt.Errorf("plan: %w", err)
	}
	maxLate := p.MaxLate
	if maxLate <= 0 {
		maxLate = DefaultMaxLate
	}
	// Resolve the Service's name once, before the start: a DNS lookup per request (keep-alive is
	// off, so every request dials) would spread each burst by the resolver's latency.
	transport, addr, err := pinnedTransport(ctx, p.URL)
	if err != nil {
		return nil, t, err
	}
	t.Slack = time.Until(p.Start)
	log.Info("plan", "url", p.URL, "address", addr, "customers", len(p.Customers), "burst", p.Burst,
		"shard", p.Shard.Index, "of", p.Shard.Count, "requests_per_burst", len(p.Shard.Seqs(p.Burst)),
		"start", p.Start.UTC().Format(time.RFC3339Nano), "slack", t.Slack.Round(time.Millisecond),
		"api_keys", len(p.Keys), "foreign_customers", p.Foreign.Customers, "foreign_every", p.Foreign.Every,
		"wrong_customers", p.Wrong.Customers, "wrong_every", p.Wrong.Every)
	if -t.Slack > maxLate {
		return nil, t, fmt.Errorf("%w: %s after it, more than the %s allowed; nothing was sent (give the pods more lead)",
			ErrLate, (-t.Slack).Round(time.Millisecond), maxLate)
	}
	out, err := traffic.Run(ctx, traffic.Params{
		URL:       p.URL,
		Request:   p.Request,
		Customers: p.Customers,
		Burst:     p.Burst,
		Gap:       p.Gap,
		Timeout:   p.Timeout,
		Retry:     p.Retry,
		Transport: transport,
		Logger:    log,
		Start:     p.Start,
		Shard:     p.Shard,
		Keys:      p.Keys,
		Foreign:   p.Foreign,
		Wrong:     p.Wrong,
	})
	var ops []history.Op
	if out != nil {
		ops = out.History
	}
	return ops, t, err
}

// pinnedTransport resolves rawURL's host once and returns a transport (traffic.NewTransport:
// keep-alive off) that dials that address for it, and the address.
func pinnedTransport(ctx context.Context, rawURL string) (*http.Transport, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("url %q: %w", rawURL, err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var ips []string
	for {
		ips, err = net.DefaultResolver.LookupHost(ctx, u.Hostname())
		if err == nil && len(ips) > 0 {
			break
		}
		// A pod's first lookups can fail while its network comes up: retry until the bound.
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("resolve %s: %w", u.Hostname(), errors.Join(err, ctx.Err()))
		case <-time.After(200 * time.Millisecond):
		}
	}
	addr := net.JoinHostPort(ips[0], port)
	tr := traffic.NewTransport()
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	return tr, addr, nil
}
