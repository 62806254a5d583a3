//go:build selftest

package mutant

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stampede-e2e/stampede/service/mutants"
)

// Enabled reports whether this is a self-test build.
const Enabled = true

// ids maps the catalog's names to the hooks' IDs.
var ids = map[string]ID{
	mutants.LoserEmptySubject:  LoserEmptySubject,
	mutants.LoserConflict:      LoserConflict,
	mutants.LoserUnavailable:   LoserUnavailable,
	mutants.CreatedAlways:      CreatedAlways,
	mutants.CreatedNever:       CreatedNever,
	mutants.IatNow:             IatNow,
	mutants.IatRounded:         IatRounded,
	mutants.ForeignKey:         ForeignKey,
	mutants.WrongIssuer:        WrongIssuer,
	mutants.SubExternalID:      SubExternalID,
	mutants.SharedLastCustomer: SharedLastCustomer,
	mutants.NoUniqueIndex:      NoUniqueIndex,
	mutants.AckUncommitted:     AckUncommitted,
	mutants.AsyncCommit:        AsyncCommit,
	mutants.AnyMerchantKey:     AnyMerchantKey,
	mutants.UncountedExisting:  UncountedExisting,
	// issue 18, answer shape
	mutants.Created201:         Created201,
	mutants.SniffedContentType: SniffedContentType,
	mutants.TerseErrors:        TerseErrors,
	mutants.Bare401:            Bare401,
	// issue 18, jwks
	mutants.UnknownKid:  UnknownKid,
	mutants.ReplicaJWKS: ReplicaJWKS,
	mutants.NoKid:       NoKid,
	// issue 18, answers that never arrive
	mutants.LoserDropsConnection: LoserDropsConnection,
	mutants.LoserExits:           LoserExits,
	// issue 18, auth surface and colliding tenants
	mutants.TenantBlindLookup:   TenantBlindLookup,
	mutants.UnknownKeyForbidden: UnknownKeyForbidden,
	// issue 18, faults
	mutants.ReadyBeforePool:     ReadyBeforePool,
	mutants.ConflictWithoutRace: ConflictWithoutRace,

	// issue 18, clocks and coverage
	mutants.NoServerTiming:    NoServerTiming,
	mutants.ServerTimingEarly: ServerTimingEarly,
	// issue 18, rows
	mutants.StrayRow:      StrayRow,
	mutants.TruncatedName: TruncatedName,
}

var (
	active atomic.Int32 // an ID

	mu         sync.Mutex
	name       string
	startupKey ed25519.PrivateKey
	last       any
	setAt      time.Time
)

// Is reports whether mutant id is active.
func Is(id ID) bool { return ID(active.Load()) == id }

// Active returns the name of the active mutant, or "" when none is.
func Active() string {
	mu.Lock()
	defer mu.Unlock()
	return name
}

// Set makes the mutant called n active, or none when n is "", and forgets the state of the
// previous one (its startup key, its last customer). Start calls it; tests call it directly,
// before they open pools or build servers, and never from parallel tests.
func Set(n string) error {
	id, ok := ids[n]
	if n != "" && !ok {
		return fmt.Errorf("unknown %s %q (want one of %s; or empty for none)",
			mutants.EnvVar, n, strings.Join(mutants.Names(), ", "))
	}
	var key ed25519.PrivateKey
	if id == ForeignKey || id == ReplicaJWKS {
		var err error
		if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return fmt.Errorf("mutant %s: generate key: %w", n, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	name, startupKey, last, setAt = n, key, nil, time.Now()
	active.Store(int32(id))
	return nil
}

// PoolWarmup is how long after it was activated the ready-before-pool mutant answers every
// registration 503 unavailable.
const PoolWarmup = 20 * time.Second

// Warming reports whether the ready-before-pool mutant's pool is still "opening": less than
// PoolWarmup since the mutant was activated (at start).
func Warming() bool {
	mu.Lock()
	defer mu.Unlock()
	return time.Since(setAt) < PoolWarmup
}

// ConflictNow reports, at random for half the calls, whether the conflict-without-race mutant
// answers this registration 409.
func ConflictNow() bool { return mathrand.IntN(2) == 0 }

// Start reads TOKENSVC_MUTANT through getenv and activates that mutant on top of strategy,
// which must be the atomic one. It logs one warning when a mutant is active.
func Start(getenv func(string) string, strategy string, log *slog.Logger) error {
	n := getenv(mutants.EnvVar)
	if _, known := ids[n]; known && strategy != mutants.Strategy {
		return fmt.Errorf("%s=%s is layered on the %s create strategy: set TOKENSVC_CREATE_STRATEGY=%s, not %q",
			mutants.EnvVar, n, mutants.Strategy, mutants.Strategy, strategy)
	}
	if err := Set(n); err != nil {
		return err
	}
	if n == "" {
		log.Info("self-test build, no mutant active: behaving as production")
		return nil
	}
	m, _ := mutants.Lookup(n)
	log.Warn("SELF-TEST BUILD: a deliberately broken variant is active, never serve real traffic with it",
		"mutant", n, "defect", m.Doc)
	return nil
}

// StartupKey is the key the foreign-key mutant signs with, and the stray key the replica-jwks
// mutant publishes, generated when it was activated (so per process); nil for any other mutant.
func StartupKey() ed25519.PrivateKey {
	mu.Lock()
	defer mu.Unlock()
	return startupKey
}

// SetLast stores v in the shared-last-customer mutant's per-process variable.
func SetLast(v any) {
	mu.Lock()
	defer mu.Unlock()
	last = v
}

// Last returns what SetLast stored last in this process, or nil.
func Last() any {
	mu.Lock()
	defer mu.Unlock()
	return last
}

// exit ends the process for the loser-exits mutant; tests replace it (SetExit).
var exit = os.Exit

// SetExit makes the loser-exits mutant call f instead of os.Exit, and returns what restores
// os.Exit. Tests call it, never from parallel tests: a test cannot let the process exit.
func SetExit(f func(code int)) (restore func()) {
	exit = f
	return func() { exit = os.Exit }
}

// AbandonLoser is the loser-drops-connection and loser-exits mutants, which the handler calls
// on the loser of the insert race only. With neither active it returns false and does nothing.
// Otherwise the loser gets no answer: loser-exits ends the process with status 1 (all its
// requests in flight go unanswered, and Kubernetes restarts the container); loser-drops-connection,
// or loser-exits when a test's exit returned, hijacks w's connection and closes it without
// writing a byte. It returns true then, and the handler must not touch w again.
func AbandonLoser(w http.ResponseWriter) bool {
	switch ID(active.Load()) {
	case LoserExits:
		fmt.Fprintf(os.Stderr, "mutant %s: the loser of an insert race exits the process\n", Active())
		exit(1)
	case LoserDropsConnection:
	default:
		return false
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// A writer that cannot be hijacked (HTTP/2): the server drops the stream unanswered.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
	return true
}
