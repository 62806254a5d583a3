package tokensvc

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/framework"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// TestAPI: the embedded file decoded without validation gives the API that the validated file
// gives.
func TestAPI(t *testing.T) {
	got, err := API()
	if err != nil {
		t.Fatal(err)
	}
	tg, err := target.Load(target.FileName)
	if err != nil {
		t.Fatal(err)
	}
	want, err := check.APIFromTarget(tg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("embedded: %+v\nvalidated: %+v", got, want)
	}
}

// suiteDefault is the target file the suite judges unless told otherwise (e2e_suite_test.go).
const suiteDefault = "targets/tokensvc/target.yaml"

// TestDefaultTarget: the suite's default target runs in a kind cluster with no flag but the node
// image: its image is built by scripts/build-image.sh tokensvc (with the suite's own images),
// its results name it by its path, and a repro line needs no TARGET for it.
func TestDefaultTarget(t *testing.T) {
	t.Setenv("STAMPEDE_E2E_TARGET", "")
	t.Setenv("STAMPEDE_E2E_IMAGE", "")
	c := framework.Config{DefaultTarget: suiteDefault}
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-e2e.mode=kind", "-e2e.node-image=stampede/node:x"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the default target without -e2e.image: %v", err)
	}
	if c.Target == nil || c.Target.Name != "tokensvc" || c.BuildName() != "tokensvc" {
		t.Errorf("target %v, built as %q; want tokensvc, by scripts/build-image.sh tokensvc", c.Target != nil, c.BuildName())
	}
	if ref := c.TargetRef(); ref.File != suiteDefault || ref.Name != "tokensvc" || !strings.HasPrefix(ref.Digest, "sha256:") {
		t.Errorf("target ref %+v, want %s", ref, suiteDefault)
	}
	if repro := framework.ReproLine(&c, "a spec"); strings.Contains(repro, " TARGET=") {
		t.Errorf("repro line %q names the default target", repro)
	}
}

// TestPlanSpecs: the token service's plan is the specs it had before they came from its file:
// atomic and fail-fast held to exactly once, atomic first, legacy's canary before
// return-existing's, and everything runnable.
func TestPlanSpecs(t *testing.T) {
	tg, err := target.Load(target.FileName)
	if err != nil {
		t.Fatal(err)
	}
	p := framework.PlanSpecs(tg, true)
	if !slices.Equal(p.ExactlyOnce, []string{"atomic", "fail-fast"}) || p.Primary() != "atomic" {
		t.Errorf("exactly-once modes %v, primary %s; want atomic, fail-fast and atomic", p.ExactlyOnce, p.Primary())
	}
	want := []framework.CanaryMode{
		{Mode: "legacy", Findings: []check.Kind{check.KindEmptySubject}},
		{Mode: "return-existing", Findings: []check.Kind{check.KindDuplicateRows, check.KindTwoTokens}, Never: []check.Kind{check.KindEmptySubject}},
	}
	if !slices.EqualFunc(p.Canaries, want, func(a, b framework.CanaryMode) bool {
		return a.Mode == b.Mode && slices.Equal(a.Findings, b.Findings) && slices.Equal(a.Never, b.Never)
	}) {
		t.Errorf("canaries %+v, want %+v", p.Canaries, want)
	}
	for name, why := range map[string]string{"exactly-once": p.NoExactlyOnce, "canary": p.NoCanary, "durability": p.NoDurability, "proxy": p.NoProxy, "selftest": p.NoSelftest} {
		if why != "" {
			t.Errorf("%s skipped for the token service: %s", name, why)
		}
	}
}

// TestSyncCommitLog: the line the file names for the durability canary is the one the service
// logs once its pool is ready (service/cmd/tokensvc), with the member the file reads.
func TestSyncCommitLog(t *testing.T) {
	tg, err := target.Load(target.FileName)
	if err != nil {
		t.Fatal(err)
	}
	l := tg.Observability.SyncCommitLog
	if l == nil || len(l.Match) != 1 || l.Match["msg"] == "" {
		t.Fatalf("syncCommitLog %+v, want one matched on its message", l)
	}
	src, err := os.ReadFile(filepath.Join("..", "..", "service", "cmd", "tokensvc", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	logged := regexp.MustCompile(`log\.Info\(` + regexp.QuoteMeta(strconv.Quote(l.Match["msg"])) + `,.*` + regexp.QuoteMeta(strconv.Quote(l.Field)) + `, `)
	if !logged.Match(src) {
		t.Errorf("the service logs no %q line with %q (%s)", l.Match["msg"], l.Field, logged)
	}
}
