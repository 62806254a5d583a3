package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/pgtest"
	"github.com/stampede-e2e/stampede/service/internal/store"
	"github.com/stampede-e2e/stampede/service/internal/token"
)

// The PostgreSQL server starts only when an integration test or benchmark needs
// it, so the unit tests in this package stay instant.
var (
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
)

func postgres(t testing.TB) *pgtest.Server {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pgSrv, pgErr = pgtest.Start(ctx)
	})
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	return pgSrv
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgSrv != nil {
		if err := pgSrv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// realServer returns a Server over a fresh database prepared for strategy.
func realServer(t testing.TB, strategy config.Strategy, delay time.Duration) (*Server, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := store.Open(ctx, postgres(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st, err := store.StrategyFor(strategy)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := store.Prepare(ctx, pool, st, log); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	s, err := New(Params{
		Store: store.New(pool, st, m.ObserveDB), DBCheck: store.New(pool, st, nil), Signer: testSigner(t), Strategy: strategy,
		RecheckDelay: delay, APIKeys: testKeys, PodName: "pod-it", Logger: log, Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, pool
}

// TestConcurrentFirstRegistration sends simultaneous first registrations of one
// customer through the real handler and a real database, for every strategy.
func TestConcurrentFirstRegistration(t *testing.T) {
	rounds, workers := 20, 8
	if testing.Short() {
		rounds = 8
	}
	for _, strategy := range config.Strategies {
		t.Run(string(strategy), func(t *testing.T) {
			// A small pause between lookup and create() makes the race near-certain,
			// so that legacy's anomalies show up in few rounds.
			srv, pool := realServer(t, strategy, 2*time.Millisecond)
			var nulls, splits, conflicts, failures int
			for round := range rounds {
				body := fmt.Sprintf(`{"merchant_id":"m","external_id":"c-%d"}`, round)
				var (
					wg      sync.WaitGroup
					release = make(chan struct{})
					codes   = make([]int, workers)
					bodies  = make([]TokenResponse, workers)
				)
				for i := range workers {
					wg.Go(func() {
						<-release
						w := post(srv, body)
						codes[i] = w.Code
						_ = json.Unmarshal(w.Body.Bytes(), &bodies[i])
					})
				}
				close(release)
				wg.Wait()
				tokens, created := map[string]bool{}, 0
				for i, code := range codes {
					switch {
					case code == http.StatusOK && bodies[i].CustomerID == "":
						nulls++
					case code == http.StatusOK:
						tokens[bodies[i].Token] = true
						claims, err := token.UnmarshalClaims(bodies[i].Token)
						if err != nil || claims.Subject != bodies[i].CustomerID {
							t.Fatalf("token subject %q does not match customer_id %q (%v)", claims.Subject, bodies[i].CustomerID, err)
						}
					case code == http.StatusConflict && strategy == config.StrategyFailFast:
						conflicts++
					default:
						failures++
						t.Errorf("round %d: status %d", round, code)
					}
					if bodies[i].Created {
						created++
					}
				}
				if len(tokens) > 1 {
					splits++
				}
				if strategy != config.StrategyLegacy && strategy != config.StrategyReturnExisting && created != 1 {
					t.Errorf("round %d: %d responses claim to have created the customer, want 1", round, created)
				}
			}
			dups, err := store.DuplicateKeys(context.Background(), pool)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d rounds x %d: null-subject tokens %d, customers with >1 token %d, duplicate customers %d, 409s %d, failures %d",
				strategy, rounds, workers, nulls, splits, dups, conflicts, failures)
			switch strategy {
			case config.StrategyLegacy:
				if nulls+dups == 0 {
					t.Error("legacy showed neither a null-subject token nor a duplicate row; the race was not reproduced")
				}
			case config.StrategyReturnExisting:
				if nulls > 0 {
					t.Errorf("return-existing signed %d null-subject tokens", nulls)
				}
			default:
				if nulls > 0 || splits > 0 || dups > 0 {
					t.Errorf("%s: null-subject %d, split tokens %d, duplicates %d; want none", strategy, nulls, splits, dups)
				}
			}
		})
	}
}

// BenchmarkRegister measures registrations per second through the handler on a
// local PostgreSQL: "new" registers a new customer each op, "existing" the same one.
func BenchmarkRegister(b *testing.B) {
	for _, strategy := range config.Strategies {
		for _, mode := range []string{"new", "existing"} {
			b.Run(string(strategy)+"/"+mode, func(b *testing.B) {
				srv, _ := realServer(b, strategy, 0)
				var seq atomic.Int64
				if w := post(srv, `{"merchant_id":"m","external_id":"existing"}`); w.Code != http.StatusOK {
					b.Fatalf("seed registration: %d %s", w.Code, w.Body)
				}
				b.SetParallelism(4)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						id := "existing"
						if mode == "new" {
							id = fmt.Sprintf("c-%d", seq.Add(1))
						}
						if w := post(srv, `{"merchant_id":"m","external_id":"`+id+`"}`); w.Code != http.StatusOK {
							b.Errorf("status %d: %s", w.Code, w.Body)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
			})
		}
	}
}
