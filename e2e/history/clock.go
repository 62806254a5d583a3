package history

import (
	"sync"
	"time"
)

// Clock is the one time base of a run. Every recorder of the run stamps the call and return of
// its requests, and every fault its start and end, as durations since the same base, so that
// traffic sent in rounds, a catch-up pass and the fault's window line up without re-basing (as
// etcd's robustness tests hand one baseTime to every recording client).
type Clock struct{ base time.Time }

// NewClock returns a Clock whose base is base.
func NewClock(base time.Time) *Clock { return &Clock{base: base} }

// Base returns the time that every duration of the run counts from.
func (c *Clock) Base() time.Time { return c.base }

// Since returns the time elapsed since the base.
func (c *Clock) Since() time.Duration { return time.Since(c.base) }

// Seqs hands out request sequence numbers per customer for a whole run: every request that
// starts a chain (a burst request, a catch-up request) gets the customer's next number, whichever
// traffic run sends it, so that request ids (RequestID) never repeat within a run.
type Seqs struct {
	mu   sync.Mutex
	next map[Key]int
}

// NewSeqs returns a Seqs that starts every customer at 0.
func NewSeqs() *Seqs { return &Seqs{next: map[Key]int{}} }

// Next returns c's next sequence number.
func (s *Seqs) Next(c Customer) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.next[c.Key()]
	s.next[c.Key()] = n + 1
	return n
}
