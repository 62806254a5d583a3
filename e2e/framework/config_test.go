package framework

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/target"
	"github.com/stampede-e2e/stampede/e2e/traffic"
	"github.com/stampede-e2e/stampede/manifests"
)

// testTarget is the target the framework's tests run with, in the place of the spec package's
// default: a made-up service with the bundled target's shape under names no code knows, so that
// a test passing on it shows the framework reads the target file. The bundled target's own
// facts are held in its own package's tests, under targets/.
const testTarget = "e2e/testdata/widgets/target.yaml"

// testImage is the test target's image: it has no build recipe, so a kind run must be given one.
const testImage = "-e2e.image=example/widgets:1"

// kindArgs are the flags of a kind run of the test target, then extra.
func kindArgs(extra ...string) []string {
	return append([]string{"-e2e.mode=kind", "-e2e.node-image=stampede/node:x", testImage}, extra...)
}

// loadTestTarget loads testTarget.
func loadTestTarget(t *testing.T) *target.Target {
	t.Helper()
	tg, err := target.Load(filepath.Join(repoRoot(), testTarget))
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// parseConfig runs args through the suite's real flags and validation, as `go test ./e2e -args`
// or ginkgo would.
func parseConfig(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	c := Config{DefaultTarget: testTarget}
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return &c, err
	}
	p := c.ClusterParams()
	return &c, p.Validate()
}

// The README's pre-release command, flag by flag and through the environment make pre-release
// sets: it must get past validation, where it once failed at once on the kind config default.
func TestPreReleaseFlags(t *testing.T) {
	documented := []string{"-e2e.mode=existing", "-e2e.kubeconfig=/home/me/.kube/staging", "-e2e.context=staging",
		"-e2e.image=registry.example/app:v1.2", "-e2e.postgres-image=registry.example/postgres:15",
		"-e2e.attacker-image=registry.example/stampede-attacker:v1.2"}
	if _, err := parseConfig(t, documented...); err != nil {
		t.Fatalf("the documented pre-release flags: %v", err)
	}
	for _, kv := range [][2]string{{"MODE", "existing"}, {"KUBECONFIG", "/k"}, {"CONTEXT", "staging"},
		{"IMAGE", "r/t:1"}, {"POSTGRES_IMAGE", "r/p:1"}, {"ATTACKER_IMAGE", "r/a:1"}} {
		t.Setenv("STAMPEDE_E2E_"+kv[0], kv[1])
	}
	c, err := parseConfig(t)
	if err != nil {
		t.Fatalf("make pre-release's environment: %v", err)
	}
	if p := c.ClusterParams(); p.ConfigPath != "" || p.NodeImage != "" || p.Name != "" || p.Context != "staging" {
		t.Errorf("existing mode's cluster params carry kind settings: %+v", p)
	}
	// A context left to the kubeconfig's current one is refused.
	t.Setenv("STAMPEDE_E2E_CONTEXT", "")
	if _, err := parseConfig(t); err == nil || !strings.Contains(err.Error(), "context") {
		t.Errorf("existing mode without a named context: %v", err)
	}
	if _, err := parseConfig(t, "-e2e.context=staging", "-e2e.manifests=/no/such/dir"); err == nil || !strings.Contains(err.Error(), "manifests") {
		t.Errorf("a manifests directory that does not exist: %v", err)
	}
}

// Existing mode keeps the database on an emptyDir unless asked otherwise; kind mode on a claim.
// Bad storage, DNS and run-role settings are refused in one line naming the flag.
func TestExistingModeSettings(t *testing.T) {
	existing := []string{"-e2e.mode=existing", "-e2e.kubeconfig=/k", "-e2e.context=staging",
		"-e2e.image=r/t:1", "-e2e.postgres-image=r/p:1", "-e2e.attacker-image=r/a:1"}
	for _, tc := range []struct {
		args        []string
		wantStorage string
		wantErr     string
	}{
		{args: existing, wantStorage: "emptydir"},
		{args: append(slices.Clone(existing), "-e2e.db-storage=pvc"), wantStorage: "pvc"},
		{args: kindArgs(), wantStorage: "auto"},
		{args: append(kindArgs(), "-e2e.db-storage=pvc"), wantStorage: "pvc"},
		{args: append(slices.Clone(existing), "-e2e.db-storage=hostpath"), wantErr: "-e2e.db-storage"},
		{args: append(slices.Clone(existing), "-e2e.dns=kube-dns"), wantErr: "-e2e.dns"},
		{args: append(slices.Clone(existing), "-e2e.dns=kube-system/k8s-app=kube-dns 169.254.20.10/32")},
		{args: append(slices.Clone(existing), "-e2e.run-role=Stampede Run"), wantErr: "-e2e.run-role"},
	} {
		c, err := parseConfig(t, tc.args...)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%q: %v, want one line naming %s", tc.args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.wantStorage != "" && c.DatabaseStorage != tc.wantStorage:
			t.Errorf("%q: database storage %q, want %q", tc.args, c.DatabaseStorage, tc.wantStorage)
		}
	}
}

// The target file comes from -e2e.target or STAMPEDE_E2E_TARGET (the flag wins), a directory
// meaning its target.yaml; without either the run judges the default one. Results and repro
// lines name it by its path from the repository's root.
func TestTargetFlag(t *testing.T) {
	root := RepoRoot()
	bundled := filepath.Join(root, testTarget)
	name := loadTestTarget(t).Name
	// A copy of the test target's directory: its deploy paths are relative, so they resolve
	// from the new place.
	copyTarget := func(name string) string {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.CopyFS(dir, os.DirFS(filepath.Dir(bundled))); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	fromEnv, fromFlag := copyTarget("env"), copyTarget("flag")
	for _, tc := range []struct {
		name, env string
		args      []string
		wantFile  string
	}{
		{name: "default", wantFile: bundled},
		{name: "directory from the environment", env: fromEnv, wantFile: filepath.Join(fromEnv, target.FileName)},
		{name: "file from the flag", args: []string{"-e2e.target=" + filepath.Join(fromFlag, target.FileName)}, wantFile: filepath.Join(fromFlag, target.FileName)},
		{name: "the flag wins", env: fromEnv, args: []string{"-e2e.target=" + fromFlag}, wantFile: filepath.Join(fromFlag, target.FileName)},
		{name: "the repository's directory", args: []string{"-e2e.target=" + filepath.Dir(bundled)}, wantFile: bundled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STAMPEDE_E2E_TARGET", tc.env)
			c, err := parseConfig(t, kindArgs(tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if c.TargetFile != tc.wantFile || c.Target == nil || c.Target.Name != name {
				t.Fatalf("target file %q (loaded: %v), want %q", c.TargetFile, c.Target != nil, tc.wantFile)
			}
			ref := c.TargetRef()
			wantRef := tc.wantFile
			if tc.wantFile == bundled {
				wantRef = testTarget
			}
			if ref.File != wantRef || ref.Name != name || !strings.HasPrefix(ref.Digest, "sha256:") {
				t.Errorf("target ref %+v, want file %s", ref, wantRef)
			}
			repro := ReproLine(c, "a spec")
			if named := strings.Contains(repro, " TARGET="); named != (wantRef != testTarget) {
				t.Errorf("repro line %q: names the target %v, want %v", repro, named, wantRef != testTarget)
			}
		})
	}
}

// A target file that does not load stops the run in one line naming the flag, the first
// problem and how to list the rest.
func TestTargetRefused(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, target.FileName)
	if err := os.WriteFile(bad, []byte("apiVersion: stampede.dev/v1alpha1\nkind: Target\nnmae: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, arg := range map[string]string{"with problems": dir, "missing": filepath.Join(dir, "none.yaml")} {
		c, err := parseConfig(t, "-e2e.mode=kind", "-e2e.node-image=stampede/node:x", "-e2e.target="+arg)
		if err == nil || !strings.HasPrefix(err.Error(), "-e2e.target=") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line naming -e2e.target", name, err)
		}
		if c != nil && c.Target != nil {
			t.Errorf("%s: a target was loaded", name)
		}
	}
	_, err := parseConfig(t, "-e2e.mode=kind", "-e2e.node-image=stampede/node:x", "-e2e.target="+bad)
	if err == nil || !strings.Contains(err.Error(), "stampede target validate "+bad) || !strings.Contains(err.Error(), "problems, the first target.yaml:") {
		t.Errorf("a target with problems: %v, want the first problem and the validate command", err)
	}
}

// Another service's valid target loads: the suite deploys whatever its deploy section says. An
// image with no build recipe the suite runs must be given, refused in one line otherwise.
func TestTargetOfAnotherService(t *testing.T) {
	orders := filepath.Join(repoRoot(), "manifests", "testdata", "orders", target.FileName)
	_, err := parseConfig(t, "-e2e.mode=kind", "-e2e.node-image=stampede/node:x", "-e2e.target="+orders)
	if err == nil || !strings.Contains(err.Error(), "-e2e.image") || strings.Contains(err.Error(), "\n") {
		t.Errorf("no image for a target without a build recipe: %v, want one line naming -e2e.image", err)
	}
	c, err := parseConfig(t, "-e2e.mode=kind", "-e2e.node-image=stampede/node:x", "-e2e.target="+orders, "-e2e.image=example/orders:7")
	if err != nil {
		t.Fatal(err)
	}
	if c.Target.Name != "orders" || c.serviceName() != "orders" || c.workload().Name != "orders-api" || c.imageName() != "example/orders" {
		t.Errorf("target %s: service %s, workload %s, image %s", c.Target.Name, c.serviceName(), c.workload().Name, c.imageName())
	}
	if _, err := parseConfig(t, kindArgs()...); err != nil {
		t.Errorf("the default target: %v", err)
	}
	var none Config
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	none.RegisterFlags(fs)
	none.Mode, none.NodeImage = "kind", "stampede/node:x"
	if err := none.Validate(); err == nil || !strings.Contains(err.Error(), "-e2e.target") {
		t.Errorf("no target and no default: %v, want one line naming -e2e.target", err)
	}
}

// The traffic sends the target's create request and the JWKS is fetched where the target
// publishes it; without a target, traffic's defaults and no JWKS.
func TestTargetFeedsTrafficAndJWKS(t *testing.T) {
	c, err := parseConfig(t, kindArgs()...)
	if err != nil {
		t.Fatal(err)
	}
	// What the test target's file says, read from the file rather than the parsed config.
	file := loadTestTarget(t)
	svc := file.Deploy.Service
	other := *c.Target
	other.Create.Method, other.Create.Path = "PUT", "/api/v2/signups"
	v := *other.Response.Verifier
	v.JWKSPath = "/other/keys"
	other.Response.Verifier = &v
	for _, tc := range []struct {
		name                       string
		target                     *target.Target
		wantMethod, wantPath, jwks string
	}{
		{"the test target", c.Target, file.Create.Method, file.Create.Path, file.Response.Verifier.JWKSPath},
		{"another target", &other, "PUT", "/api/v2/signups", "/other/keys"},
		{"no target", nil, "", "", ""},
	} {
		cfg := *c
		cfg.Target = tc.target
		d := &Deployment{Env: &Env{Config: cfg}, Namespace: "stampede-atomic-x"}
		if want := fmt.Sprintf("http://%s.%s.svc:%d", svc.Name, d.Namespace, svc.Port); tc.target == c.Target && d.clusterURL() != want {
			t.Errorf("pods reach %s, the target's Service is at %s", d.clusterURL(), want)
		}
		if tc.target != nil {
			host, cluster := d.hostSender().Request, d.cluster("").Request
			if host.Method != tc.wantMethod || host.Path != tc.wantPath || !reflect.DeepEqual(host, cluster) {
				t.Errorf("%s: the host sends %q %q, the cluster %q %q, want %q %q", tc.name, host.Method, host.Path,
					cluster.Method, cluster.Path, tc.wantMethod, tc.wantPath)
			}
		}
		if got := cfg.jwksPath(); got != tc.jwks {
			t.Errorf("%s: JWKS at %q, want %q", tc.name, got, tc.jwks)
		}
	}
}

// A target whose request carries no key gets none, and no wrong ones, whatever keys the
// deployment made; one with auth carries its tenants'.
func TestTenantKeysFollowTheTargetsAuth(t *testing.T) {
	c, err := parseConfig(t, kindArgs()...)
	if err != nil {
		t.Fatal(err)
	}
	keys := APIKeys{"m-0": "k0", "m-1": "k1"}
	d := &Deployment{Env: &Env{Config: *c}, APIKeys: keys}
	if got := d.tenantKeys(); len(got) != 2 || d.batch(nil, 4, 0, DefaultRetry, traffic.ForeignKeys{}, nil).Wrong != traffic.DefaultWrongKeys {
		t.Errorf("the test target: keys %v", got)
	}
	keyless := *c.Target
	keyless.Create.Auth = nil
	d.Env.Config.Target = &keyless
	if got, b := d.tenantKeys(), d.batch(nil, 4, 0, DefaultRetry, traffic.ForeignKeys{}, nil); got != nil || b.Wrong != (traffic.WrongKeys{}) {
		t.Errorf("a target without auth: keys %v, wrong keys %+v", got, b.Wrong)
	}
}

// A target's image is built by its file's build script: by scripts/build-image.sh with the
// suite's own images when that script is its recipe (the bundled target's, whose own test says
// so); the orders API's by its own script, resolved against its file, which the suite then needs
// no -e2e.image for; none for a target without a recipe.
func TestTargetBuildRecipe(t *testing.T) {
	c, err := parseConfig(t, kindArgs()...)
	if err != nil {
		t.Fatal(err)
	}
	if script, args := c.recipe(); script != "" || args != nil || !slices.Equal(c.suiteImageNames(), []string{"postgres", "toxiproxy"}) {
		t.Errorf("no recipe: recipe %q %v, suite images %v; want none, and postgres toxiproxy", script, args, c.suiteImageNames())
	}
	suiteBuilt := *c.Target
	suiteBuilt.Deploy.Images = []target.Image{{Name: "example/widgets",
		Build: &target.Build{Script: "../../../scripts/build-image.sh", Args: []string{"widgets"}}}}
	c.Target = &suiteBuilt
	script, args := c.recipe()
	if script != filepath.Join(repoRoot(), "scripts", "build-image.sh") || !slices.Equal(args, []string{"widgets"}) ||
		!slices.Equal(c.suiteImageNames(), []string{"widgets", "postgres", "toxiproxy"}) {
		t.Errorf("built by the suite's script: recipe %s %v, suite images %v; want scripts/build-image.sh widgets, and widgets postgres toxiproxy", script, args, c.suiteImageNames())
	}
	orders := filepath.Join(repoRoot(), "targets", "orders")
	c, err = parseConfig(t, "-e2e.mode=kind", "-e2e.node-image=stampede/node:x", "-e2e.target="+orders)
	if err != nil {
		t.Fatalf("the orders API with its build script, no -e2e.image: %v", err)
	}
	script, args = c.recipe()
	if script != filepath.Join(orders, "build-image.sh") || len(args) != 0 || !slices.Equal(c.suiteImageNames(), []string{"postgres", "toxiproxy"}) {
		t.Errorf("orders: recipe %s %v, suite images %v; want its build-image.sh, and postgres toxiproxy", script, args, c.suiteImageNames())
	}
}

// With -e2e.db-storage=auto only a deployment whose data must outlive its pod gets a claim
// (kind's local-path provisioning costs every spec 3 to 4 s); an explicit choice holds for all.
func TestDatabaseStorage(t *testing.T) {
	for _, tc := range []struct {
		configured string
		durable    bool
		want       string
	}{
		{StorageAuto, false, manifests.StorageEmptyDir},
		{StorageAuto, true, manifests.StoragePVC},
		{manifests.StoragePVC, false, manifests.StoragePVC},
		{manifests.StorageEmptyDir, true, manifests.StorageEmptyDir},
	} {
		c := &Config{DatabaseStorage: tc.configured}
		if got := c.databaseStorage(DeployParams{DurableDatabase: tc.durable}); got != tc.want {
			t.Errorf("db-storage %s, durable %v: %s, want %s", tc.configured, tc.durable, got, tc.want)
		}
	}
}

// TestGapFromTarget: the bursts' gap is -e2e.gap's when given, else the target file's
// traffic.gap, else traffic.DefaultGap; a negative one is refused in one line.
func TestGapFromTarget(t *testing.T) {
	tokensvc := "-e2e.target=" + filepath.Join(RepoRoot(), "targets", "tokensvc")
	for _, tc := range []struct {
		name string
		args []string
		want time.Duration
	}{
		{"a target without traffic.gap", nil, traffic.DefaultGap},
		{"the bundled target's", []string{tokensvc}, 50 * time.Millisecond},
		{"the flag wins", []string{tokensvc, "-e2e.gap=70ms"}, 70 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(t, kindArgs(tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Gap != tc.want {
				t.Errorf("gap %s, want %s", c.Gap, tc.want)
			}
		})
	}
	if _, err := parseConfig(t, kindArgs("-e2e.gap=-1ms")...); err == nil || err.Error() != "-e2e.gap=-1ms: want more than 0" {
		t.Errorf("a negative gap: %v", err)
	}
}
