// Command stampede-attacker is traffic from inside the cluster: one pod of the Kubernetes Job
// that e2e/attack/attackjob renders. Every pod of a run gets the same plan (flags; see
// attack.Plan.Args), the target's create request among them as JSON (-request: method, path,
// headers, how the key goes, body, with the placeholders each customer fills), so that it knows
// no target's API, but its shard, from $JOB_COMPLETION_INDEX: it waits until the agreed start
// instant, sends its share of every customer's burst (requests s with s % shards == index), one
// burst every gap from the start, retries its failures as a client would, and prints its
// history as history.Op JSONL on stdout, times counted from the start, then a trailer line
// (attack.WriteOutput). Logs go to stderr. With -api-keys, a file of '<merchant_id> <key>' lines
// mounted from a Secret, every request carries its tenant's API key, or another tenant's
// where -foreign-customers and -foreign-every pick it; the history names whose key, never a key.
//
//	stampede-attacker -url=http://app.NS.svc:8080 -burst=6 -gap=100ms -start=UNIX_NS \
//	  -request='{"method":"POST","path":"/orders","headers":{"Idempotency-Key":"{{key}}"},"auth":{"header":"X-Api-Key"},"body":{"shop":"{{tenant}}"}}' \
//	  -shards=3 -seed=S -customers=40 -tenants=4 -retry-attempts=5 -retry-max-wait=2s \
//	  -api-keys=/etc/stampede-attacker/api-keys -foreign-customers=0.1 -foreign-every=2
//
// "stampede-attacker serve" is the same traffic as a round server (serve.go), and
// "stampede-attacker probe" one TCP connection (probe.go).
//
// It exits 0 when it sent its whole share, 1 when the run failed (the history holds what was
// sent), 2 on a bad plan, 3 when it began too late to send anything.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stampede-e2e/stampede/e2e/attack"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probe(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serve(os.Args[2:], os.Getenv, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	plan, err := attack.ParseArgs(args, getenv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "stampede-attacker:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if addr := getenv(attack.ClockAddrEnv); addr != "" {
		// The suite reads this pod's clock while it runs, to put its times on the suite's.
		_, closeClock, err := serveClock(addr, log)
		if err != nil {
			fmt.Fprintln(stderr, "stampede-attacker:", err)
			return 1
		}
		defer closeClock()
	}
	ops, trailer, runErr := attack.Run(ctx, plan, log)
	trailer.Pod, trailer.Node = getenv("POD_NAME"), getenv("NODE_NAME")
	if runErr != nil {
		trailer.Error = runErr.Error()
	}
	if err := attack.WriteOutput(stdout, ops, trailer); err != nil {
		fmt.Fprintln(stderr, "stampede-attacker: write output:", err)
		return 1
	}
	switch {
	case errors.Is(runErr, attack.ErrLate):
		log.Error("too late", "err", runErr)
		return 3
	case runErr != nil:
		log.Error("attack failed", "err", runErr, "ops", len(ops))
		return 1
	}
	log.Info("done", "ops", len(ops))
	return 0
}

// serveClock answers attack.ClockPath on addr until the returned function closes it, and
// returns the address it listens on.
func serveClock(addr string, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("clock listener: %w", err)
	}
	srv := &http.Server{Handler: attack.ClockHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("answering clock readings", "address", ln.Addr().String())
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}
