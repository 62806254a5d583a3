package chaos

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stampede-e2e/stampede/e2e/ready"
	"github.com/stampede-e2e/stampede/manifests"
)

// DBCrash crashes PostgreSQL with no clean shutdown: inside the kind node that runs postgres-0,
// SIGKILL to the postmaster's host PID. The postmaster is PID 1 of the container's PID
// namespace (the image's entrypoint execs it), so the kernel kills every backend, the WAL writer
// and the checkpointer with it in the same instant: nothing is flushed, and WAL still in shared
// memory is gone. What was written to the kernel survives (the node does not crash), so a
// PostgreSQL that acknowledges a commit only once its WAL is written (synchronous_commit on, the
// default) loses nothing, and one that acknowledges earlier (synchronous_commit off) loses the
// commits of the last WAL-writer cycle. The kubelet restarts the container in the same pod, on
// the same volume; PostgreSQL runs crash recovery. Recover waits until the restarted container
// is ready and every replica of the token service is ready again.
//
// db-restart, by contrast, deletes the pod with a grace period: PostgreSQL gets SIGINT first,
// shuts down cleanly and flushes, so it cannot reveal an early acknowledgement.
type DBCrash struct{}

// Name implements Fault.
func (DBCrash) Name() string { return "db-crash" }

// Excuses implements Excuser: the database is down for every replica.
func (DBCrash) Excuses() []Excuse { return databaseDown(AnyPod, false) }

// Available implements Fault: it needs the node container that runs PostgreSQL.
func (DBCrash) Available(t *Target) error { return kindNodesOnly(t, "db-crash") }

// Inject implements Fault.
func (DBCrash) Inject(ctx context.Context, t *Target, _ Plan) (*Injection, error) {
	pods := t.Client.CoreV1().Pods(t.Namespace)
	old, err := pods.Get(ctx, manifests.PostgresPod, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("db-crash: read %s: %w", manifests.PostgresPod, err)
	}
	restarts := restartCount(old, manifests.PostgresName)
	node, err := t.container(old.Spec.NodeName)
	if err != nil {
		return nil, fmt.Errorf("db-crash: %w", err)
	}
	pid, err := t.containerPID(ctx, node, manifests.PostgresPod, manifests.PostgresName)
	if err != nil {
		return nil, fmt.Errorf("db-crash: %w", err)
	}
	t.logger().Info("injecting fault", "fault", "db-crash", "pod", manifests.PostgresPod, "node", node, "pid", pid, "how", "SIGKILL to the postmaster")
	if _, err := t.docker(ctx, "exec", node, "kill", "-KILL", pid); err != nil {
		return nil, fmt.Errorf("db-crash: kill -KILL %s in %s: %w", pid, node, err)
	}
	// docker exec returns once kill(1) has returned: the signal was delivered by then.
	landed := time.Now()
	return &Injection{
		Target: manifests.PostgresPod,
		Detail: fmt.Sprintf("SIGKILL to the postmaster (PID %s in node %s), restart %d", pid, node, restarts+1),
		At:     landed,
		Recover: func(ctx context.Context) error {
			// The same pod, its container restarted by the kubelet: ready again after a restart
			// the pod's status counts (not the still-ready status read before the kill landed).
			err := wait.PollUntilContextTimeout(ctx, time.Second, RecoverTimeout, true, func(ctx context.Context) (bool, error) {
				p, err := pods.Get(ctx, manifests.PostgresPod, metav1.GetOptions{})
				if err != nil {
					return false, nil //nolint:nilerr // transient: polled again
				}
				if p.UID != old.UID {
					return false, fmt.Errorf("%s was replaced (uid %s, was %s): the crash was to restart its container, not the pod", manifests.PostgresPod, p.UID, old.UID)
				}
				return restartCount(p, manifests.PostgresName) > restarts && ready.Pod(p), nil
			})
			if err != nil {
				return fmt.Errorf("db-crash: %s restarted and ready: %w", manifests.PostgresPod, err)
			}
			return waitDeployment(ctx, t, t.Workload, int32(t.Replicas))
		},
	}, nil
}

// restartCount is the restart count of the pod's container called name.
func restartCount(p *corev1.Pod, name string) int32 {
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == name {
			return s.RestartCount
		}
	}
	return 0
}
