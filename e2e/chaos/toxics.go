package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	toxiproxycomp "github.com/stampede-e2e/stampede/manifests/components/toxiproxy"
)

// DBLatency adds latency with jitter to every answer PostgreSQL sends the token service, with a
// toxiproxy latency toxic on the downstream direction of the proxy the service connects
// through. Each statement's round trip grows by it, which widens the window between a
// strategy's lookup and its insert: the race the suite exists for. The plan's variant picks the
// latency (20, 30, 40 or 50 ms, jitter half of it).
type DBLatency struct{}

// Name implements Fault.
func (DBLatency) Name() string { return "db-latency" }

// NeedsToxiproxy implements Toxic.
func (DBLatency) NeedsToxiproxy() {}

// Excuses implements Excuser: every replica's statements are slower, so requests wait longer
// and may time out or fill the in-flight cap.
func (DBLatency) Excuses() []Excuse { return databaseDown(AnyPod, false) }

// Available implements Fault.
func (DBLatency) Available(t *Target) error { return toxiproxyAvailable(t, "db-latency") }

// Inject implements Fault.
func (DBLatency) Inject(ctx context.Context, t *Target, p Plan) (*Injection, error) {
	latency := time.Duration(20+10*p.Variant(4)) * time.Millisecond
	return AddLatency(ctx, t, latency, latency/2)
}

// AddLatency adds latency ± jitter to PostgreSQL's answers through t's toxiproxy until the
// Injection recovers: db-latency with chosen figures, for the canary.
func AddLatency(_ context.Context, t *Target, latency, jitter time.Duration) (*Injection, error) {
	proxy, err := t.proxy()
	if err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("latency %s jitter %s downstream", latency, jitter)
	t.logger().Info("injecting fault", "fault", "db-latency", "proxy", proxy.Name, "latency", latency, "jitter", jitter)
	attrs := toxiproxy.Attributes{"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()}
	if _, err := proxy.AddToxic("db-latency", "latency", "downstream", 1, attrs); err != nil {
		return nil, fmt.Errorf("db-latency: add toxic: %w", err)
	}
	return &Injection{
		Held:   true,
		Target: "toxiproxy/" + proxy.Name,
		Detail: detail,
		Recover: func(context.Context) error {
			if err := proxy.RemoveToxic("db-latency"); err != nil {
				return fmt.Errorf("db-latency: remove toxic: %w", err)
			}
			return nil
		},
	}, nil
}

// DBCut cuts the token service off from PostgreSQL for the plan's hold, through toxiproxy. The
// plan's variant picks how: reset (a reset_peer toxic both ways, so every connection is reset
// as soon as it carries data and new ones die at their first packet) or timeout (a timeout
// toxic with timeout 0 both ways, so data stops and connections hang until the toxic goes).
// Recover removes the toxics; the service's pool reconnects by itself.
type DBCut struct{}

// Name implements Fault.
func (DBCut) Name() string { return "db-cut" }

// NeedsToxiproxy implements Toxic.
func (DBCut) NeedsToxiproxy() {}

// Excuses implements Excuser: the database is out of reach of every replica.
func (DBCut) Excuses() []Excuse { return databaseDown(AnyPod, false) }

// Available implements Fault.
func (DBCut) Available(t *Target) error { return toxiproxyAvailable(t, "db-cut") }

// Inject implements Fault.
func (DBCut) Inject(_ context.Context, t *Target, p Plan) (*Injection, error) {
	proxy, err := t.proxy()
	if err != nil {
		return nil, err
	}
	kind, detail := "reset_peer", "reset every connection both ways"
	if p.Variant(2) == 1 {
		kind, detail = "timeout", "stop all data both ways (timeout 0)"
	}
	t.logger().Info("injecting fault", "fault", "db-cut", "proxy", proxy.Name, "toxic", kind)
	var added []string
	remove := func(context.Context) error {
		var errs []error
		for _, name := range added {
			if err := proxy.RemoveToxic(name); err != nil {
				errs = append(errs, fmt.Errorf("db-cut: remove toxic %s: %w", name, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, stream := range []string{"upstream", "downstream"} {
		name := "db-cut-" + stream
		if _, err := proxy.AddToxic(name, kind, stream, 1, toxiproxy.Attributes{"timeout": 0}); err != nil {
			return nil, errors.Join(fmt.Errorf("db-cut: add %s toxic %s: %w", kind, stream, err), remove(context.Background()))
		}
		added = append(added, name)
	}
	return &Injection{Target: "toxiproxy/" + proxy.Name, Detail: kind + ": " + detail, Held: true, Recover: remove}, nil
}

func toxiproxyAvailable(t *Target, fault string) error {
	if t.ToxiproxyImage == "" {
		return unavailable("%s needs toxiproxy between the service and PostgreSQL, and no toxiproxy image was given (-e2e.toxiproxy-image)", fault)
	}
	return nil
}

// proxy returns the toxiproxy proxy in front of PostgreSQL.
func (t *Target) proxy() (*toxiproxy.Proxy, error) {
	if t.Toxiproxy == nil {
		return nil, errors.New("the deployment has no toxiproxy in front of PostgreSQL")
	}
	p, err := t.Toxiproxy.Proxy(toxiproxycomp.ProxyName)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy proxy %s: %w", toxiproxycomp.ProxyName, err)
	}
	return p, nil
}
