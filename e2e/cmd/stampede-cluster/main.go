// Command stampede-cluster brings stampede's kind cluster up and down outside the suite, for the
// fast inner loop (`make cluster-up`, `make smoke`, `make cluster-down`).
//
//	stampede-cluster up [--name N] [--config FILE] [--image IMAGE] [--keep] [--fresh]
//	stampede-cluster down [--name N]
//	stampede-cluster smoke [--name N] [--image WHOAMI_IMAGE]
//	stampede-cluster kubeconfig [--name N]
//
// up reuses the named cluster when it is healthy and creates it otherwise (reuse mode). The node
// image defaults to $STAMPEDE_NODE_IMAGE, else to what scripts/node-image.sh prints (it builds
// the image when missing). The kubeconfig is written to a file of its own (printed by
// `kubeconfig`); ~/.kube/config is never touched.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stampede-e2e/stampede/e2e/cluster"
)

const usage = `usage: stampede-cluster COMMAND [flags]
  up [--name N] [--config FILE] [--image IMAGE] [--keep] [--fresh]
                      create the kind cluster, or reuse it when healthy
  down [--name N]     delete it
  smoke [--name N] [--image IMAGE]
                      check it end to end (system pods, image loading, NodePort, DNS, pod network)
  kubeconfig [--name N]
                      print the path of its kubeconfig`

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

func run(ctx context.Context, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("stampede-cluster: a command is needed (up, down, smoke, kubeconfig); run `stampede-cluster help`: %w", errUsage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", cluster.DefaultName, "kind cluster name")
	var (
		config, image *string
		keep, fresh   *bool
		smokeImage    *string
	)
	switch cmd {
	case "up":
		config = fs.String("config", "", "kind config (default: kind-config.yaml at the repository root)")
		image = fs.String("image", "", "node image (default: $STAMPEDE_NODE_IMAGE, else scripts/node-image.sh)")
		keep = fs.Bool("keep", false, "keep the nodes of a failed create for debugging")
		fresh = fs.Bool("fresh", false, "delete the cluster and create it anew even when healthy")
	case "smoke":
		smokeImage = fs.String("image", "", "whoami image to deploy (default: build it)")
	case "down", "kubeconfig":
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return fmt.Errorf("stampede-cluster: unknown command %q: want up, down, smoke or kubeconfig (run `stampede-cluster help`): %w", cmd, errUsage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			return nil
		}
		return fmt.Errorf("stampede-cluster %s: %v (run `stampede-cluster help` for the flags): %w", cmd, err, errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("stampede-cluster %s: unexpected argument %q (flags only; run `stampede-cluster help`): %w", cmd, fs.Arg(0), errUsage)
	}
	kubeconfig := kubeconfigPath(*name)

	switch cmd {
	case "up":
		return up(ctx, log, stdout, cluster.Params{
			Mode: cluster.ModeReuse, Name: *name, ConfigPath: *config, NodeImage: *image,
			Kubeconfig: kubeconfig, Keep: *keep, Recreate: *fresh, Logger: log,
		})
	case "down":
		if err := cluster.Delete(ctx, *name, log); err != nil {
			return err
		}
		if err := os.RemoveAll(filepath.Dir(kubeconfig)); err != nil {
			return fmt.Errorf("remove kubeconfig: %w", err)
		}
		return nil
	case "smoke":
		c, err := attach(ctx, log, *name, kubeconfig)
		if err != nil {
			return err
		}
		start := time.Now()
		report, err := cluster.Smoke(ctx, c, cluster.SmokeParams{Image: *smokeImage})
		if report != nil {
			fmt.Fprint(stdout, report)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "smoke passed in %s\n", time.Since(start).Round(100*time.Millisecond))
		return nil
	case "kubeconfig":
		if _, err := attach(ctx, log, *name, kubeconfig); err != nil {
			return err
		}
		fmt.Fprintln(stdout, kubeconfig)
		return nil
	}
	return nil
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
		if p.NodeImage, err = nodeImage(ctx, log, root); err != nil {
			return err
		}
	}
	start := time.Now()
	c, err := cluster.Up(ctx, p)
	if err != nil {
		return err
	}
	url, err := c.ServiceURL()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cluster %s ready in %s (created: %t)\nkubeconfig: %s\nservice: %s\n",
		c.Name(), time.Since(start).Round(100*time.Millisecond), c.Created(), c.KubeconfigPath(), url)
	for _, n := range c.Nodes() {
		fmt.Fprintf(stdout, "node: %s %s\n", n.Name, n.Role)
	}
	return nil
}

// attach connects to the named cluster made earlier by up, without creating anything.
func attach(ctx context.Context, log *slog.Logger, name, kubeconfig string) (*cluster.Cluster, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	return cluster.Up(ctx, cluster.Params{
		Mode: cluster.ModeReuse, Name: name, ConfigPath: filepath.Join(root, "kind-config.yaml"),
		Kubeconfig: kubeconfig, NoCreate: true, Logger: log,
	})
}

// kubeconfigPath is where a named cluster's kubeconfig lives between commands: a file of its
// own under the temporary directory, never ~/.kube/config.
func kubeconfigPath(name string) string {
	return filepath.Join(os.TempDir(), "stampede-cluster-"+name, "kubeconfig")
}

// nodeImage returns $STAMPEDE_NODE_IMAGE, else the last stdout line of scripts/node-image.sh,
// which builds the image when it is missing (its progress goes to stderr).
func nodeImage(ctx context.Context, log *slog.Logger, root string) (string, error) {
	if img := os.Getenv("STAMPEDE_NODE_IMAGE"); img != "" {
		return img, nil
	}
	log.Info("resolving the node image", "script", "scripts/node-image.sh")
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "node-image.sh"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("node image: scripts/node-image.sh: %w", err)
	}
	var last string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	if last == "" {
		return "", errors.New("node image: scripts/node-image.sh printed no image name")
	}
	return last, nil
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
