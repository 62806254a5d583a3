//go:build selftest

package mutant

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

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
	if id == ForeignKey {
		var err error
		if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return fmt.Errorf("mutant %s: generate key: %w", n, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	name, startupKey, last = n, key, nil
	active.Store(int32(id))
	return nil
}

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

// StartupKey is the key the foreign-key mutant signs with, generated when it was activated;
// nil for any other mutant.
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
