//go:build selftest

package httpapi

import (
	"net/http"
	"time"

	"github.com/stampede-e2e/stampede/service/internal/mutant"
)

// answerWriter wraps w for the answer-shape mutants (created-201, sniffed-content-type,
// terse-errors, bare-401), which break the answer's form as it leaves; otherwise it returns w.
func (hooks) answerWriter(w http.ResponseWriter) http.ResponseWriter { return mutant.Response(w) }

// unknownKeyPasses is the unknown-key-forbidden mutant: nobody's key passes as merchant "",
// which the authorization check then refuses 403 instead of the 401 it deserves.
func (hooks) unknownKeyPasses() bool { return mutant.Is(mutant.UnknownKeyForbidden) }

// anyMerchantKey is the any-merchant-key mutant, which skips the authorization check.
func (hooks) anyMerchantKey() bool { return mutant.Is(mutant.AnyMerchantKey) }

// abandonLoser is the loser-drops-connection and loser-exits mutants: the loser of the insert
// race gets no answer (mutant.AbandonLoser), and the handler must not touch w again.
func (hooks) abandonLoser(w http.ResponseWriter) bool { return mutant.AbandonLoser(w) }

// existingUncounted is the uncounted-existing mutant: an existing customer's answer is marked
// counted and never counted.
func (hooks) existingUncounted() bool { return mutant.Is(mutant.UncountedExisting) }

// createdFlag is the created-always and created-never mutants, which answer a created flag of
// their own instead of whether the row was created.
func (hooks) createdFlag(created bool) bool {
	switch {
	case mutant.Is(mutant.CreatedAlways):
		return true
	case mutant.Is(mutant.CreatedNever):
		return false
	}
	return created
}

// handlerStart is the no-server-timing mutant, which reports no interval, and the
// server-timing-early mutant, which reports it starting a second early.
func (hooks) handlerStart(start time.Time) (time.Time, bool) {
	switch {
	case mutant.Is(mutant.NoServerTiming):
		return start, false
	case mutant.Is(mutant.ServerTimingEarly):
		return start.Add(-time.Second), true
	}
	return start, true
}
