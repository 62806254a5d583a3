package target_test

import (
	"path/filepath"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// TestBundledTargetsValidate loads every target file under targets/: a schema change that a
// bundled target does not follow fails here, not at the first run against it.
func TestBundledTargetsValidate(t *testing.T) {
	files, err := filepath.Glob("../../targets/*/target.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d target files under targets/, want at least two", len(files))
	}
	for _, f := range files {
		if _, err := target.Load(f); err != nil {
			t.Errorf("%s is refused:\n%v", f, err)
		}
	}
}
