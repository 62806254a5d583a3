package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependsOnLittle holds the reason this command exists: scripts/e2e.sh compiles it before
// anything else of a run, on a machine whose Go caches may be empty, so it must not grow into
// the suite's dependencies (client-go alone is some 400 packages). Its packages outside the
// standard library are e2e/target's own few; a new one fails here, to be weighed.
func TestDependsOnLittle(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{
		"github.com/stampede-e2e/stampede/e2e/cmd/stampede-target",
		"github.com/stampede-e2e/stampede/e2e/target",
		"github.com/stampede-e2e/stampede/e2e/request",
		"github.com/stampede-e2e/stampede/e2e/history",
		"go.yaml.in/yaml/v3",
	}
	var extra []string
	n := 0
	for _, p := range strings.Fields(string(out)) {
		n++
		ok := false
		for _, a := range allowed {
			ok = ok || p == a || strings.HasPrefix(p, a+"/")
		}
		if !ok {
			extra = append(extra, p)
		}
	}
	if n == 0 {
		t.Fatal("go list -deps listed no package of this module: the check would pass on anything")
	}
	if len(extra) > 0 {
		t.Errorf("stampede-target depends on %d packages beyond e2e/target's own: %s", len(extra), strings.Join(extra, " "))
	}
}
