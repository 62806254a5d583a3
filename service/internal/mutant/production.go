//go:build !selftest

package mutant

import (
	"crypto/ed25519"
	"log/slog"
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

// Warming is the ready-before-pool mutant's warm-up; false in a production build.
func Warming() bool { return false }

// ConflictNow is the conflict-without-race mutant's coin; false in a production build.
func ConflictNow() bool { return false }
