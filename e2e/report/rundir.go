package report

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// LatestLink is the symlink in the artifacts base directory that points at the newest run's
// directory.
const LatestLink = "latest"

// RunDirName names a run's artifacts directory: its start in UTC and its seed,
// "20260102T150405Z-seed42", so that directories sort by time and a seed is found by name.
func RunDirName(start time.Time, seed uint64) string {
	return start.UTC().Format("20060102T150405Z") + "-seed" + strconv.FormatUint(seed, 10)
}

// NewRunDir creates the artifacts directory of a run under base, named RunDirName (with a
// "-<run id>" suffix when a parallel run with the same seed started in the same second), and
// points base/latest at it. It returns the directory's path.
func NewRunDir(base string, start time.Time, seed uint64, runID string) (string, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("artifacts directory: %w", err)
	}
	name := RunDirName(start, seed)
	dir := filepath.Join(base, name)
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) && runID != "" {
		name += "-" + runID
		dir = filepath.Join(base, name)
		err = os.Mkdir(dir, 0o755)
	}
	if err != nil {
		return "", fmt.Errorf("artifacts directory: %w", err)
	}
	// Replace the link atomically: a parallel run's reader never sees it missing.
	tmp := filepath.Join(base, "."+LatestLink+"."+strconv.Itoa(os.Getpid()))
	_ = os.Remove(tmp)
	if err := os.Symlink(name, tmp); err != nil {
		return dir, fmt.Errorf("artifacts latest link: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(base, LatestLink)); err != nil {
		_ = os.Remove(tmp)
		return dir, fmt.Errorf("artifacts latest link: %w", err)
	}
	return dir, nil
}
