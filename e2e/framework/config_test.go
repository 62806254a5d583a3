package framework

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// parseConfig runs args through the suite's real flags and validation, as `go test ./e2e -args`
// or ginkgo would.
func parseConfig(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	var c Config
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
		"-e2e.tokensvc-image=registry.example/tokensvc:v1.2", "-e2e.postgres-image=registry.example/postgres:15",
		"-e2e.attacker-image=registry.example/stampede-attacker:v1.2"}
	if _, err := parseConfig(t, documented...); err != nil {
		t.Fatalf("the documented pre-release flags: %v", err)
	}
	for _, kv := range [][2]string{{"MODE", "existing"}, {"KUBECONFIG", "/k"}, {"CONTEXT", "staging"},
		{"TOKENSVC_IMAGE", "r/t:1"}, {"POSTGRES_IMAGE", "r/p:1"}, {"ATTACKER_IMAGE", "r/a:1"}} {
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
		"-e2e.tokensvc-image=r/t:1", "-e2e.postgres-image=r/p:1", "-e2e.attacker-image=r/a:1"}
	for _, tc := range []struct {
		args        []string
		wantStorage string
		wantErr     string
	}{
		{args: existing, wantStorage: "emptydir"},
		{args: append(slices.Clone(existing), "-e2e.db-storage=pvc"), wantStorage: "pvc"},
		{args: []string{"-e2e.mode=kind", "-e2e.node-image=stampede/node:x"}, wantStorage: "pvc"},
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
