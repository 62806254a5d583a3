// Package ctxtime holds the module's one context-aware sleep, shared by the token service (its
// legacy strategy's recheck delay) and the suite (retry back-off, pacing a fault on purpose).
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx is done, whichever comes first, and returns ctx's error in the
// second case. A d of zero or less returns at once, with ctx's error if it is already done.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
