// Command stampede-cluster brings stampede's kind clusters up and down outside the suite, for the
// fast inner loop (`make cluster-up`, `make smoke`, `make cluster-down`), cleans up what runs left
// behind (`make gc`), and tells scripts the names they share with the suite.
//
//	stampede-cluster up [--name N] [--config FILE] [--image IMAGE] [--keep] [--fresh]
//	stampede-cluster down [--name N]
//	stampede-cluster smoke [--name N] [--image WHOAMI_IMAGE]
//	stampede-cluster kubeconfig [--name N]
//	stampede-cluster load [--name N] --images IMAGE[,IMAGE...]
//	stampede-cluster gc [--run ID] [--kept] [--dry-run]
//	stampede-cluster run-env [--seed N] [--artifacts DIR]
//	stampede-cluster network-name | bridge-name
//
// up reuses the named cluster when it is healthy and creates it otherwise (reuse mode). The node
// image defaults to $STAMPEDE_NODE_IMAGE, else to what scripts/node-image.sh prints (it builds
// the image when missing). The kubeconfig is written to a file of its own (printed by
// `kubeconfig`); ~/.kube/config is never touched. Every command that uses a cluster holds the
// lock of its name meanwhile, so `down` refuses a cluster that a run is using.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stampede-e2e/stampede/e2e/cluster"
	"github.com/stampede-e2e/stampede/e2e/report"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

const usage = `usage: stampede-cluster COMMAND [flags]
  up [--name N] [--config FILE] [--image IMAGE] [--keep] [--fresh]
                      create the kind cluster (default "stampede"), or reuse it when healthy
  down [--name N]     delete it, whoever created it (refused while a run holds its lock)
  smoke [--name N] [--image IMAGE]
                      check it end to end (system pods, image loading, NodePort, DNS, pod network)
  kubeconfig [--name N]
                      print the path of its kubeconfig
  gc [--run ID] [--kept] [--dry-run]
                      remove what dead runs left: their clusters, paused nodes, lock files, and
                      the shared network when unused; --run only that run's, --kept also kept
                      clusters stampede created; clusters without a stampede record stay
  gc-namespaces --kubeconfig K --context C --run ID
                      on an existing cluster, delete the namespaces that run created (its
                      owner labels), nothing else
  run-env [--seed N] [--artifacts DIR]
                      start a run: print RUN_ID, SEED (new when 0) and ARTIFACTS_DIR (created
                      under DIR, default _artifacts, with DIR/latest pointing at it) as shell
  network-name, bridge-name
                      print the docker network of stampede's nodes and its bridge interface`

// errUsage marks an error whose message already says what to do.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	err := run(ctx, log, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, strings.TrimSuffix(err.Error(), ": "+errUsage.Error()))
			os.Exit(2)
		}
		var locked *cluster.LockedError
		if errors.As(err, &locked) {
			// One line: who holds the cluster.
			fmt.Fprintln(os.Stderr, "stampede-cluster:", locked)
			os.Exit(1)
		}
		log.Error("stampede-cluster failed", "err", err)
		os.Exit(1)
	}
}

func logLevel() slog.Level {
	if os.Getenv("STAMPEDE_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// command is one subcommand: its flags on a FlagSet of its own, and what it does.
type command struct {
	flags func(fs *flag.FlagSet) func(ctx context.Context, log *slog.Logger, stdout io.Writer) error
}

var commands = map[string]command{
	"up": {func(fs *flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		name := nameFlag(fs)
		config := fs.String("config", "", "kind config (default: kind-config.yaml at the repository root)")
		image := fs.String("image", "", "node image (default: $STAMPEDE_NODE_IMAGE, else scripts/node-image.sh)")
		keep := fs.Bool("keep", false, "keep the nodes of a failed create for debugging")
		fresh := fs.Bool("fresh", false, "delete the cluster and create it anew even when healthy")
		return func(ctx context.Context, log *slog.Logger, stdout io.Writer) error {
			return up(ctx, log, stdout, cluster.Params{
				Mode: cluster.ModeReuse, Name: *name, ConfigPath: *config, NodeImage: *image,
				Kubeconfig: kubeconfigPath(*name), Keep: *keep, Recreate: *fresh, Logger: log,
			})
		}
	}},
	"down": {func(fs *flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		name := nameFlag(fs)
		return func(ctx context.Context, log *slog.Logger, _ io.Writer) error {
			if err := cluster.Delete(ctx, *name, log); err != nil {
				return err
			}
			if err := os.RemoveAll(filepath.Dir(kubeconfigPath(*name))); err != nil {
				return fmt.Errorf("remove kubeconfig: %w", err)
			}
			return nil
		}
	}},
	"smoke": {func(fs *flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		name := nameFlag(fs)
		image := fs.String("image", "", "whoami image to deploy (default: build it)")
		return func(ctx context.Context, log *slog.Logger, stdout io.Writer) error {
			c, err := attach(ctx, log, *name)
			if err != nil {
				return err
			}
			defer func() { _ = c.Down(context.WithoutCancel(ctx)) }()
			start := time.Now()
			r, err := cluster.Smoke(ctx, c, cluster.SmokeParams{Image: *image})
			if r != nil {
				fmt.Fprint(stdout, r)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "smoke passed in %s\n", time.Since(start).Round(100*time.Millisecond))
			return nil
		}
	}},
	"load": {func(fs *flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		name := nameFlag(fs)
		images := fs.String("images", "", "images to load into every node, comma-separated (as scripts/build-image.sh prints them)")
		return func(ctx context.Context, log *slog.Logger, stdout io.Writer) error {
			refs := strings.FieldsFunc(*images, func(r rune) bool { return r == ',' || r == ' ' })
			if len(refs) == 0 {
				return fmt.Errorf("stampede-cluster load: name the images: --images stampede/tokensvc:<tag>,...: %w", errUsage)
			}
			c, err := attach(ctx, log, *name)
			if err != nil {
				return err
			}
			defer func() { _ = c.Down(context.WithoutCancel(ctx)) }()
			if err := c.LoadImages(ctx, refs...); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "loaded %s into %s\n", strings.Join(refs, " "), *name)
			return nil
		}
	}},
	"kubeconfig": {func(fs *flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		name := nameFlag(fs)
		return func(ctx context.Context, log *slog.Logger, stdout io.Writer) error {
			c, err := attach(ctx, log, *name)
			if err != nil {
				return err
			}
			defer func() { _ = c.Down(context.WithoutCancel(ctx)) }()
			fmt.Fprintln(stdout, c.KubeconfigPath())
			return nil
		}
	}},
	"gc": {func(fs *flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		var p cluster.GCParams
		fs.StringVar(&p.RunID, "run", "", "only what the run with this id left (scripts/e2e.sh after an interrupt)")
		fs.BoolVar(&p.Kept, "kept", false, "also delete kept clusters stampede created (reuse mode, KEEP=true) that no run holds")
		fs.BoolVar(&p.DryRun, "dry-run", false, "report what would be removed, remove nothing")
		return func(ctx context.Context, log *slog.Logger, stdout io.Writer) error {
			p.Logger = log
			_, err := cluster.GC(ctx, stdout, p)
			return err
		}
	}},
	"gc-namespaces": {func(fs *flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		kubeconfig := fs.String("kubeconfig", "", "the existing cluster's kubeconfig")
		kctx := fs.String("context", "", "its context, named explicitly")
		runID := fs.String("run", "", "the run whose namespaces to delete")
		return func(ctx context.Context, _ *slog.Logger, stdout io.Writer) error {
			cs, err := cluster.ExistingClient(*kubeconfig, *kctx)
			if err != nil {
				return err
			}
			n, err := cluster.DeleteRunNamespaces(ctx, cs, *runID, stdout)
			fmt.Fprintf(stdout, "%d namespaces of run %s deleted\n", n, *runID)
			return err
		}
	}},
	"run-env": {func(fs *flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		seed := fs.Uint64("seed", 0, "the run's seed; 0 picks one")
		base := fs.String("artifacts", "", "artifacts base directory (default: _artifacts at the repository root)")
		return func(_ context.Context, _ *slog.Logger, stdout io.Writer) error {
			return runEnv(stdout, *seed, *base, time.Now())
		}
	}},
	"network-name": {func(*flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		return func(_ context.Context, _ *slog.Logger, stdout io.Writer) error {
			_, err := fmt.Fprintln(stdout, cluster.NetworkName)
			return err
		}
	}},
	"bridge-name": {func(*flag.FlagSet) func(context.Context, *slog.Logger, io.Writer) error {
		return func(_ context.Context, _ *slog.Logger, stdout io.Writer) error {
			_, err := fmt.Fprintln(stdout, cluster.BridgeName)
			return err
		}
	}},
}

func nameFlag(fs *flag.FlagSet) *string {
	return fs.String("name", cluster.DefaultName, "kind cluster name")
}

func run(ctx context.Context, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("stampede-cluster: a command is needed (up, down, smoke, kubeconfig, load, gc, run-env); run `stampede-cluster help`: %w", errUsage)
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	cmd, ok := commands[name]
	if !ok {
		return fmt.Errorf("stampede-cluster: unknown command %q: want up, down, smoke, kubeconfig, load, gc, run-env, network-name or bridge-name (run `stampede-cluster help`): %w", name, errUsage)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	do := cmd.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			return nil
		}
		return fmt.Errorf("stampede-cluster %s: %v (run `stampede-cluster help` for the flags): %w", name, err, errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("stampede-cluster %s: unexpected argument %q (flags only; run `stampede-cluster help`): %w", name, fs.Arg(0), errUsage)
	}
	return do(ctx, log, stdout)
}

// runEnv starts a run for scripts/e2e.sh: a run id, the seed (a new one when 0), and the run's
// artifacts directory, named after both, as shell assignments that e2e.sh evals: every value is
// single-quoted, so that a path with $(...), backticks or quotes in it stays a path.
func runEnv(stdout io.Writer, seed uint64, base string, now time.Time) error {
	if seed == 0 {
		seed = traffic.NewSeed()
	}
	if base == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		base = filepath.Join(root, "_artifacts")
	}
	runID := cluster.NewRunID()
	dir, err := report.NewRunDir(base, now, seed, runID)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "RUN_ID=%s\nSEED=%d\nARTIFACTS_DIR=%s\n", shellQuote(runID), seed, shellQuote(dir))
	return err
}

// shellQuote quotes s as one word for a POSIX shell: in single quotes, where nothing expands,
// and each single quote of its own closes the quoting, is escaped, and reopens it. Go's %q is no
// such quoting: in its double quotes the shell still runs $(...) and backticks.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func up(ctx context.Context, log *slog.Logger, stdout io.Writer, p cluster.Params) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if p.ConfigPath == "" {
		p.ConfigPath = filepath.Join(root, "kind-config.yaml")
	}
	if p.NodeImage == "" {
		if p.NodeImage, err = cluster.NodeImage(ctx, root, os.Stderr); err != nil {
			return err
		}
	}
	start := time.Now()
	c, err := cluster.Up(ctx, p)
	if err != nil {
		return err
	}
	defer func() { _ = c.Down(context.WithoutCancel(ctx)) }() // keeps it: reuse mode
	url, err := c.ServiceURL()
	if err != nil {
		// A cluster whose config maps no host port (one to verify as if it were staging, known
		// by its kubeconfig alone) is still a cluster: the suite reaches it from inside
		// (-e2e.traffic=cluster).
		url = fmt.Sprintf("none from this host (%v): send traffic from inside the cluster, -e2e.traffic=cluster", err)
	}
	fmt.Fprintf(stdout, "cluster %s ready in %s (created: %t)\nkubeconfig: %s\nservice: %s\n",
		c.Name(), time.Since(start).Round(100*time.Millisecond), c.Created(), c.KubeconfigPath(), url)
	for _, n := range c.Nodes() {
		fmt.Fprintf(stdout, "node: %s %s\n", n.Name, n.Role)
	}
	return nil
}

// attach connects to the named cluster made earlier by up, without creating anything, and holds
// its lock until Down.
func attach(ctx context.Context, log *slog.Logger, name string) (*cluster.Cluster, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	return cluster.Up(ctx, cluster.Params{
		Mode: cluster.ModeReuse, Name: name, ConfigPath: filepath.Join(root, "kind-config.yaml"),
		Kubeconfig: kubeconfigPath(name), NoCreate: true, Logger: log,
	})
}

// kubeconfigPath is where a named cluster's kubeconfig lives between commands: a file of its
// own under the temporary directory, never ~/.kube/config.
func kubeconfigPath(name string) string {
	return filepath.Join(os.TempDir(), "stampede-cluster-"+name, "kubeconfig")
}

// repoRoot finds the directory holding go.mod and kind-config.yaml, from the working directory
// up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "go.mod")) && fileExists(filepath.Join(d, "kind-config.yaml")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find repository root: no go.mod with kind-config.yaml above %s: run from the stampede checkout", dir)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
