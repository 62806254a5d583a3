package framework

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/target"
)

func loadTarget(t *testing.T, name string) *target.Target {
	t.Helper()
	tg, err := target.Load(filepath.Join("..", "..", "targets", name, "target.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// The test target's plan, in its file's order: atomic and fail-fast held to exactly once,
// atomic first, legacy's canary before return-existing's with what each must and must never
// find, and everything runnable. The bundled target's plan is held in its own package's tests.
func TestPlanSpecs(t *testing.T) {
	p := PlanSpecs(loadTestTarget(t), true)
	if !slices.Equal(p.ExactlyOnce, []string{"atomic", "fail-fast"}) || p.Primary() != "atomic" {
		t.Errorf("exactly-once modes %v, primary %s; want atomic, fail-fast and atomic", p.ExactlyOnce, p.Primary())
	}
	want := []CanaryMode{
		{Mode: "legacy", Findings: []check.Kind{check.KindEmptySubject}},
		{Mode: "return-existing", Findings: []check.Kind{check.KindDuplicateRows, check.KindTwoTokens}, Never: []check.Kind{check.KindEmptySubject}},
	}
	if !slices.EqualFunc(p.Canaries, want, func(a, b CanaryMode) bool {
		return a.Mode == b.Mode && slices.Equal(a.Findings, b.Findings) && slices.Equal(a.Never, b.Never)
	}) {
		t.Errorf("canaries %+v, want %+v", p.Canaries, want)
	}
	for name, why := range map[string]string{"exactly-once": p.NoExactlyOnce, "canary": p.NoCanary, "durability": p.NoDurability, "proxy": p.NoProxy, "selftest": p.NoSelftest} {
		if why != "" {
			t.Errorf("%s skipped for the test target: %s", name, why)
		}
	}
}

// The orders API's plan: safe alone exactly once, its two broken modes canaries, a database
// endpoint (so the proxy faults run) and no mutants, whose skip names the target.
func TestPlanSpecsOrders(t *testing.T) {
	p := PlanSpecs(loadTarget(t, "orders"), false)
	if !slices.Equal(p.ExactlyOnce, []string{"safe"}) || p.Primary() != "safe" {
		t.Errorf("exactly-once modes %v, primary %s; want safe", p.ExactlyOnce, p.Primary())
	}
	if len(p.Canaries) != 2 || p.Canaries[0].Mode != "naive" || p.Canaries[1].Mode != "cached-replay" {
		t.Errorf("canaries %+v, want naive then cached-replay", p.Canaries)
	}
	if p.NoExactlyOnce != "" || p.NoCanary != "" || p.NoDurability != "" || p.NoProxy != "" {
		t.Errorf("orders skips %q %q %q %q, want none of them", p.NoExactlyOnce, p.NoCanary, p.NoDurability, p.NoProxy)
	}
	if !strings.Contains(p.NoSelftest, "target orders") {
		t.Errorf("skip reason %q, want one naming target orders", p.NoSelftest)
	}
}

// A target without an exactly-once mode, a canary or the bundled database skips those specs,
// each with its reason; the primary mode is then only a placeholder.
func TestPlanSpecsSkips(t *testing.T) {
	tg := loadTestTarget(t)
	tg.Modes = []target.Mode{{Name: "broken", Contract: target.Contract{ExactlyOnce: false}}}
	tg.Deploy.Database.Bundled = nil
	p := PlanSpecs(tg, true)
	if len(p.ExactlyOnce) != 0 || p.Primary() == "" {
		t.Errorf("exactly-once %v, primary %q: want none, and a placeholder", p.ExactlyOnce, p.Primary())
	}
	for name, why := range map[string]string{"exactly-once": p.NoExactlyOnce, "canary": p.NoCanary, "durability": p.NoDurability, "proxy": p.NoProxy, "selftest": p.NoSelftest} {
		if why == "" {
			t.Errorf("%s: no reason to skip it", name)
		}
	}
}
