package framework

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// tokenAPI is the API of a success body {"token", "id", "created"}: the credential at /token.
var tokenAPI = &check.API{ID: "/id", Created: "/created", Credential: "/token"}

func outcome(ops ...history.Op) Outcome {
	return Outcome{Traffic: &traffic.Outcome{History: ops}, API: tokenAPI}
}

func answer(c history.Customer, seq int, token string, created bool) history.Op {
	body := `{"token":"` + token + `","id":"x","created":false}`
	if created {
		body = strings.Replace(body, `"created":false`, `"created":true`, 1)
	}
	return history.Op{Customer: c, Seq: seq, Status: 200, Body: body, Pod: "pod-a"}
}

func TestSameTokens(t *testing.T) {
	a := history.Customer{Index: 0, Tenant: "m", EntityKey: "a"}
	b := history.Customer{Index: 1, Tenant: "m", EntityKey: "b"}
	before := outcome(answer(a, 0, "ta", true), answer(b, 0, "tb", true))
	if err := SameTokens(before, outcome(answer(a, 0, "ta", false), answer(a, 1, "ta", false), answer(b, 0, "tb", false))); err != nil {
		t.Errorf("same tokens: %v", err)
	}
	if err := SameTokens(before, outcome(answer(a, 0, "ta", false), answer(a, 1, "other", false))); err == nil {
		t.Error("a new token for an existing customer was not reported")
	}
	if err := SameTokens(outcome(answer(a, 0, "ta", true), answer(a, 1, "ta2", true)), outcome(answer(a, 0, "ta", false))); err == nil {
		t.Error("a customer with two tokens before was not reported")
	}
	if err := SameTokens(before, outcome(history.Op{Customer: a, Status: 409, Body: `{"error":"conflict"}`})); err != nil {
		t.Errorf("a clean error is not a token: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		c := Config{DefaultTarget: testTarget}
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		c.RegisterFlags(fs)
		// The test target has no build recipe: its image is given, ahead of args that may name another.
		if err := fs.Parse(append([]string{testImage}, args...)); err != nil {
			return c, err
		}
		return c, c.Validate()
	}
	if c, err := parse(); err != nil || c.RunID == "" || c.ClusterName != "stampede-"+c.RunID {
		t.Errorf("defaults: %+v, %v; want a cluster named after the run", c, err)
	}
	if c, err := parse("-e2e.run-id=abc123"); err != nil || c.ClusterName != "stampede-abc123" {
		t.Errorf("run id: %+v, %v", c, err)
	}
	if c, err := parse("-e2e.cluster-name=stampede-h1a", "-e2e.run-id=abc123"); err != nil || c.ClusterName != "stampede-h1a" {
		t.Errorf("named: %+v, %v", c, err)
	}
	if c, err := parse("-e2e.mode=reuse"); err != nil || c.ClusterName != "stampede" {
		t.Errorf("reuse: %+v, %v", c, err)
	}
	if c, err := parse(); err != nil || c.Traffic != TrafficHost || c.Attackers != 3 {
		t.Errorf("traffic defaults in kind mode: %q with %d attackers, %v; want host, 3", c.Traffic, c.Attackers, err)
	}
	existing := []string{"-e2e.mode=existing", "-e2e.kubeconfig=/k", "-e2e.context=staging", "-e2e.image=r/t:1", "-e2e.postgres-image=r/p:1"}
	if _, err := parse(existing...); err == nil || !strings.Contains(err.Error(), "attacker-image") {
		t.Errorf("existing mode defaults to cluster traffic, which needs an attacker image: %v", err)
	}
	if c, err := parse(append(existing, "-e2e.attacker-image=r/a:1")...); err != nil || c.Traffic != TrafficCluster {
		t.Errorf("existing mode: traffic %q, %v; want cluster", c.Traffic, err)
	}
	if c, err := parse(append(existing, "-e2e.traffic=host")...); err != nil || c.Traffic != TrafficHost {
		t.Errorf("existing mode with host traffic: %q, %v", c.Traffic, err)
	}
	if c, err := parse("-e2e.traffic=cluster", "-e2e.attackers=2"); err != nil || c.Traffic != TrafficCluster || c.Attackers != 2 || c.AttackLead <= 0 {
		t.Errorf("cluster traffic in kind mode: %+v, %v", c, err)
	}
	for _, bad := range [][]string{
		{"-e2e.traffic=pods"},
		{"-e2e.traffic=cluster", "-e2e.attackers=0"},
		{"-e2e.traffic=cluster", "-e2e.attack-lead=0s"},
		{"-e2e.mode=bogus"},
		{"-e2e.mode=existing"},
		{"-e2e.burst=1"},
		{"-e2e.replicas=1"},
		{"-e2e.customers=0"},
	} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

func TestKeepNamespace(t *testing.T) {
	for _, tc := range []struct{ failed, keep, want bool }{
		{false, false, false}, {true, false, false}, {false, true, false}, {true, true, true},
	} {
		if got := keepNamespace(tc.failed, tc.keep); got != tc.want {
			t.Errorf("keepNamespace(failed=%t, keep=%t) = %t", tc.failed, tc.keep, got)
		}
	}
}

// nodePortService is Service name in namespace ns, on the suite's node port.
func nodePortService(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeNodePort,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			Ports:                 []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http"), NodePort: 30080}},
		},
	}
}

func TestReleaseNodePortSpec(t *testing.T) {
	svc := nodePortService("ns", "web")
	if !releaseNodePortSpec(svc) {
		t.Fatal("a NodePort service was left alone")
	}
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.Ports[0].NodePort != 0 || svc.Spec.ExternalTrafficPolicy != "" {
		t.Errorf("spec after release: %+v", svc.Spec)
	}
	if svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("the ports themselves changed: %+v", svc.Spec.Ports)
	}
	if releaseNodePortSpec(svc) {
		t.Error("a ClusterIP service was changed again")
	}
}

// A namespace an earlier spec of this run kept gives up the NodePort before the next deploy;
// another run's namespace and namespaces not labeled as stampede's are left alone.
func TestReleaseKeptNodePorts(t *testing.T) {
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	tg := loadTestTarget(t)
	name := tg.Deploy.Service.Name
	cs := fake.NewClientset(
		ns("kept", map[string]string{ManagedByLabel: ManagedBy, RunLabel: "r1"}), nodePortService("kept", name),
		ns("other-run", map[string]string{ManagedByLabel: ManagedBy, RunLabel: "old"}), nodePortService("other-run", name),
		ns("foreign", nil), nodePortService("foreign", name),
	)
	e := &Env{Client: cs, Config: Config{Mode: "reuse", RunID: "r1", Target: tg}}
	ctx := context.Background()
	if err := e.releaseKeptNodePorts(ctx); err != nil {
		t.Fatal(err)
	}
	kept, _ := cs.CoreV1().Services("kept").Get(ctx, name, metav1.GetOptions{})
	foreign, _ := cs.CoreV1().Services("foreign").Get(ctx, name, metav1.GetOptions{})
	otherRun, _ := cs.CoreV1().Services("other-run").Get(ctx, name, metav1.GetOptions{})
	if kept.Spec.Type != corev1.ServiceTypeClusterIP || kept.Spec.Ports[0].NodePort != 0 {
		t.Errorf("kept namespace's service still holds a node port: %+v", kept.Spec)
	}
	if foreign.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("a namespace that is not stampede's was changed: %+v", foreign.Spec)
	}
	if otherRun.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("another run's Service was rewritten: %+v", otherRun.Spec)
	}
	// In existing mode the Services are ClusterIP: nothing is listed or rewritten.
	cs = fake.NewClientset(ns("kept", map[string]string{ManagedByLabel: ManagedBy, RunLabel: "r1"}), nodePortService("kept", name))
	e = &Env{Client: cs, Config: Config{Mode: "existing", RunID: "r1", Target: tg}}
	if err := e.releaseKeptNodePorts(ctx); err != nil {
		t.Fatal(err)
	}
	if kept, _ := cs.CoreV1().Services("kept").Get(ctx, name, metav1.GetOptions{}); kept.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("existing mode rewrote a Service: %+v", kept.Spec)
	}
	if err := ReleaseNodePort(ctx, cs, "gone", name); err != nil {
		t.Errorf("no service to release: %v", err)
	}
}

func TestLabelNamespaces(t *testing.T) {
	nsObj := &unstructured.Unstructured{}
	nsObj.SetKind("Namespace")
	nsObj.SetLabels(map[string]string{"keep": "me"})
	other := &unstructured.Unstructured{}
	other.SetKind("Service")
	e := &Env{Config: Config{RunID: "r1"}}
	e.labelNamespaces([]*unstructured.Unstructured{nsObj, other})
	l := nsObj.GetLabels()
	if l[RunLabel] != "r1" || l[ManagedByLabel] != "stampede" || l["keep"] != "me" {
		t.Errorf("namespace labels %v", l)
	}
	if len(other.GetLabels()) != 0 {
		t.Errorf("a Service got labels: %v", other.GetLabels())
	}
}

func TestReproLineNamesTheKeptCluster(t *testing.T) {
	cases := []struct {
		c    Config
		want string
	}{
		{Config{Mode: "kind", ClusterName: "stampede-ab12cd"}, "make e2e-reuse SEED=42 "},
		{Config{Mode: "kind", ClusterName: "stampede-ab12cd", Keep: true}, "make e2e-reuse CLUSTER=stampede-ab12cd SEED=42 "},
		{Config{Mode: "reuse", ClusterName: "stampede"}, "make e2e-reuse CLUSTER=stampede SEED=42 "},
		{Config{Mode: "existing", Kubeconfig: "/home/me/.kube/staging", Context: "staging", Image: "reg.example/app:v1",
			PostgresImage: "reg.example/postgres:15", AttackerImage: "reg.example/attacker:v1"},
			"make pre-release KUBECONFIG=/home/me/.kube/staging CONTEXT=staging IMAGE=reg.example/app:v1 " +
				"POSTGRES_IMAGE=reg.example/postgres:15 ATTACKER_IMAGE=reg.example/attacker:v1 SEED=42 "},
	}
	for _, tc := range cases {
		tc.c.Seed = 42
		got := ReproLine(&tc.c, "a spec")
		if !strings.HasPrefix(got, tc.want) || !strings.HasSuffix(got, `ARGS='--focus="a spec"'`) {
			t.Errorf("%+v: %s; want it to start %q", tc.c, got, tc.want)
		}
	}
}

// TestReproLineQuoting pastes repro lines into a real shell, with make standing in as make does
// (ARGS goes into a shell command line as it is): ginkgo must get a focus that matches the spec's
// text and nothing else, whatever quotes or regular-expression characters the text holds.
func TestReproLineQuoting(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, text := range []string{
		"Chaos keeps atomic's invariants under db-cut",
		`Registration a "quoted" $HOME and a back\slash`,
		"canary db-crash with synchronous_commit=off: (lost) acknowledged registrations are found [x+y]",
	} {
		c := Config{Mode: "existing", Kubeconfig: "/tmp/it's a kubeconfig", Context: "kind-pre", Seed: 7}
		line := ReproLine(&c, text)
		// make: the variables become arguments; then ARGS into a command line, as the Makefile's
		// `scripts/pre-release.sh $(ARGS)`.
		script := `make() { for a in "$@"; do case "$a" in ARGS=*) eval "set -- ${a#ARGS=}"; printf '%s\n' "$@";; KUBECONFIG=*) printf '%s\n' "$a";; esac; done; }; ` + line
		out, err := exec.Command(sh, "-c", script).Output()
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2 || lines[0] != "KUBECONFIG=/tmp/it's a kubeconfig" || !strings.HasPrefix(lines[1], "--focus=") {
			t.Fatalf("%s\nparsed as %q", line, lines)
		}
		re, err := regexp.Compile(strings.TrimPrefix(lines[1], "--focus="))
		if err != nil || !re.MatchString(text) || re.MatchString(strings.Replace(text, " ", "_", 1)) {
			t.Errorf("%s\nfocus %q does not match %q alone (%v)", line, lines[1], text, err)
		}
	}
}

func TestMakeRunDir(t *testing.T) {
	base := t.TempDir()
	c := Config{ArtifactsBase: base, RunID: "r1"}
	if err := c.MakeRunDir(time.Now()); err == nil {
		t.Error("a run directory was named before the seed was chosen")
	}
	c.Seed = 99
	if err := c.MakeRunDir(time.Date(2026, 11, 28, 23, 45, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if c.Artifacts != filepath.Join(base, "20261128T234500Z-seed99") {
		t.Errorf("Artifacts = %q", c.Artifacts)
	}
	given := Config{Artifacts: filepath.Join(base, "given"), Seed: 1}
	if err := given.MakeRunDir(time.Now()); err != nil || given.Artifacts != filepath.Join(base, "given") {
		t.Errorf("a given directory was not kept: %q, %v", given.Artifacts, err)
	}
	if _, err := os.Stat(given.Artifacts); err != nil {
		t.Error(err)
	}
}

func TestForeignKeyRequests(t *testing.T) {
	c := history.Customer{Tenant: "m-1", EntityKey: "a"}
	op := func(key string) history.Op { return history.Op{Customer: c, KeyTenant: key} }
	if n := ForeignKeyRequests(outcome(op("m-1"), op(""), op("m-1"))); n != 0 {
		t.Errorf("own keys and none: %d foreign, want 0", n)
	}
	if n := ForeignKeyRequests(outcome(op("m-1"), op("m-2"), op(""), op("m-3"))); n != 2 {
		t.Errorf("%d foreign, want 2", n)
	}
}

func TestUnauthenticatedRequestsAndCollidingTenants(t *testing.T) {
	a := history.Customer{Index: 0, Tenant: "m-0", EntityKey: "c-1-0"}
	b := history.Customer{Index: 1, Tenant: "m-1", EntityKey: "c-1-0"}
	c := history.Customer{Index: 2, Tenant: "m-0", EntityKey: "c-1-2"}
	own := func(c history.Customer) history.Op {
		return history.Op{Customer: c, KeyTenant: c.Tenant, KeyKind: history.KeyOwn}
	}
	kind := func(k history.KeyKind) history.Op { return history.Op{Customer: c, KeyKind: k} }
	o := outcome(own(a), own(c), history.Op{Customer: c, KeyTenant: "m-1", KeyKind: history.KeyForeign})
	if n, m := UnauthenticatedRequests(o), CollidingTenants(o); n != 0 || m != 0 {
		t.Errorf("own and foreign keys, no shared key: %d unauthenticated, %d colliding; want 0, 0", n, m)
	}
	// An old history's request without a key (no kind recorded) counts too.
	o = outcome(own(a), own(b), kind(history.KeyMalformed), kind(history.KeyUnknown), history.Op{Customer: c})
	if n, m := UnauthenticatedRequests(o), CollidingTenants(o); n != 3 || m != 1 {
		t.Errorf("%d unauthenticated, %d colliding; want 3, 1", n, m)
	}
}

// TestWrongKeys: bursts carry the auth surface; single requests and keyless deployments do not.
func TestWrongKeys(t *testing.T) {
	keys := map[string]string{"m-0": "k0", "m-1": "k1"}
	if got := wrongKeys(keys, 8); got != traffic.DefaultWrongKeys {
		t.Errorf("a burst of 8: %+v, want the default", got)
	}
	if got := wrongKeys(keys, 1); got != (traffic.WrongKeys{}) {
		t.Errorf("single requests: %+v, want none", got)
	}
	if got := wrongKeys(nil, 8); got != (traffic.WrongKeys{}) {
		t.Errorf("no keys: %+v, want none", got)
	}
}
