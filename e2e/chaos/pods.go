package chaos

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stampede-e2e/stampede/e2e/ready"
	"github.com/stampede-e2e/stampede/manifests"
)

// RecoverTimeout bounds how long a fault's Recover waits for what it broke to come back.
const RecoverTimeout = 4 * time.Minute

// PodKill deletes one token-service pod, picked by the plan among the ready ones, with grace
// period 0: no drain, in-flight requests are cut. Recover waits until the Deployment has its
// replicas ready again.
type PodKill struct{}

// ChangesPods implements PodChanger.
func (PodKill) ChangesPods() bool { return true }

// Name implements Fault.
func (PodKill) Name() string { return "pod-kill" }

// Available implements Fault: it needs only the API.
func (PodKill) Available(*Target) error { return nil }

// Excuses implements Excuser: requests in flight on the killed pod may be cut.
func (PodKill) Excuses() []Excuse {
	return []Excuse{connectionErrors("no drain: the killed pod's connections may be cut")}
}

// Inject implements Fault.
func (PodKill) Inject(ctx context.Context, t *Target, p Plan) (*Injection, error) {
	pods, err := readyPods(ctx, t, t.Pods)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("pod-kill: no ready %s pod in %s", t.Workload, t.Namespace)
	}
	pod := pods[p.Pick(len(pods))]
	t.logger().Info("injecting fault", "fault", "pod-kill", "pod", pod.Name, "node", pod.Spec.NodeName)
	zero := int64(0)
	if err := t.Client.CoreV1().Pods(t.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		return nil, fmt.Errorf("pod-kill: delete %s: %w", pod.Name, err)
	}
	return &Injection{
		Target: pod.Name,
		Detail: "grace period 0, on " + pod.Spec.NodeName,
		Pods:   []string{pod.Name},
		Recover: func(ctx context.Context) error {
			return waitDeployment(ctx, t, t.Workload, int32(t.Replicas))
		},
	}, nil
}

// RollingRestart restarts the token service's Deployment the way `kubectl rollout restart`
// does (a new pod-template annotation): new pods come up while the old ones drain. Recover waits
// for the rollout to finish.
type RollingRestart struct{}

// ChangesPods implements PodChanger.
func (RollingRestart) ChangesPods() bool { return true }

// Name implements Fault.
func (RollingRestart) Name() string { return "rolling-restart" }

// Available implements Fault: it needs only the API.
func (RollingRestart) Available(*Target) error { return nil }

// Inject implements Fault.
func (RollingRestart) Inject(ctx context.Context, t *Target, _ Plan) (*Injection, error) {
	at := time.Now().UTC().Format(time.RFC3339)
	t.logger().Info("injecting fault", "fault", "rolling-restart", "deployment", t.Workload)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, at)
	if _, err := t.Client.AppsV1().Deployments(t.Namespace).Patch(ctx, t.Workload, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return nil, fmt.Errorf("rolling-restart: patch %s: %w", t.Workload, err)
	}
	return &Injection{
		Target: "deployment/" + t.Workload,
		Detail: "restartedAt " + at,
		Recover: func(ctx context.Context) error {
			return waitDeployment(ctx, t, t.Workload, int32(t.Replicas))
		},
	}, nil
}

// Scale scales the token service up by one or two replicas (the plan's variant), holds, and
// Recover scales it back down, which drains the surplus pods, and waits for the rollout.
type Scale struct{}

// ChangesPods implements PodChanger.
func (Scale) ChangesPods() bool { return true }

// Name implements Fault.
func (Scale) Name() string { return "scale" }

// Available implements Fault: it needs only the API.
func (Scale) Available(*Target) error { return nil }

// Inject implements Fault.
func (Scale) Inject(ctx context.Context, t *Target, p Plan) (*Injection, error) {
	up := int32(t.Replicas + 1 + p.Variant(2))
	t.logger().Info("injecting fault", "fault", "scale", "deployment", t.Workload, "from", t.Replicas, "to", up)
	if err := scaleTo(ctx, t, up); err != nil {
		return nil, err
	}
	return &Injection{
		Held:   true,
		Target: "deployment/" + t.Workload,
		Detail: fmt.Sprintf("%d -> %d -> %d replicas", t.Replicas, up, t.Replicas),
		Recover: func(ctx context.Context) error {
			// The new pods must have come up, or the fault scaled nothing.
			if err := waitDeployment(ctx, t, t.Workload, up); err != nil {
				return err
			}
			t.logger().Info("scaling back", "deployment", t.Workload, "to", t.Replicas)
			if err := scaleTo(ctx, t, int32(t.Replicas)); err != nil {
				return err
			}
			return waitDeployment(ctx, t, t.Workload, int32(t.Replicas))
		},
	}, nil
}

func scaleTo(ctx context.Context, t *Target, n int32) error {
	deps := t.Client.AppsV1().Deployments(t.Namespace)
	s, err := deps.GetScale(ctx, t.Workload, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("scale: read %s: %w", t.Workload, err)
	}
	s.Spec.Replicas = n
	if _, err := deps.UpdateScale(ctx, t.Workload, s, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("scale %s to %d: %w", t.Workload, n, err)
	}
	return nil
}

// DBRestart kills PostgreSQL's pod: deleted with a one-second grace period, so the postmaster
// gets SIGINT and then SIGKILL. Not zero: a forced deletion lets the StatefulSet start the
// replacement while the old postmaster may still hold the volume, and two postmasters on one
// data directory corrupt it. The pod comes back on its persistent volume (the same claim);
// Recover waits until it is ready and every replica of the service is ready again.
type DBRestart struct{}

// Name implements Fault.
func (DBRestart) Name() string { return "db-restart" }

// Excuses implements Excuser: the database is down for every replica.
func (DBRestart) Excuses() []Excuse { return databaseDown(AnyPod, false) }

// Available implements Fault: it needs the database on a persistent volume, which the new pod
// finds again; an emptyDir goes with the deleted pod.
func (DBRestart) Available(t *Target) error {
	if t.DatabaseOnEmptyDir {
		return fmt.Errorf("%w: db-restart deletes PostgreSQL's pod, and its data is on an emptyDir that goes with it: run with DB_STORAGE=pvc (-e2e.db-storage=pvc) to have it on a claim", ErrUnavailable)
	}
	return nil
}

// Inject implements Fault.
func (DBRestart) Inject(ctx context.Context, t *Target, _ Plan) (*Injection, error) {
	pods := t.Client.CoreV1().Pods(t.Namespace)
	old, err := pods.Get(ctx, manifests.PostgresPod, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("db-restart: read %s: %w", manifests.PostgresPod, err)
	}
	claim := ""
	for _, v := range old.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	t.logger().Info("injecting fault", "fault", "db-restart", "pod", manifests.PostgresPod, "claim", claim, "node", old.Spec.NodeName)
	one := int64(1)
	if err := pods.Delete(ctx, manifests.PostgresPod, metav1.DeleteOptions{GracePeriodSeconds: &one}); err != nil {
		return nil, fmt.Errorf("db-restart: delete %s: %w", manifests.PostgresPod, err)
	}
	return &Injection{
		Target: manifests.PostgresPod,
		Detail: "grace period 1s, claim " + claim,
		Recover: func(ctx context.Context) error {
			err := wait.PollUntilContextTimeout(ctx, time.Second, RecoverTimeout, true, func(ctx context.Context) (bool, error) {
				p, err := pods.Get(ctx, manifests.PostgresPod, metav1.GetOptions{})
				if err != nil {
					return false, nil // not re-created yet
				}
				if p.UID == old.UID {
					return false, nil
				}
				return ready.Pod(p), nil
			})
			if err != nil {
				return fmt.Errorf("db-restart: %s back and ready: %w", manifests.PostgresPod, err)
			}
			return waitDeployment(ctx, t, t.Workload, int32(t.Replicas))
		},
	}, nil
}

// readyPods lists the ready, not terminating pods of app name, sorted by name so that a Plan's
// pick is stable.
func readyPods(ctx context.Context, t *Target, selector string) ([]corev1.Pod, error) {
	list, err := t.Client.CoreV1().Pods(t.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list %s pods: %w", selector, err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if ready.Pod(&p) {
			pods = append(pods, p)
		}
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return pods, nil
}

// waitDeployment waits until the Deployment has rolled out want ready replicas and no old pod
// is left (ready.Rollout).
func waitDeployment(ctx context.Context, t *Target, name string, want int32) error {
	return ready.Wait(ctx, "rollout of "+name, time.Second, RecoverTimeout,
		ready.DeploymentRolledOut(t.Client, t.Namespace, name, manifests.Selector(name), want))
}
