package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stampede-e2e/stampede/e2e/cluster"
	"github.com/stampede-e2e/stampede/e2e/ready"
	"github.com/stampede-e2e/stampede/manifests"
)

// kindClusterLabel is the label kind puts on its node containers.
// NodeLoss pauses one kind worker node container (the plan picks which) for the plan's hold:
// its kubelet, its pods and their processes freeze, while the Service still routes to them
// until the node is marked NotReady. Pause rather than stop: a stopped kind node may come back
// with another IP address, which breaks the cluster rather than testing the service. Recover
// resumes it and waits until the node is Ready and every replica and the database are ready.
type NodeLoss struct{}

// ChangesPods implements PodChanger: a paused node's pods may be restarted or replaced.
func (NodeLoss) ChangesPods() bool { return true }

// Name implements Fault.
func (NodeLoss) Name() string { return "node-loss" }

// Available implements Fault.
func (NodeLoss) Available(t *Target) error { return kindNodesOnly(t, "node-loss") }

// Excuses implements Excuser: connections to the replicas on the paused node hang until the
// client's timeout; when the node runs PostgreSQL or toxiproxy, the database is out of reach of
// every replica too.
func (NodeLoss) Excuses() []Excuse {
	return append([]Excuse{connectionErrors("the node's processes are frozen: connections to its replicas hang")},
		databaseDown(AnyPod, true)...)
}

// Inject implements Fault.
func (NodeLoss) Inject(ctx context.Context, t *Target, p Plan) (*Injection, error) {
	workers := t.workers()
	if len(workers) < 2 {
		return nil, fmt.Errorf("node-loss: %d worker nodes; losing one of fewer than two loses the service", len(workers))
	}
	w := workers[p.Pick(len(workers))]
	node, container := w.Name, w.Container
	pods, database, err := podsOn(ctx, t, node)
	if err != nil {
		return nil, fmt.Errorf("node-loss: %w", err)
	}
	t.logger().Info("injecting fault", "fault", "node-loss", "node", node, "container", container, "how", "docker pause")
	if _, err := t.docker(ctx, "pause", container); err != nil {
		return nil, fmt.Errorf("node-loss: %w", err)
	}
	return &Injection{
		Held:     true,
		Target:   node,
		Detail:   fmt.Sprintf("docker pause; replicas there: %s; database there: %t", strings.Join(pods, ", "), database),
		Pods:     pods,
		Database: database,
		Recover: func(ctx context.Context) error {
			if _, err := t.docker(ctx, "unpause", container); err != nil {
				return fmt.Errorf("node-loss: %w", err)
			}
			if err := waitNodeReady(ctx, t, node); err != nil {
				return err
			}
			if err := waitPodReady(ctx, t, manifests.PostgresPod); err != nil {
				return err
			}
			return waitDeployment(ctx, t, t.Workload, int32(t.Replicas))
		},
	}, nil
}

// Partition cuts one token-service replica (the plan picks which), and only that one, off from
// the database: inside the kind node that runs it, blackhole routes in the pod's own network
// namespace drop its packets to the database's Service address and pod addresses (and to
// toxiproxy's, when it is in the path). The other replicas keep their path. Recover deletes the
// routes and waits until every replica is ready again.
type Partition struct{}

// Name implements Fault.
func (Partition) Name() string { return "partition" }

// Excuses implements Excuser: the cut replica's statements fail, and requests waiting on them
// may fill its in-flight cap; the other replicas keep their path.
func (Partition) Excuses() []Excuse { return databaseDown(TargetPods, false) }

// Available implements Fault.
func (Partition) Available(t *Target) error {
	if err := kindNodesOnly(t, "partition"); err != nil {
		return err
	}
	if t.Replicas < 2 {
		return unavailable("partition cuts one replica of several; there are %d", t.Replicas)
	}
	return nil
}

// Inject implements Fault.
func (Partition) Inject(ctx context.Context, t *Target, p Plan) (*Injection, error) {
	pods, err := readyPods(ctx, t, t.Pods)
	if err != nil {
		return nil, err
	}
	if len(pods) < 2 {
		return nil, fmt.Errorf("partition: %d ready replicas; cutting one of fewer than two cuts them all", len(pods))
	}
	pod := pods[p.Pick(len(pods))]
	node, err := t.container(pod.Spec.NodeName)
	if err != nil {
		return nil, fmt.Errorf("partition: %w", err)
	}
	dests, err := databaseAddresses(ctx, t)
	if err != nil {
		return nil, err
	}
	pid, err := t.containerPID(ctx, node, pod.Name, t.Container)
	if err != nil {
		return nil, fmt.Errorf("partition: %w", err)
	}
	route := func(ctx context.Context, verb, ip string) error {
		_, err := t.docker(ctx, "exec", node, "nsenter", "-t", pid, "-n", "ip", "route", verb, "blackhole", ip+"/32")
		return err
	}
	t.logger().Info("injecting fault", "fault", "partition", "pod", pod.Name, "node", node, "blackholed", dests)
	var added []string
	remove := func(ctx context.Context) error {
		var errs []error
		for _, ip := range added {
			if err := route(ctx, "del", ip); err != nil {
				errs = append(errs, fmt.Errorf("partition: %w", err))
			}
		}
		return errors.Join(errs...)
	}
	for _, ip := range dests {
		if err := route(ctx, "add", ip); err != nil {
			return nil, errors.Join(fmt.Errorf("partition: %w", err), remove(context.WithoutCancel(ctx)))
		}
		added = append(added, ip)
	}
	return &Injection{
		Held:   true,
		Target: pod.Name,
		Pods:   []string{pod.Name},
		Detail: fmt.Sprintf("blackhole routes to %s in its network namespace, on %s", strings.Join(dests, ", "), node),
		Recover: func(ctx context.Context) error {
			if err := remove(ctx); err != nil {
				return err
			}
			return waitDeployment(ctx, t, t.Workload, int32(t.Replicas))
		},
	}, nil
}

// podsOn lists the token-service pods scheduled on node, sorted, and whether PostgreSQL's or
// toxiproxy's pod runs there too (then pausing the node takes the database path away from
// every replica).
func podsOn(ctx context.Context, t *Target, node string) (pods []string, database bool, err error) {
	list, err := t.Client.CoreV1().Pods(t.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, false, fmt.Errorf("list pods on %s: %w", node, err)
	}
	targetPods, err := labels.Parse(t.Pods)
	if err != nil {
		return nil, false, fmt.Errorf("the target's pods %q: %w", t.Pods, err)
	}
	for _, p := range list.Items {
		switch {
		case targetPods.Matches(labels.Set(p.Labels)):
			pods = append(pods, p.Name)
		case p.Labels[manifests.NameLabel] == manifests.PostgresName, p.Labels[manifests.NameLabel] == "toxiproxy":
			database = true
		}
	}
	slices.Sort(pods)
	return pods, database, nil
}

// databaseAddresses lists the addresses a replica reaches the database by: the ClusterIPs of
// the postgres and toxiproxy Services that exist and the IPs of their pods.
func databaseAddresses(ctx context.Context, t *Target) ([]string, error) {
	var ips []string
	for _, name := range []string{manifests.PostgresName, "toxiproxy"} {
		svc, err := t.Client.CoreV1().Services(t.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			continue // no toxiproxy in this deployment
		}
		if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			ips = append(ips, ip)
		}
		pods, err := t.Client.CoreV1().Pods(t.Namespace).List(ctx, metav1.ListOptions{LabelSelector: manifests.NameLabel + "=" + name})
		if err != nil {
			return nil, fmt.Errorf("list %s pods: %w", name, err)
		}
		for _, p := range pods.Items {
			if p.Status.PodIP != "" {
				ips = append(ips, p.Status.PodIP)
			}
		}
	}
	if len(ips) == 0 {
		return nil, errors.New("partition: no database address found")
	}
	slices.Sort(ips)
	return slices.Compact(ips), nil
}

// containerPID returns, inside a kind node, the host PID of the container named container of the
// pod, through crictl.
func (t *Target) containerPID(ctx context.Context, node, pod, container string) (string, error) {
	out, err := t.docker(ctx, "exec", node, "crictl", "pods", "-q", "--name", "^"+pod+"$", "--namespace", "^"+t.Namespace+"$", "--state", "ready")
	if err != nil {
		return "", err
	}
	sandbox := firstLine(out)
	if sandbox == "" {
		return "", fmt.Errorf("no ready sandbox of pod %s on %s", pod, node)
	}
	out, err = t.docker(ctx, "exec", node, "crictl", "ps", "-q", "--pod", sandbox, "--name", "^"+container+"$", "--state", "running")
	if err != nil {
		return "", err
	}
	id := firstLine(out)
	if id == "" {
		return "", fmt.Errorf("no running container %s in pod %s on %s", container, pod, node)
	}
	out, err = t.docker(ctx, "exec", node, "crictl", "inspect", "-o", "go-template", "--template", "{{.info.pid}}", id)
	if err != nil {
		return "", err
	}
	pid := firstLine(out)
	if pid == "" || pid == "0" {
		return "", fmt.Errorf("container %s of pod %s has no PID", container, pod)
	}
	return pid, nil
}

// workers returns the cluster's worker nodes, sorted by name.
func (t *Target) workers() []cluster.Node {
	var ws []cluster.Node
	for _, n := range t.Nodes {
		if n.Role == "worker" && n.Container != "" {
			ws = append(ws, n)
		}
	}
	slices.SortFunc(ws, func(a, b cluster.Node) int { return strings.Compare(a.Name, b.Name) })
	return ws
}

// container returns the docker container of the cluster's node called name: a fault enters or
// stops only the containers of the cluster it was given, never one found by name elsewhere.
func (t *Target) container(name string) (string, error) {
	for _, n := range t.Nodes {
		if n.Name == name && n.Container != "" {
			return n.Container, nil
		}
	}
	return "", fmt.Errorf("node %s is not one of kind cluster %q's nodes: refusing to touch it", name, t.Cluster)
}

func (t *Target) docker(ctx context.Context, args ...string) ([]byte, error) {
	if t.Docker != nil {
		return t.Docker(ctx, args...)
	}
	return cluster.Docker(ctx, args...)
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(line)
}

// waitNodeReady waits until node reports Ready.
func waitNodeReady(ctx context.Context, t *Target, node string) error {
	return ready.Wait(ctx, "node "+node+" Ready", time.Second, RecoverTimeout, ready.NodeReady(t.Client, node))
}

// waitPodReady waits until the pod called name is ready.
func waitPodReady(ctx context.Context, t *Target, name string) error {
	return ready.Wait(ctx, "pod "+name+" ready", time.Second, RecoverTimeout, ready.PodReady(t.Client, t.Namespace, name))
}
