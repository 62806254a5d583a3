package framework

import (
	"fmt"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// SpecPlan is which specs a target's file lets the suite run, and on which of its modes: the
// spec files build their Ginkgo tree from it, so that a second target gets the same specs
// without a line of Go that names it. Each reason says why a spec is skipped for this target,
// "" when it runs: a spec a target cannot run is skipped with its reason, never left out.
type SpecPlan struct {
	// Target is the target's name.
	Target string
	// ExactlyOnce are the modes that promise one entity per key (contract.exactlyOnce), in the
	// file's order: each gets the registration spec.
	ExactlyOnce []string
	// Canaries are the known-broken modes (modes[].canary), in the file's order: each gets the
	// canary specs, which must produce one of its findings.
	Canaries []CanaryMode
	// NoExactlyOnce is why the specs on an exactly-once mode (existing keys, cross-tenant keys,
	// chaos, network policy) cannot run: the target has no such mode.
	NoExactlyOnce string
	// NoCanary is why no canary spec can run: the target declares no known-broken mode.
	NoCanary string
	// NoDurability is why the durability canary cannot run: the target does not use the
	// bundled PostgreSQL, whose synchronous_commit the canary turns off.
	NoDurability string
	// NoProxy is why the specs that put toxiproxy between the target and its database (the
	// faults on the database path, the canary under db-latency) cannot run: the target does not
	// say where its workload reads the database's host and port.
	NoProxy string
	// NoSelftest is why the self-test cannot run: the target ships no mutants.
	NoSelftest string
}

// CanaryMode is a known-broken mode, the kinds of finding a run of it must produce one of, and
// those it must never produce (target.Canary.Never).
type CanaryMode struct {
	Mode     string
	Findings []check.Kind
	Never    []check.Kind
}

// PlanSpecs reads t's modes and database into a SpecPlan. mutants says whether the target ships
// a self-test build with mutants, which its file cannot say (the caller knows where they are).
func PlanSpecs(t *target.Target, mutants bool) SpecPlan {
	p := SpecPlan{Target: t.Name}
	for _, m := range t.Modes {
		if m.Contract.ExactlyOnce {
			p.ExactlyOnce = append(p.ExactlyOnce, m.Name)
		}
		if m.Canary != nil {
			p.Canaries = append(p.Canaries, CanaryMode{Mode: m.Name, Findings: check.KindsOf(m.Canary.Findings), Never: check.KindsOf(m.Canary.Never)})
		}
	}
	if len(p.ExactlyOnce) == 0 {
		p.NoExactlyOnce = fmt.Sprintf("target %s has no mode whose contract is exactlyOnce: nothing to hold to one entity per key", t.Name)
	}
	if len(p.Canaries) == 0 {
		p.NoCanary = fmt.Sprintf("target %s declares no known-broken mode (modes[].canary): no canary to catch", t.Name)
	}
	if t.Deploy.Database.Bundled == nil {
		p.NoDurability = fmt.Sprintf("target %s does not use the bundled PostgreSQL: the durability canary turns its synchronous_commit off", t.Name)
	}
	if db := t.Deploy.Database.Bundled; db == nil || db.Endpoint == nil {
		p.NoProxy = fmt.Sprintf("target %s says not where its workload reads the database's host and port (deploy.database.bundled.endpoint): no proxy can stand in between", t.Name)
	}
	if !mutants {
		p.NoSelftest = fmt.Sprintf("target %s ships no self-test build with mutants", t.Name)
	}
	if p.NoSelftest == "" && p.NoExactlyOnce != "" {
		p.NoSelftest = p.NoExactlyOnce
	}
	return p
}

// Primary is the exactly-once mode the specs that need one mode run on (existing keys,
// cross-tenant keys, chaos, network policy, durability): the first in the file. With none it
// is a placeholder for the skipped specs' texts.
func (p SpecPlan) Primary() string {
	if len(p.ExactlyOnce) == 0 {
		return "exactly-once"
	}
	return p.ExactlyOnce[0]
}

// Detect counts the customers of r with a finding of one of c's kinds: the canary's catch.
func (c CanaryMode) Detect(r check.Result) check.Detection {
	return check.DetectKinds(r, c.Findings...)
}
