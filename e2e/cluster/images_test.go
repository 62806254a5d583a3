package cluster

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestEachAtOnceRunsAllTogether: every item runs, at the same time (each waits for all the
// others to have started, which one after another would never see), and every error is kept.
func TestEachAtOnceRunsAllTogether(t *testing.T) {
	items := []string{"a", "b", "c", "d"}
	var started sync.WaitGroup
	started.Add(len(items))
	err := eachAtOnce(items, func(it string) error {
		started.Done()
		started.Wait()
		if it == "b" || it == "d" {
			return fmt.Errorf("failed %s", it)
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "failed b") || !strings.Contains(err.Error(), "failed d") {
		t.Fatalf("err = %v, want both failures", err)
	}
	if err := eachAtOnce(items, func(string) error { return nil }); err != nil {
		t.Errorf("no failure: err = %v", err)
	}
	if err := eachAtOnce(nil, func(string) error { return errors.New("never") }); err != nil {
		t.Errorf("no items: err = %v", err)
	}
}
