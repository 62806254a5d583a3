package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
)

// GCParams narrow what GC removes.
type GCParams struct {
	// RunID limits GC to what that run created (scripts/e2e.sh after an interrupted run); empty
	// means every run's leftovers, and then the shared network too when nothing uses it.
	RunID string
	// Kept also removes clusters that were meant to outlive their run (reuse mode, KEEP=true),
	// once nothing holds their lock (CI's clean slate).
	Kept bool
	// DryRun reports what would be done and does nothing.
	DryRun bool
	// StateDir holds locks and owner records; empty means StateDir().
	StateDir string
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

// GCActionKind is what GC does to one leftover.
type GCActionKind string

// The actions of GC, in the order they are carried out.
const (
	GCUnpause       GCActionKind = "unpause"
	GCDeleteCluster GCActionKind = "delete-cluster"
	GCRemoveRecord  GCActionKind = "remove-record"
	GCRemoveLock    GCActionKind = "remove-lock"
	GCRemoveNetwork GCActionKind = "remove-network"
	// GCSkip is a leftover GC leaves alone, with the reason.
	GCSkip GCActionKind = "skip"
)

// GCAction is one line of GC's plan.
type GCAction struct {
	Kind    GCActionKind
	Cluster string
	// Target is the container, file or network acted on.
	Target string
	Reason string
}

func (a GCAction) String() string {
	s := fmt.Sprintf("%-15s %s", a.Kind, a.Cluster)
	if a.Target != "" && a.Target != a.Cluster {
		s += " " + a.Target
	}
	return s + ": " + a.Reason
}

// kindContainer is a node container of some kind cluster, from `docker ps -a`.
type kindContainer struct {
	Name    string
	Cluster string
	// State is docker's: running, paused, exited, created...
	State string
}

// gcInput is what GC sees of the host; planGC decides from it alone.
type gcInput struct {
	containers []kindContainer
	records    []Owner
	// lockFiles are the cluster names that have a lock file.
	lockFiles []string
	// held says whether some process holds the lock of a cluster, and its pid.
	held func(name string) (bool, int)
	// alive says whether a record's process still runs.
	alive func(Owner) bool
	// networkExists and networkUsers describe NetworkName: how many containers are on it.
	networkExists bool
	networkUsers  int
}

// planGC decides what to remove. A cluster is stampede's only when an owner record names it;
// it is removed only when nothing holds its lock, the process that created it is gone, and it
// was not meant to be kept (unless p.Kept). Paused nodes of a kept cluster whose run is gone are
// unpaused. The network goes only in a full GC, when no container uses it and no run is live.
func planGC(in gcInput, p GCParams) []GCAction {
	var plan []GCAction
	records := map[string]Owner{}
	for _, r := range in.records {
		records[r.Cluster] = r
	}
	byCluster := map[string][]kindContainer{}
	var names []string
	for _, c := range in.containers {
		if _, ok := byCluster[c.Cluster]; !ok {
			names = append(names, c.Cluster)
		}
		byCluster[c.Cluster] = append(byCluster[c.Cluster], c)
	}
	for _, r := range in.records {
		if _, ok := byCluster[r.Cluster]; !ok {
			names = append(names, r.Cluster)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	liveRun := false
	removed := map[string]bool{}
	for _, name := range names {
		r, ours := records[name]
		cs := byCluster[name]
		if !ours {
			if p.RunID == "" {
				plan = append(plan, GCAction{Kind: GCSkip, Cluster: name, Reason: "no owner record: not created by stampede"})
			}
			continue
		}
		if p.RunID != "" && r.RunID != p.RunID {
			continue
		}
		if held, pid := in.held(name); held {
			liveRun = true
			plan = append(plan, GCAction{Kind: GCSkip, Cluster: name, Reason: fmt.Sprintf("in use: pid %d holds its lock", pid)})
			continue
		}
		if in.alive(r) {
			liveRun = true
			plan = append(plan, GCAction{Kind: GCSkip, Cluster: name, Reason: fmt.Sprintf("its creator pid %d (run %s) still runs", r.PID, r.RunID)})
			continue
		}
		who := fmt.Sprintf("run %s, pid %d gone", r.RunID, r.PID)
		switch {
		case len(cs) == 0:
			plan = append(plan, GCAction{Kind: GCRemoveRecord, Cluster: name, Target: ownerFile(name), Reason: "record of a cluster that no longer exists (" + who + ")"})
		case r.Keep && !p.Kept:
			for _, c := range cs {
				if c.State == "paused" {
					plan = append(plan, GCAction{Kind: GCUnpause, Cluster: name, Target: c.Name, Reason: "node left paused (" + who + ")"})
				}
			}
			plan = append(plan, GCAction{Kind: GCSkip, Cluster: name, Reason: fmt.Sprintf("kept (%s mode, keep): `stampede-cluster down --name %s` deletes it", r.Mode, name)})
		default:
			for _, c := range cs {
				if c.State == "paused" {
					plan = append(plan, GCAction{Kind: GCUnpause, Cluster: name, Target: c.Name, Reason: "paused node, unpaused before deletion"})
				}
			}
			plan = append(plan, GCAction{Kind: GCDeleteCluster, Cluster: name, Reason: fmt.Sprintf("%d node containers left by %s", len(cs), who)})
			plan = append(plan, GCAction{Kind: GCRemoveRecord, Cluster: name, Target: ownerFile(name), Reason: "its cluster is deleted"})
			removed[name] = true
		}
	}
	for _, name := range in.lockFiles {
		if held, _ := in.held(name); held {
			liveRun = true
			continue
		}
		if r, ok := records[name]; p.RunID != "" && (!ok || r.RunID != p.RunID) {
			continue
		}
		plan = append(plan, GCAction{Kind: GCRemoveLock, Cluster: name, Target: lockFile(name), Reason: "no process holds it"})
	}
	if p.RunID == "" && in.networkExists && !liveRun {
		users := in.networkUsers
		for name := range removed {
			users -= len(byCluster[name])
		}
		if users <= 0 {
			plan = append(plan, GCAction{Kind: GCRemoveNetwork, Target: NetworkName, Reason: "no container uses it and no run is live"})
		}
	}
	return plan
}

func ownerFile(name string) string { return filepath.Join("clusters", name+".json") }
func lockFile(name string) string  { return filepath.Join("locks", name+".lock") }

// parseKindContainers reads `docker ps -a --format '{{.Names}}\t{{.State}}\t{{.Label "io.x-k8s.kind.cluster"}}'`.
func parseKindContainers(r io.Reader) ([]kindContainer, error) {
	var out []kindContainer
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 || f[2] == "" {
			return nil, fmt.Errorf("docker ps: unexpected line %q", line)
		}
		out = append(out, kindContainer{Name: f[0], State: f[1], Cluster: f[2]})
	}
	return out, sc.Err()
}

func listKindContainers(ctx context.Context) ([]kindContainer, error) {
	out, err := Docker(ctx, "ps", "-a", "--filter", "label="+kindClusterLabel,
		"--format", "{{.Names}}\t{{.State}}\t{{.Label \""+kindClusterLabel+"\"}}")
	if err != nil {
		return nil, fmt.Errorf("list kind node containers: %w", err)
	}
	return parseKindContainers(strings.NewReader(string(out)))
}

// GC finds what stampede runs left behind and removes it, reporting each action on w: kind
// clusters whose owner record's process is gone (kept ones only with p.Kept), paused nodes of
// such clusters, records and lock files nobody holds, and the shared network when nothing uses
// it. It never touches a cluster without a stampede owner record, nor one whose lock is held.
func GC(ctx context.Context, w io.Writer, p GCParams) ([]GCAction, error) {
	if p.StateDir == "" {
		p.StateDir = StateDir()
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	in, err := gcSee(ctx, p.StateDir)
	if err != nil {
		return nil, err
	}
	plan := planGC(in, p)
	var errs []error
	for _, a := range plan {
		prefix := ""
		if p.DryRun && a.Kind != GCSkip {
			prefix = "would "
		}
		fmt.Fprintf(w, "gc: %s%s\n", prefix, a)
		if p.DryRun {
			continue
		}
		if err := gcDo(ctx, p, a); err != nil {
			fmt.Fprintf(w, "gc: failed %s %s: %v\n", a.Kind, a.Cluster, err)
			errs = append(errs, err)
		}
	}
	if len(plan) == 0 {
		fmt.Fprintln(w, "gc: nothing left behind")
	}
	return plan, errors.Join(errs...)
}

func gcSee(ctx context.Context, stateDir string) (gcInput, error) {
	cs, err := listKindContainers(ctx)
	if err != nil {
		return gcInput{}, err
	}
	records, err := readOwners(stateDir)
	if err != nil {
		return gcInput{}, err
	}
	locks, _ := filepath.Glob(filepath.Join(stateDir, "locks", "*.lock"))
	in := gcInput{
		containers: cs,
		records:    records,
		held:       func(name string) (bool, int) { return lockHeld(stateDir, name) },
		alive:      Owner.Alive,
	}
	for _, l := range locks {
		in.lockFiles = append(in.lockFiles, strings.TrimSuffix(filepath.Base(l), ".lock"))
	}
	if _, found, err := inspectNetwork(ctx); err == nil && found {
		in.networkExists = true
		out, err := Docker(ctx, "ps", "-a", "-q", "--filter", "network="+NetworkName)
		if err != nil {
			return gcInput{}, err
		}
		in.networkUsers = len(strings.Fields(string(out)))
	}
	return in, nil
}

func gcDo(ctx context.Context, p GCParams, a GCAction) error {
	switch a.Kind {
	case GCUnpause:
		_, err := Docker(ctx, "unpause", a.Target)
		return err
	case GCDeleteCluster:
		// Hold the lock while deleting, so that no run starts on the name meanwhile.
		l, err := AcquireLock(p.StateDir, a.Cluster, "gc")
		if err != nil {
			return err
		}
		defer l.Release()
		return deleteUntilGone(newProvider(p.Logger), a.Cluster)
	case GCRemoveRecord:
		return removeOwner(p.StateDir, a.Cluster)
	case GCRemoveLock:
		l, err := AcquireLock(p.StateDir, a.Cluster, "gc")
		if err != nil {
			return err
		}
		l.Release()
		return nil
	case GCRemoveNetwork:
		_, err := Docker(ctx, "network", "rm", NetworkName)
		return err
	}
	return nil
}
