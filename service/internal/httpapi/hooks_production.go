//go:build !selftest

package httpapi

import (
	"net/http"
	"time"
)

// answerWriter returns w: the handler's answers go out as it writes them.
func (hooks) answerWriter(w http.ResponseWriter) http.ResponseWriter { return w }

// unknownKeyPasses reports whether a key of no merchant passes authentication: never.
func (hooks) unknownKeyPasses() bool { return false }

// anyMerchantKey reports whether any merchant's key may act for another merchant: never.
func (hooks) anyMerchantKey() bool { return false }

// abandonLoser gives the loser of an insert race no answer and reports so: never.
func (hooks) abandonLoser(http.ResponseWriter) bool { return false }

// existingUncounted reports whether an existing customer's answer counts no outcome: never.
func (hooks) existingUncounted() bool { return false }

// createdFlag returns the created flag the answer carries: whether the row was created.
func (hooks) createdFlag(created bool) bool { return created }

// handlerStart returns the start the handler's interval reports, and whether it reports one:
// start, always.
func (hooks) handlerStart(start time.Time) (time.Time, bool) { return start, true }
