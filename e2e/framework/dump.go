package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/stampede-e2e/stampede/e2e/report"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DumpNamespace writes the namespace's events and every container's logs (current and previous)
// into dir: what a failed spec leaves behind for its reader.
func DumpNamespace(ctx context.Context, cs kubernetes.Interface, namespace, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var errs []error
	events, err := cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("list events: %w", err))
	} else {
		sort.Slice(events.Items, func(i, j int) bool {
			return events.Items[i].LastTimestamp.Before(&events.Items[j].LastTimestamp)
		})
		var b strings.Builder
		for _, e := range events.Items {
			fmt.Fprintf(&b, "%s %s %s/%s %s: %s\n", e.LastTimestamp.UTC().Format("15:04:05"), e.Type,
				e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
		errs = append(errs, report.WriteTextFile(dir, report.KubeEventsFile, b.String()))
	}
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list pods: %w", err))...)
	}
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			for _, previous := range []bool{false, true} {
				raw, err := cs.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, Previous: previous}).DoRaw(ctx)
				if err != nil {
					continue // no previous container, or the pod is gone
				}
				name := fmt.Sprintf("%s.%s.log", p.Name, c.Name)
				if previous {
					name = fmt.Sprintf("%s.%s.previous.log", p.Name, c.Name)
				}
				errs = append(errs, report.WriteTextFile(filepath.Join(dir, report.PodLogsDir), name, string(raw)))
			}
		}
	}
	return errors.Join(errs...)
}
