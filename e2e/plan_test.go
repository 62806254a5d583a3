//go:build e2e

package e2e

import (
	"sync"

	. "github.com/onsi/ginkgo/v2"

	"github.com/stampede-e2e/stampede/e2e/framework"
)

// selftestBuild is the scripts/build-image.sh image whose self-test build (NAME-selftest) holds
// the mutants of service/mutants: a target whose image is built so ships them, any other none.
const selftestBuild = "tokensvc"

var specs struct {
	once sync.Once
	plan framework.SpecPlan
	err  error
}

// specPlan is the run's target as the spec tree needs it: its modes, its database, whether it
// ships mutants. Ginkgo builds the tree after the flags are parsed and before BeforeSuite, so
// the target file (-e2e.target, STAMPEDE_E2E_TARGET) is read here, once; a file that does not
// load gives the error, which the tree reports as one failing spec.
func specPlan() (framework.SpecPlan, error) {
	specs.once.Do(func() {
		t, err := cfg.LoadTarget()
		if err != nil {
			specs.err = err
			return
		}
		specs.plan = framework.PlanSpecs(t, cfg.BuildName() == selftestBuild)
	})
	return specs.plan, specs.err
}

// planOrFail returns the plan, or adds a spec that fails with the reason the target file did
// not load and says false: the container then has nothing else to build.
func planOrFail() (framework.SpecPlan, bool) {
	plan, err := specPlan()
	if err != nil {
		It("reads the target file", func() { Fail(err.Error()) })
		return plan, false
	}
	return plan, true
}

// skipFor skips the running spec with reason, why the target cannot run it; "" runs it.
func skipFor(reason string) {
	GinkgoHelper()
	if reason != "" {
		Skip(reason)
	}
}
