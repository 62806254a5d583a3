//go:build !selftest

package mutant

import (
	"crypto/ed25519"
	"log/slog"
	"net/http"
)

// Enabled reports whether this is a self-test build. It is a constant so that a branch it
// guards disappears from a production build.
const Enabled = false

// Is reports whether mutant id is active; never, in a production build.
func Is(ID) bool { return false }

// Active returns the name of the active mutant; "" in a production build.
func Active() string { return "" }

// Start does nothing in a production build: the environment is not even read.
func Start(func(string) string, string, *slog.Logger) error { return nil }

// StartupKey is the foreign-key mutant's signing key; nil in a production build.
func StartupKey() ed25519.PrivateKey { return nil }

// SetLast is the shared-last-customer mutant's per-process variable; a no-op in a
// production build.
func SetLast(any) {}

// Last returns what SetLast stored; nil in a production build.
func Last() any { return nil }

// Response returns w: in a production build the handler's answers go out as it writes them.
func Response(w http.ResponseWriter) http.ResponseWriter { return w }

// AbandonLoser is the loser-drops-connection and loser-exits mutants; in a production build it
// does nothing and returns false, and the compiler drops the branch it guards.
func AbandonLoser(http.ResponseWriter) bool { return false }

// Warming is the ready-before-pool mutant's warm-up; false in a production build.
func Warming() bool { return false }

// ConflictNow is the conflict-without-race mutant's coin; false in a production build.
func ConflictNow() bool { return false }
