package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StateDirEnv overrides where stampede keeps its locks and owner records.
const StateDirEnv = "STAMPEDE_STATE_DIR"

// StateDir is where stampede keeps, per kind cluster name, a lock (locks/<name>.lock) and an
// owner record (clusters/<name>.json): $STAMPEDE_STATE_DIR, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/stampede. Every run on this host must see the same directory,
// so it is not under the temporary directory of one user session.
func StateDir() string {
	if d := os.Getenv(StateDirEnv); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "stampede")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "stampede")
	}
	return filepath.Join(os.TempDir(), "stampede-state")
}

// NewRunID returns a short random id of a run: it names the run's kind cluster
// (KindName) and labels what the run creates.
func NewRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	return hex.EncodeToString(b)
}

// KindName is the default kind cluster name of a kind-mode run: "stampede-<run id>". It is short
// because kind names node containers "<name>-control-plane" and "<name>-worker2".
func KindName(runID string) string { return "stampede-" + runID }

// Lock is an exclusive flock on a cluster name, held for as long as a run uses that cluster. The
// kernel releases it when the process dies, however it dies.
type Lock struct {
	f    *os.File
	path string
}

// LockedError says which process holds a cluster's lock.
type LockedError struct {
	Cluster string
	PID     int
	RunID   string
	Path    string
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "pid " + strconv.Itoa(e.PID)
		if e.RunID != "" {
			holder += " (run " + e.RunID + ")"
		}
	}
	return fmt.Sprintf("cluster %s is in use by %s, lock %s: wait for it, or name another cluster (CLUSTER=, --name)", e.Cluster, holder, e.Path)
}

func lockPath(stateDir, name string) string {
	return filepath.Join(stateDir, "locks", name+".lock")
}

// AcquireLock takes the exclusive lock of the cluster name under stateDir without waiting; when
// another process holds it, the error is a *LockedError naming that process.
func AcquireLock(stateDir, name, runID string) (*Lock, error) {
	path := lockPath(stateDir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock cluster %s: %w", name, err)
	}
	// A lock file can be unlinked (by its holder's Release, or by gc) between our open and our
	// flock: then we hold a lock on a file nobody else will open, so check and try again.
	for range 5 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock cluster %s: %w", name, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			pid, run := readLockHolder(f)
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &LockedError{Cluster: name, PID: pid, RunID: run, Path: path}
			}
			return nil, fmt.Errorf("lock cluster %s: %w", name, err)
		}
		if !sameFile(f, path) {
			_ = f.Close()
			continue
		}
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(fmt.Sprintf("pid=%d run=%s\n", os.Getpid(), runID)), 0)
		}
		return &Lock{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("lock cluster %s: the lock file %s keeps being replaced", name, path)
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// readLockHolder parses "pid=N run=R" written by the holder.
func readLockHolder(f *os.File) (int, string) {
	b := make([]byte, 128)
	n, _ := f.ReadAt(b, 0)
	var pid int
	var run string
	for _, field := range strings.Fields(string(b[:n])) {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "pid":
			pid, _ = strconv.Atoi(v)
		case "run":
			run = v
		}
	}
	return pid, run
}

// Release removes the lock file and gives up the lock. It is safe to call more than once.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	// Unlink first, while still holding it: a waiter that opened the old file sees it replaced.
	_ = os.Remove(l.path)
	_ = l.f.Close()
	l.f = nil
}

// lockHeld reports whether some process holds the lock of name (false when there is no lock
// file).
func lockHeld(stateDir, name string) (bool, int) {
	f, err := os.Open(lockPath(stateDir, name))
	if err != nil {
		return false, 0
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		pid, _ := readLockHolder(f)
		return true, pid
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, 0
}

// Owner is stampede's record that it created a kind cluster: which run, which process, and
// whether the cluster is meant to outlive the run. It lives in StateDir()/clusters/<name>.json.
// A cluster without one was not created by stampede and is never deleted or recreated by it
// (except by an explicit `stampede-cluster down --name`).
type Owner struct {
	Cluster string `json:"cluster"`
	RunID   string `json:"run_id"`
	PID     int    `json:"pid"`
	// PIDStart is the process's start time in clock ticks since boot (/proc/<pid>/stat), so
	// that a reused pid is not taken for the owner.
	PIDStart  uint64    `json:"pid_start,omitempty"`
	Host      string    `json:"host"`
	CreatedAt time.Time `json:"created_at"`
	// Mode is the mode that created the cluster: kind or reuse.
	Mode Mode `json:"mode"`
	// Keep is true for a cluster meant to outlive its run (reuse mode, KEEP=true): gc leaves it
	// unless asked for kept clusters too.
	Keep bool `json:"keep"`
}

// newOwner is the record of a cluster created now by this process.
func newOwner(name, runID string, mode Mode, keep bool) Owner {
	host, _ := os.Hostname()
	return Owner{
		Cluster: name, RunID: runID, PID: os.Getpid(), PIDStart: processStart(os.Getpid()),
		Host: host, CreatedAt: time.Now().UTC().Truncate(time.Second), Mode: mode, Keep: keep,
	}
}

func ownerPath(stateDir, name string) string {
	return filepath.Join(stateDir, "clusters", name+".json")
}

// writeOwner writes o atomically.
func writeOwner(stateDir string, o Owner) error {
	path := ownerPath(stateDir, o.Cluster)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("owner record: %w", err)
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return fmt.Errorf("owner record: %w", err)
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("owner record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("owner record: %w", err)
	}
	return nil
}

// readOwner returns the record of name, or nil when there is none.
func readOwner(stateDir, name string) (*Owner, error) {
	b, err := os.ReadFile(ownerPath(stateDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("owner record of %s: %w", name, err)
	}
	var o Owner
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("owner record of %s: %w", name, err)
	}
	return &o, nil
}

func removeOwner(stateDir, name string) error {
	if err := os.Remove(ownerPath(stateDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove owner record of %s: %w", name, err)
	}
	return nil
}

// readOwners returns every owner record under stateDir.
func readOwners(stateDir string) ([]Owner, error) {
	paths, err := filepath.Glob(filepath.Join(stateDir, "clusters", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("owner records: %w", err)
	}
	var out []Owner
	var errs []error
	for _, p := range paths {
		o, err := readOwner(stateDir, strings.TrimSuffix(filepath.Base(p), ".json"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o != nil {
			out = append(out, *o)
		}
	}
	return out, errors.Join(errs...)
}

// Alive reports whether the process that wrote o still runs. A record from another host is
// taken as alive: this host cannot tell.
func (o Owner) Alive() bool {
	if host, _ := os.Hostname(); o.Host != "" && o.Host != host {
		return true
	}
	return processAlive(o.PID, o.PIDStart)
}

// processAlive reports whether pid runs and, when start is known, started at start (not a
// reused pid).
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if start == 0 {
		return true
	}
	got := processStart(pid)
	return got == 0 || got == start
}

// processStart returns the start time of pid in clock ticks since boot, 0 when unknown.
func processStart(pid int) uint64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	return parseStatStart(string(b))
}

// parseStatStart reads field 22 (starttime) of /proc/<pid>/stat; the command name (field 2)
// may hold spaces and parentheses, so fields are counted after its closing parenthesis.
func parseStatStart(stat string) uint64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(stat[i+1:])
	// fields[0] is field 3 (state): starttime, field 22, is fields[19].
	if len(fields) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(fields[19], 10, 64)
	return v
}
