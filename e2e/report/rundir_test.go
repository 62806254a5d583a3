package report

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRunDirName(t *testing.T) {
	start := time.Date(2026, 1, 2, 16, 4, 5, 0, time.FixedZone("CET", 3600))
	if got := RunDirName(start, 4242); got != "20260102T150405Z-seed4242" {
		t.Errorf("RunDirName = %q, want the UTC time and the seed", got)
	}
}

func TestNewRunDir(t *testing.T) {
	base := filepath.Join(t.TempDir(), "_artifacts")
	start := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	first, err := NewRunDir(base, start, 7, "aaaaaa")
	if err != nil || first != filepath.Join(base, "20260102T150405Z-seed7") {
		t.Fatalf("NewRunDir = %q, %v", first, err)
	}
	// A parallel run with the same seed in the same second gets a directory of its own.
	second, err := NewRunDir(base, start, 7, "bbbbbb")
	if err != nil || second != first+"-bbbbbb" {
		t.Fatalf("second NewRunDir = %q, %v; want %s-bbbbbb", second, err, first)
	}
	link, err := os.Readlink(filepath.Join(base, LatestLink))
	if err != nil || link != filepath.Base(second) {
		t.Errorf("latest -> %q, %v; want the newest run %s", link, err, filepath.Base(second))
	}
	if fi, err := os.Stat(filepath.Join(base, LatestLink)); err != nil || !fi.IsDir() {
		t.Errorf("latest does not resolve to a directory: %v", err)
	}
	if _, err := NewRunDir(base, start, 7, ""); err == nil {
		t.Error("a third run without a run id reused an existing directory")
	}
}
