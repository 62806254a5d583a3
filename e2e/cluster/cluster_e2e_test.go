//go:build e2e

package cluster

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpSmokeDown creates a real kind cluster with 30080 taken on the host (so the mapping must
// move), runs Smoke through the moved port, exports logs, and deletes the cluster.
// Needs docker and the node image: STAMPEDE_NODE_IMAGE or scripts/node-image.sh's image.
func TestUpSmokeDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	image := os.Getenv("STAMPEDE_NODE_IMAGE")
	if image == "" {
		out, err := exec.CommandContext(ctx, filepath.Join("..", "..", "scripts", "node-image.sh")).Output()
		if err != nil {
			t.Fatalf("scripts/node-image.sh: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		image = lines[len(lines)-1]
	}
	// Hold 30080 if it is free, so that the relocation is exercised for certain.
	if l, err := net.Listen("tcp", "127.0.0.1:30080"); err == nil {
		defer l.Close()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	const name = "stampede-cluster-it"
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
	if err != nil || port == int(ServiceNodePort) {
		t.Errorf("HostPort = %d, %v; want a port other than the held %d", port, err, ServiceNodePort)
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
