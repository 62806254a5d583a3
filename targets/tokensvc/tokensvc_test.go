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
	"time"

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

// api is the token service's API as the suite reads it from the validated file.
func api(t *testing.T) check.API {
	t.Helper()
	tg, err := target.Load(target.FileName)
	if err != nil {
		t.Fatal(err)
	}
	a, err := check.APIFromTarget(tg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// memberNames lists a promise's members as its target file writes them, without their types.
func memberNames(ms []check.Member) string {
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	return strings.Join(names, ", ")
}

// TestAPIFromTarget holds what the token service's target file says to what its service
// answers: the pointers, the promises of its outcomes and of a few errors.
func TestAPIFromTarget(t *testing.T) {
	a := api(t)
	if a.ID != "/customer_id" || a.Created != "/created" || a.Credential != "/token" || a.ErrorCode != "/error" || a.Verifier != check.VerifierJWT {
		t.Errorf("pointers %+v", a)
	}
	if a.New.Status != 200 || a.New.CacheControl != "no-store" || memberNames(a.New.Members) != "token, customer_id, created" || a.New.Members[2].Type != check.MemberBoolean {
		t.Errorf("new %+v", a.New)
	}
	for code, want := range map[string]struct {
		status    int
		clean     bool
		members   string
		retry     bool
		challenge string
	}{
		"unauthenticated": {401, false, "error, message", false, "Bearer"},
		"unknown_field":   {400, false, "error, message, field", false, ""},
		"conflict":        {409, true, "error, message", true, ""},
		"empty_subject":   {500, true, "error, message", false, ""},
		"internal":        {500, false, "error, message", false, ""},
		"unavailable":     {503, true, "error, message", true, ""},
		"not_found":       {404, false, "error, message", false, ""},
	} {
		i := slices.IndexFunc(a.Errors, func(p check.ErrorPromise) bool { return p.Outcome == code && p.Status == want.status })
		if i < 0 {
			t.Errorf("%s: no promise, want %+v", code, want)
			continue
		}
		p := a.Errors[i]
		if p.Clean != want.clean || memberNames(p.Members) != want.members || p.RetryAfter != want.retry ||
			p.WWWAuthenticate != want.challenge || p.ContentType != "application/json" {
			t.Errorf("%s: %+v, want %+v", code, p, want)
		}
	}
	if c := a.Counter; c == nil || c.Name != "tokensvc_registrations_total" || c.New != "created" || c.NoID != "null_subject" ||
		c.Errors["empty_subject"] != "empty_subject_refused" || c.InvalidInput != "invalid_input" {
		t.Errorf("counter %+v", a.Counter)
	}
	if a.Issuer != "stampede-tokensvc" || a.Audience != "stampede-merchant-api" || a.TTL != 24*time.Hour || a.JWKSPath != "/.well-known/jwks.json" {
		t.Errorf("jwt settings %q %q %s %q", a.Issuer, a.Audience, a.TTL, a.JWKSPath)
	}
	if !reflect.DeepEqual(a.Claims, []check.ClaimField{{Claim: "ext", Field: "external_id"}, {Claim: "mid", Field: "merchant_id"}}) ||
		!reflect.DeepEqual(a.Agree, []string{"email", "name"}) {
		t.Errorf("claims %+v agree %v", a.Claims, a.Agree)
	}
}

// TestSuccessLabel: findings name the token service's one success promise "token answer", as
// they did before the API was read from its target file.
func TestSuccessLabel(t *testing.T) {
	if a := api(t); a.New.Outcome != "token" || a.Existing.Outcome != "token" {
		t.Errorf("token service's success labels %q, %q", a.New.Outcome, a.Existing.Outcome)
	}
}

// The contracts of the token service's modes as e2e/check's table held them before they came from
// the target file: the lines' IDs and docs are in the findings (and the violations.json) of every
// run judged by them, which a re-check must reproduce.
var (
	oldUnavailable = check.ContractLine{ID: "unavailable-during-fault", Status: 503, Code: "unavailable", RetryAfter: true, DuringFault: true,
		Doc: "503 unavailable with Retry-After, only while a fault that declares it is on (or within its tail), from the pods it names"}
	oldOverloaded = check.ContractLine{ID: "overloaded-during-fault", Status: 503, Code: "overloaded", RetryAfter: true, DuringFault: true,
		Doc: "503 overloaded with Retry-After (the in-flight cap), only while a fault that declares it is on (or within its tail), from the pods it names"}
	oldContracts = map[string]check.Contract{
		"atomic": {Strategy: "atomic",
			Promise: check.ContractLine{ID: "200-outside-faults", Doc: "atomic answers 200 to every valid request while no fault is on"},
			Lines:   []check.ContractLine{oldUnavailable, oldOverloaded}},
		"fail-fast": {Strategy: "fail-fast",
			Promise: check.ContractLine{ID: "200-or-conflict", Doc: "fail-fast answers 200, or 409 to the loser of a concurrent registration; never 500"},
			Lines: []check.ContractLine{{ID: "conflict-retry-after", Status: 409, Code: "conflict", RetryAfter: true, Rival: true,
				Doc: "409 conflict with Retry-After: a concurrent request of the same customer is creating it"}, oldUnavailable, oldOverloaded}},
		"return-existing": {Strategy: "return-existing",
			Promise: check.ContractLine{ID: "200-outside-faults", Doc: "return-existing answers 200 while no fault is on; its bug is duplicate rows, not errors"},
			Lines: []check.ContractLine{{ID: "empty-subject-refused", Status: 500, Code: "empty_subject",
				Doc: "500 empty_subject: create() yielded no customer and the handler refused to sign"}, oldUnavailable, oldOverloaded}},
		"legacy": {Strategy: "legacy",
			Promise: check.ContractLine{ID: "200-outside-faults", Doc: "legacy answers 200 while no fault is on; it signs even a null customer"},
			Lines:   []check.ContractLine{oldUnavailable, oldOverloaded}},
	}
)

// TestContracts: the contracts derived from the token service's target file are the ones its
// runs were judged by, line for line (in any order: a line is found by its status and code).
func TestContracts(t *testing.T) {
	a := api(t)
	if len(a.Contracts) != len(oldContracts) {
		t.Errorf("%d contracts, want %d", len(a.Contracts), len(oldContracts))
	}
	byID := func(a, b check.ContractLine) int { return strings.Compare(a.ID, b.ID) }
	for mode, want := range oldContracts {
		got, err := a.Contract(mode)
		if err != nil {
			t.Fatal(err)
		}
		want.Lines = slices.SortedFunc(slices.Values(want.Lines), byID)
		got.Lines = slices.SortedFunc(slices.Values(got.Lines), byID)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: contract\n%+v\nwant\n%+v", mode, got, want)
		}
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

// TestName: the embedded file's name is the one target.Load reads from the repository's file.
func TestName(t *testing.T) {
	got, err := Name()
	if err != nil {
		t.Fatal(err)
	}
	tg, err := target.Load(target.FileName)
	if err != nil {
		t.Fatal(err)
	}
	if got != tg.Name {
		t.Errorf("embedded name %q, validated file's %q", got, tg.Name)
	}
}
