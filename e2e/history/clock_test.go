package history

import (
	"sync"
	"testing"
	"time"
)

func TestSeqsNeverRepeatPerCustomer(t *testing.T) {
	s := NewSeqs()
	a, b := Customer{Index: 0, Tenant: "m", EntityKey: "a"}, Customer{Index: 1, Tenant: "m", EntityKey: "b"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	for range 50 {
		for _, c := range []Customer{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := RequestID(c.Index, s.Next(c), 0)
				mu.Lock()
				defer mu.Unlock()
				if seen[id] {
					t.Errorf("id %s handed out twice", id)
				}
				seen[id] = true
			}()
		}
	}
	wg.Wait()
	if got := s.Next(a); got != 50 {
		t.Errorf("a's next seq = %d, want 50", got)
	}
}

func TestClockCountsFromItsBase(t *testing.T) {
	base := time.Now().Add(-time.Hour)
	c := NewClock(base)
	if !c.Base().Equal(base) {
		t.Fatalf("base %v, want %v", c.Base(), base)
	}
	if d := c.Since(); d < time.Hour || d > time.Hour+time.Minute {
		t.Errorf("since = %v, want about an hour", d)
	}
}
