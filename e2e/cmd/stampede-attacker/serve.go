package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
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

// serve is a round server (attack.Server): it listens on -listen until SIGTERM and runs every
// plan posted to attack.RoundsPath, with the tenants' API keys of -api-keys. The suite's
// chaos rounds use it: one long-lived pod per shard instead of a Job per round.
//
//	stampede-attacker serve -listen=:8081 -api-keys=/etc/stampede-attacker/api-keys
//
// It exits 0 after a clean shutdown, 1 when it cannot listen, 2 on bad flags.
func serve(args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("stampede-attacker serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", fmt.Sprintf(":%d", attack.RoundsPort), "address to take rounds on")
	keysFile := fs.String("api-keys", "", "file of the tenants' API keys, lines '<merchant_id> <key>' (default: send no key)")
	maxRounds := fs.Int("max-rounds", attack.DefaultMaxRounds, "rounds run at once; more are refused with 429")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *maxRounds < 1 {
		fmt.Fprintln(stderr, "stampede-attacker serve: want only flags, and -max-rounds of at least 1")
		return 2
	}
	var keys map[string]string
	if *keysFile != "" {
		b, err := os.ReadFile(*keysFile)
		if err == nil {
			keys, err = attack.ParseKeys(bytes.NewReader(b))
		}
		if err != nil {
			fmt.Fprintf(stderr, "stampede-attacker serve: -api-keys %s: %v\n", *keysFile, err)
			return 2
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveOn(ctx, ln, attack.NewServer(keys, *maxRounds, getenv("POD_NAME"), getenv("NODE_NAME"), log), log)
}

// serveOn serves s on ln until ctx ends, then lets the rounds in flight finish (a round cut
// short would lose what it sent) for up to a minute.
func serveOn(ctx context.Context, ln net.Listener, s *attack.Server, log *slog.Logger) int {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("taking rounds", "address", ln.Addr().String(), "api_keys", len(s.Keys))
	select {
	case err := <-errc:
		log.Error("serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
