// Package stalled is a fixture suite for e2e/progress: one spec that finishes at once and one that
// stalls until its timeout, run with the progress flags scripts/e2e.sh gives Ginkgo.
package stalled

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
)

func TestStalled(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "stalled")
}

var _ = Describe("a run", Ordered, func() {
	It("finishes quickly", func() { Expect(1).To(Equal(1)) })
	// Waits on a channel nobody closes, as a spec stuck on a cluster that never answers would,
	// until the spec's timeout ends it.
	It("stalls on a wait that never ends", SpecTimeout(4*time.Second), func(ctx SpecContext) {
		never := make(chan struct{})
		select {
		case <-never:
		case <-ctx.Done():
		}
		Expect(context.Cause(ctx)).To(HaveOccurred())
	})
})
