//go:build e2e

package cluster

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// testClusterName is the cluster of these tests: $STAMPEDE_TEST_CLUSTER, else a run's own name.
func testClusterName() string {
	if n := os.Getenv("STAMPEDE_TEST_CLUSTER"); n != "" {
		return n
	}
	return KindName(NewRunID())
}

func testNodeImage(ctx context.Context, t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	image, err := NodeImage(ctx, root, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return image
}

// TestUpSmokeDown creates a real kind cluster with 30080 taken on the host (docker must publish
// the NodePort elsewhere), runs Smoke through that port, exports logs, and deletes the cluster.
// Needs docker and the node image: STAMPEDE_NODE_IMAGE or scripts/node-image.sh's image.
func TestUpSmokeDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	image := testNodeImage(ctx, t)
	// Hold 30080 if it is free: the cluster must not need it.
	if l, err := net.Listen("tcp", "127.0.0.1:30080"); err == nil {
		defer l.Close()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	name := testClusterName()
	t.Cleanup(func() { _ = Delete(context.Background(), name, log) })
	c, err := Up(ctx, Params{
		Mode: ModeKind, Name: name, ConfigPath: filepath.Join("..", "..", "kind-config.yaml"),
		NodeImage: image, ArtifactsDir: t.TempDir(), Logger: log,
	})
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	kubeconfig := c.KubeconfigPath()
	if _, err := os.Stat(kubeconfig); err != nil {
		t.Errorf("kubeconfig: %v", err)
	}
	if got := len(c.Workers()); got != 2 || len(c.Nodes()) != 3 {
		t.Errorf("nodes %+v, want 3 with 2 workers", c.Nodes())
	}
	port, err := c.HostPort(ServiceNodePort)
	if err != nil || port == int(ServiceNodePort) || port <= 0 {
		t.Errorf("HostPort = %d, %v; want a port docker chose, not the held %d", port, err, ServiceNodePort)
	}
	if rec, err := readOwner(StateDir(), name); err != nil || rec == nil || rec.PID != os.Getpid() {
		t.Errorf("owner record %+v, %v; want this process's", rec, err)
	}
	if _, err := New(Params{Mode: ModeReuse, Name: name, ConfigPath: filepath.Join("..", "..", "kind-config.yaml"), NoCreate: true}); err == nil {
		t.Error("a second user of the cluster got its lock")
	}
	report, err := Smoke(ctx, c, SmokeParams{})
	t.Logf("smoke report:\n%s", report)
	if err != nil {
		t.Errorf("Smoke: %v", err)
	}
	logs := t.TempDir()
	if err := c.ExportLogs(ctx, logs); err != nil {
		t.Errorf("ExportLogs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(logs, name+"-control-plane", "kubelet.log")); err != nil {
		t.Errorf("exported logs lack the control plane's kubelet log: %v", err)
	}
	if err := c.Down(ctx); err != nil {
		t.Fatalf("Down: %v", err)
	}
	exists, err := clusterExists(newProvider(log), name)
	if err != nil || exists {
		t.Errorf("after Down: exists=%t err=%v", exists, err)
	}
	if _, err := os.Stat(kubeconfig); !os.IsNotExist(err) {
		t.Errorf("temporary kubeconfig left behind: %v", err)
	}
}

// TestInterruptedCreateLeavesNothing cancels Up while kind is creating the nodes: Up must
// return once the nodes are gone, with no owner record and no lock left.
func TestInterruptedCreateLeavesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	image := testNodeImage(ctx, t)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	name := testClusterName()
	t.Cleanup(func() { _ = Delete(context.Background(), name, log) })
	upCtx, interrupt := context.WithCancel(ctx)
	go func() {
		// Interrupt once kind has started node containers.
		for upCtx.Err() == nil {
			if cs, _ := listKindContainers(ctx); len(cs) > 0 && slices.ContainsFunc(cs, func(c kindContainer) bool { return c.Cluster == name }) {
				time.Sleep(3 * time.Second)
				interrupt()
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err := Up(upCtx, Params{Mode: ModeKind, Name: name, ConfigPath: filepath.Join("..", "..", "kind-config.yaml"), NodeImage: image, Logger: log})
	t.Logf("Up returned after %s: %v", time.Since(start).Round(100*time.Millisecond), err)
	if err == nil {
		t.Fatal("Up finished before the interrupt: nothing was tested")
	}
	cs, err := listKindContainers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Cluster == name {
			t.Errorf("container %s (%s) left behind", c.Name, c.State)
		}
	}
	if rec, _ := readOwner(StateDir(), name); rec != nil {
		t.Errorf("owner record left behind: %+v", rec)
	}
	if held, _ := lockHeld(StateDir(), name); held {
		t.Error("lock still held")
	}
}
