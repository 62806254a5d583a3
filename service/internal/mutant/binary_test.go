package mutant_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stampede-e2e/stampede/service/internal/mutant"
	"github.com/stampede-e2e/stampede/service/mutants"
)

// TestProductionBinaryHasNoMutants builds tokensvc as scripts/build-image.sh does, with this
// test's own build tags, and looks for the mutants in the binary: none in a production build,
// all of them in a self-test build (which shows the search can fail).
func TestProductionBinaryHasNoMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokensvc")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build tokensvc: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "tokensvc")
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin}
	if mutant.Enabled {
		args = append(args, "-tags", mutants.BuildTag)
	}
	cmd := exec.Command(goBin, append(args, "github.com/stampede-e2e/stampede/service/cmd/tokensvc")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	// The variable, every name, and a string only a mutant's code holds.
	needles := append([]string{mutants.EnvVar, "tokensvc-staging"}, mutants.Names()...)
	for _, s := range needles {
		found := bytes.Contains(data, []byte(s))
		switch {
		case mutant.Enabled && !found:
			t.Errorf("the self-test binary does not contain %q", s)
		case !mutant.Enabled && found:
			t.Errorf("the production binary contains %q: a mutant is linked in", s)
		}
	}
}
