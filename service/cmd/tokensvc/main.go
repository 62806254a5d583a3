// Command tokensvc is the token service the stampede suite tests: it registers a
// customer on first sight and returns a deterministic Ed25519 JWT for it.
//
// Configuration is TOKENSVC_* environment variables or flags; run with -h.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/httpapi"
	"github.com/stampede-e2e/stampede/service/internal/mutant"
	"github.com/stampede-e2e/stampede/service/internal/store"
	"github.com/stampede-e2e/stampede/service/internal/token"
)

// logLevel is the level of main's logger; run sets it from the configuration, which is read
// after the logger is made (a bad configuration is logged too).
var logLevel slog.LevelVar

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: &logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, logger, os.Args[1:], os.Getenv, stop)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		logger.Error("tokensvc failed", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down gracefully. stopSignals is called
// once shutdown starts, so that a second SIGTERM kills the process at once.
func run(ctx context.Context, log *slog.Logger, args []string, getenv func(string) string, stopSignals func()) error {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		return err
	}
	logLevel.Set(cfg.LogLevel)
	log = log.With("pod", cfg.PodName)
	// A self-test build reads TOKENSVC_MUTANT here; a production build does nothing.
	if err := mutant.Start(getenv, string(cfg.Strategy), log); err != nil {
		return err
	}
	signer, err := token.NewSigner(cfg.SigningKey, token.SignerParams{
		Issuer: cfg.Issuer, Audience: cfg.Audience, TTL: cfg.TokenTTL, KeyID: cfg.KeyID,
	})
	if err != nil {
		return err
	}
	cfg.KeyID = signer.KeyID()
	log.Info("starting tokensvc", "config", cfg)
	if cfg.AuthDisabled {
		log.Warn("AUTHENTICATION DISABLED (TOKENSVC_AUTH=disabled): any client may register customers and get tokens for any merchant; never run so with real traffic")
	}
	if limit, ok := goMemoryLimit(cfg.MemoryLimit, getenv("GOMEMLIMIT")); ok {
		debug.SetMemoryLimit(limit)
		log.Info("memory limit set", "gomemlimit", debug.SetMemoryLimit(-1), "container_limit", cfg.MemoryLimit)
	}
	if why := cfg.Strategy.Broken(); why != "" {
		log.Warn("KNOWN-BROKEN CREATE STRATEGY allowed by "+config.AllowBrokenStrategiesEnv+"=true, for tests only", "strategy", cfg.Strategy, "broken", why)
	}
	if cfg.LegacyRecheckDelay > 0 {
		log.Warn("test knob set: pausing between lookup and create() to widen the race window", "delay", cfg.LegacyRecheckDelay)
	}
	strategy, err := store.StrategyFor(cfg.Strategy)
	if err != nil {
		return err
	}

	if cfg.DatabasePasswordInURL {
		log.Warn("the database password is in TOKENSVC_DATABASE_URL, so in the environment: put it in a file and set TOKENSVC_DATABASE_PASSWORD_FILE")
	}
	pool, err := store.Open(ctx, cfg.DatabaseURL, store.WithConnectTimeout(cfg.ConnectTimeout),
		store.WithStatementTimeout(cfg.StatementTimeout), store.WithPassword(cfg.DatabasePassword))
	if err != nil {
		return err
	}
	// The URL's settings may have won over the configured ones: log what applies.
	log.Info("database pool opened", "connect_timeout", pool.Config().ConnConfig.ConnectTimeout.String(),
		"statement_timeout", pool.Config().ConnConfig.RuntimeParams["statement_timeout"])
	defer func() {
		pool.Close()
		log.Info("database pool closed")
	}()
	if err := prepare(ctx, log, cfg, pool, strategy); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := httpapi.NewMetrics(reg)
	checker := store.NewChecker(pool, metrics.ObserveDB)
	api, err := httpapi.New(httpapi.Params{
		Store:           store.New(pool, strategy, metrics.ObserveDB),
		DBCheck:         checker,
		Signer:          signer,
		Strategy:        cfg.Strategy,
		RecheckDelay:    cfg.LegacyRecheckDelay,
		RequestTimeout:  cfg.RequestTimeout,
		DBCheckInterval: cfg.DBCheckInterval,
		MaxInFlight:     cfg.MaxInFlight,
		APIKeys:         cfg.APIKeys,
		AuthDisabled:    cfg.AuthDisabled,
		PodName:         cfg.PodName,
		Logger:          log,
		Metrics:         metrics,
	})
	if err != nil {
		return err
	}

	// Stopped just before the pool closes (that deferred call runs after this one), not when
	// ctx is done: /readyz reports the database while the server drains.
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); api.WatchDatabase(watchCtx) }()
	defer func() {
		stopWatch()
		<-watchDone
		checker.Close()
		log.Info("database check stopped")
	}()

	metricsLn, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen for metrics: %w", err)
	}
	// Only Prometheus and the suite's port-forward scrape it: a few connections are plenty.
	metricsLn = netutil.LimitListener(metricsLn, metricsMaxConns)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return errors.Join(fmt.Errorf("listen: %w", err), metricsLn.Close())
	}
	// Connections past the cap wait in the kernel's accept queue, where they cost the process
	// nothing, instead of each holding up to config.ConnBudget of memory (a header flood).
	ln = netutil.LimitListener(ln, cfg.MaxConns)
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	srvs := servers{
		api: &http.Server{
			Handler:           api,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          errorLog,
		},
		metrics: &http.Server{
			Handler:           httpapi.MetricsHandler(reg, log),
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          errorLog,
		},
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- fmt.Errorf("serve metrics: %w", srvs.metrics.Serve(metricsLn)) }()
	go func() { serveErr <- fmt.Errorf("serve: %w", srvs.api.Serve(ln)) }()
	// Tests and operators read the bound addresses from these lines (they may be ":0"); the
	// metrics one comes first, so it is known once "listening" is read.
	log.Info("metrics listening", "addr", metricsLn.Addr().String())
	log.Info("listening", "addr", ln.Addr().String(), "strategy", cfg.Strategy)

	select {
	case err := <-serveErr:
		return errors.Join(err, srvs.api.Close(), srvs.metrics.Close())
	case <-ctx.Done():
	}
	stopSignals()
	return shutdown(log, cfg, api, srvs)
}

// metricsMaxConns caps the metrics listener's open connections.
const metricsMaxConns = 16

// servers are the service's two HTTP servers.
type servers struct {
	api, metrics *http.Server
}

// goMemoryLimit returns the Go runtime's soft memory limit for a container limited to
// containerLimit bytes, and whether to set it. 90%: the rest is for what the limit does not
// count (goroutine stacks beyond it, the binary, kernel buffers) so that the garbage collector
// works harder near the limit instead of the kernel killing the container at it. Not when
// GOMEMLIMIT is set: the runtime has applied it, and an operator's explicit value wins.
func goMemoryLimit(containerLimit int64, gomemlimit string) (int64, bool) {
	if gomemlimit != "" || containerLimit <= 0 {
		return 0, false
	}
	return containerLimit/10*9 + containerLimit%10*9/10, true
}

// prepare waits for the database (replicas often start before it) and applies the
// schema, giving up after cfg.StartupTimeout or on an error a retry cannot fix.
func prepare(ctx context.Context, log *slog.Logger, cfg config.Config, pool *pgxpool.Pool, s store.Strategy) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for {
		unique, err := store.Prepare(ctx, pool, s, log, store.WithMigrationLockTimeout(cfg.MigrationLockTimeout))
		// The session's synchronous_commit, read through the pool (so with the pool's own
		// settings): whether an acknowledged commit is durable, for operators and for the e2e
		// suite's durability canary, which reads this line.
		var syncCommit string
		if err == nil {
			err = pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&syncCommit)
		}
		if err == nil {
			log.Info("database ready", "unique_index", unique, "synchronous_commit", syncCommit)
			return nil
		}
		if !store.IsUnavailable(err) || ctx.Err() != nil {
			return fmt.Errorf("prepare database: %w", err)
		}
		log.Warn("database not ready, retrying", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("prepare database: %w", err)
		}
		// Capped at half a second: the database's pod usually comes up a few seconds after the
		// replicas, and every moment between its first answer and the next try is a moment the
		// replica is not serving (a 2 s cap cost a rollout 1 s on average). A refused connection
		// costs the database nothing.
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

func shutdown(log *slog.Logger, cfg config.Config, api *httpapi.Server, srvs servers) error {
	log.Info("shutting down", "drain_delay", cfg.DrainDelay, "timeout", cfg.ShutdownTimeout)
	api.SetDraining()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if cfg.DrainDelay > 0 {
		// Keep serving while endpoints controllers notice /readyz failing.
		t := time.NewTimer(cfg.DrainDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	var errs []error
	if err := srvs.api.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shutdown: in-flight requests did not finish in %s: %w", cfg.ShutdownTimeout, err), srvs.api.Close())
	} else {
		log.Info("http server stopped")
	}
	// Metrics last, so that a scrape during the drain still sees the counts move.
	if err := srvs.metrics.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shutdown metrics: %w", err), srvs.metrics.Close())
	} else {
		log.Info("metrics server stopped")
	}
	return errors.Join(errs...)
}
