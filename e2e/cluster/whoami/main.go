// Command whoami is the smoke check's test workload: a static HTTP server that answers with the
// name of its pod, and a client that asks a URL N times and reports which pods answered.
//
//	whoami [-listen :8080]            serve; every response body is $POD_NAME
//	whoami -get URL [-n N]            N requests, one connection each (keep-alive off, so that
//	                                  kube-proxy spreads them); prints a JSON Tally on stdout and
//	                                  exits 1 when any request failed
//
// It is built CGO_ENABLED=0 into an image FROM scratch, so it needs nothing from a registry.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stampede-e2e/stampede/e2e/cluster/whoami/client"
)

// Tally is what the client prints: how many requests each pod answered, and the failures.
type Tally struct {
	URL      string         `json:"url"`
	Requests int            `json:"requests"`
	Answers  map[string]int `json:"answers"`
	Errors   []string       `json:"errors,omitempty"`
}

func main() {
	listen := flag.String("listen", ":8080", "address to serve on")
	get := flag.String("get", "", "client mode: the URL to request")
	n := flag.Int("n", 10, "client mode: number of requests")
	timeout := flag.Duration("timeout", 5*time.Second, "client mode: timeout of each request")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *get != "" {
		if err := runClient(ctx, *get, *n, *timeout); err != nil {
			log.Error("whoami client failed", "err", err)
			os.Exit(1)
		}
		return
	}
	if err := serve(ctx, log, *listen); err != nil {
		log.Error("whoami server failed", "err", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, log *slog.Logger, addr string) error {
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", name)
		fmt.Fprintln(w, name)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving", "addr", addr, "pod", name)
	select {
	case err := <-errc:
		return fmt.Errorf("listen: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func runClient(ctx context.Context, url string, n int, timeout time.Duration) error {
	if n < 1 {
		return fmt.Errorf("-n %d: want at least 1", n)
	}
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	t := Tally{URL: url, Requests: n, Answers: map[string]int{}}
	for range n {
		pod, err := client.Ask(ctx, hc, url)
		if err != nil {
			t.Errors = append(t.Errors, err.Error())
			continue
		}
		t.Answers[pod]++
	}
	if err := json.NewEncoder(os.Stdout).Encode(t); err != nil {
		return fmt.Errorf("print tally: %w", err)
	}
	if len(t.Errors) > 0 {
		return fmt.Errorf("%d of %d requests failed, first: %s", len(t.Errors), n, t.Errors[0])
	}
	return nil
}
