package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kindlog "sigs.k8s.io/kind/pkg/log"

	"github.com/stampede-e2e/stampede/e2e/ready"
)

// ExportLogs writes the cluster's logs under dir, for a failed spec: kind's node logs (journal,
// kubelet, containerd, pod logs) in kind and reuse modes; pod states and events in existing mode,
// where the nodes cannot be reached.
func (c *Cluster) ExportLogs(ctx context.Context, dir string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("export logs: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export logs: %w", err)
	}
	if c.provider != nil {
		if err := c.provider.CollectLogs(c.p.Name, dir); err != nil {
			return fmt.Errorf("export logs of %s: %w", c.p.Name, err)
		}
		c.log.Info("exported logs", "dir", dir)
		return nil
	}
	if err := c.writeAPIState(ctx, dir); err != nil {
		return fmt.Errorf("export logs: %w", err)
	}
	c.log.Info("exported pod states and events", "dir", dir)
	return nil
}

// writeAPIState writes every pod's phase and containers' restarts, and every event, as text.
func (c *Cluster) writeAPIState(ctx context.Context, dir string) error {
	pods, err := c.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	events, err := c.client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list events: %w", err)
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAMESPACE\tPOD\tNODE\tPHASE\tREADY\tRESTARTS")
	for _, p := range pods.Items {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%d\n", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase, ready.Pod(&p), restarts(&p))
	}
	_ = w.Flush()
	var e strings.Builder
	for _, ev := range events.Items {
		fmt.Fprintf(&e, "%s %s %s/%s %s: %s\n", ev.LastTimestamp.UTC().Format("15:04:05"), ev.Type,
			ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "pods.txt"), []byte(b.String()), 0o644),
		os.WriteFile(filepath.Join(dir, "events.txt"), []byte(e.String()), 0o644),
	)
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// kindLogger adapts kind's logger to slog: kind's V(0) status lines become Info, deeper levels
// Debug.
type kindLogger struct{ l *slog.Logger }

var _ kindlog.Logger = kindLogger{}

func (k kindLogger) Warn(message string)                       { k.l.Warn(clean(message), "from", "kind") }
func (k kindLogger) Warnf(format string, args ...interface{})  { k.Warn(fmt.Sprintf(format, args...)) }
func (k kindLogger) Error(message string)                      { k.l.Error(clean(message), "from", "kind") }
func (k kindLogger) Errorf(format string, args ...interface{}) { k.Error(fmt.Sprintf(format, args...)) }
func (k kindLogger) V(level kindlog.Level) kindlog.InfoLogger {
	if level <= 0 {
		return kindInfo{l: k.l, level: slog.LevelInfo}
	}
	return kindInfo{l: k.l, level: slog.LevelDebug}
}

type kindInfo struct {
	l     *slog.Logger
	level slog.Level
}

func (k kindInfo) Info(message string) {
	if m := clean(message); m != "" {
		k.l.Log(context.Background(), k.level, m, "from", "kind")
	}
}
func (k kindInfo) Infof(format string, args ...interface{}) { k.Info(fmt.Sprintf(format, args...)) }
func (k kindInfo) Enabled() bool                            { return k.l.Enabled(context.Background(), k.level) }

// clean trims kind's status decoration (bullets, spinner padding, trailing "...").
func clean(m string) string {
	m = strings.TrimSpace(m)
	m = strings.TrimPrefix(m, "• ")
	m = strings.TrimSuffix(m, "...")
	return strings.TrimSpace(m)
}
