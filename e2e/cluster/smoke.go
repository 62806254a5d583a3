package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/stampede-e2e/stampede/e2e/ready"
)

// SmokeParams configures Smoke. The zero value is usable in kind and reuse modes.
type SmokeParams struct {
	// Image is the whoami image to deploy. Empty means build it (BuildWhoamiImage) and load it;
	// existing mode needs an image the cluster can pull.
	Image string
	// Requests is how many requests the host and each client pod make; zero means 30.
	Requests int
	// Timeout bounds the whole check; zero means 5 minutes.
	Timeout time.Duration
}

// Tally counts which pods answered a series of requests; whoami's client prints one as JSON.
type Tally struct {
	// URL is what was requested.
	URL string `json:"url"`
	// Requests is how many requests were made.
	Requests int `json:"requests"`
	// Answers counts answers per pod name.
	Answers map[string]int `json:"answers"`
	// Errors lists the failed requests.
	Errors []string `json:"errors,omitempty"`
}

// SmokeReport is what Smoke saw.
type SmokeReport struct {
	// SystemPods is the number of kube-system pods, all Ready.
	SystemPods int
	// Pods maps each whoami pod to its node.
	Pods map[string]string
	// Host is the tally of requests from the host through the mapped NodePort.
	Host Tally
	// Clients maps each worker to the tally of a client pod pinned to it, through the
	// Service's DNS name.
	Clients map[string]Tally
	// Steps records how long each step took, in order.
	Steps []Step
}

// Step is one timed step of Smoke.
type Step struct {
	// Name says what the step did.
	Name string
	// Took is its duration.
	Took time.Duration
}

// String renders the report in a few lines: pods per node, answers per pod.
func (r *SmokeReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kube-system: %d pods Ready\n", r.SystemPods)
	fmt.Fprintf(&b, "whoami pods:")
	for _, p := range sortedKeys(r.Pods) {
		fmt.Fprintf(&b, " %s@%s", p, r.Pods[p])
	}
	fmt.Fprintf(&b, "\nhost %s: %s\n", r.Host.URL, r.formatTally(r.Host))
	for _, n := range sortedKeys(r.Clients) {
		fmt.Fprintf(&b, "client on %s -> %s: %s\n", n, r.Clients[n].URL, r.formatTally(r.Clients[n]))
	}
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "%s: %s\n", s.Name, s.Took.Round(100*time.Millisecond))
	}
	return b.String()
}

func (r *SmokeReport) formatTally(t Tally) string {
	parts := make([]string, 0, len(t.Answers))
	for _, p := range sortedKeys(t.Answers) {
		parts = append(parts, fmt.Sprintf("%s(%s)=%d", p, r.Pods[p], t.Answers[p]))
	}
	s := fmt.Sprintf("%d requests, %d pods answered: %s", t.Requests, len(t.Answers), strings.Join(parts, " "))
	if len(t.Errors) > 0 {
		s += fmt.Sprintf(", %d errors", len(t.Errors))
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

const (
	smokeApp      = "whoami"
	smokeReplicas = 3
	smokePort     = 8080
)

// Smoke checks the cluster end to end: every kube-system pod Ready; a locally built FROM scratch
// image loaded and run as 3 replicas behind a NodePort Service on ServiceNodePort; answers from
// more than one pod to the host through the mapped host port; and, from a client pod pinned to
// each worker, answers through the Service's DNS name that include pods on other nodes (pod
// networking across nodes, CoreDNS, kube-proxy). Its namespace is deleted before it returns.
// The report is returned with what was seen so far even on failure.
func Smoke(ctx context.Context, c *Cluster, p SmokeParams) (*SmokeReport, error) {
	if p.Requests == 0 {
		p.Requests = 30
	}
	if p.Timeout == 0 {
		p.Timeout = 5 * time.Minute
	}
	if p.Requests < 2 {
		return nil, fmt.Errorf("smoke: Requests %d cannot show more than one pod answering", p.Requests)
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	s := &smoke{c: c, p: p, r: &SmokeReport{Pods: map[string]string{}, Clients: map[string]Tally{}}}
	err := s.run(ctx)
	if err != nil {
		return s.r, fmt.Errorf("smoke: %w", err)
	}
	return s.r, nil
}

type smoke struct {
	c  *Cluster
	p  SmokeParams
	r  *SmokeReport
	ns string
}

func (s *smoke) step(name string, f func() error) error {
	start := time.Now()
	err := f()
	s.r.Steps = append(s.r.Steps, Step{Name: name, Took: time.Since(start)})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	s.c.log.Info("smoke step done", "step", name, "took", since(start))
	return nil
}

func (s *smoke) run(ctx context.Context) (err error) {
	if err := s.step("kube-system pods ready", func() error { return s.systemPodsReady(ctx) }); err != nil {
		return err
	}
	image := s.p.Image
	if image == "" {
		if ok, why := s.c.CanLoadImages(); !ok {
			return fmt.Errorf("no whoami image given and %s", why)
		}
		if err := s.step("build whoami image", func() (err error) { image, err = BuildWhoamiImage(ctx); return err }); err != nil {
			return err
		}
	}
	if ok, _ := s.c.CanLoadImages(); ok {
		if err := s.step("load whoami image", func() error { return s.c.LoadImages(ctx, image) }); err != nil {
			return err
		}
	}
	if err := s.nodePortFree(ctx); err != nil {
		return err
	}
	if err := s.createNamespace(ctx); err != nil {
		return err
	}
	// Registered right after the namespace exists; runs even when ctx has expired.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, s.step("delete namespace", func() error { return s.deleteNamespace(cctx) }))
	}()
	if err := s.step("deploy whoami", func() error { return s.deploy(ctx, image) }); err != nil {
		return err
	}
	if err := s.step("whoami pods ready", func() error { return s.podsReady(ctx) }); err != nil {
		return err
	}
	if s.c.Mode() != ModeExisting {
		if err := s.step("requests from host", func() error { return s.fromHost(ctx) }); err != nil {
			return err
		}
	} else {
		s.c.log.Info("skipping requests from the host: existing mode has no kind port mapping")
	}
	return s.step("requests from each worker", func() error { return s.fromWorkers(ctx, image) })
}

// poll calls f every interval until it returns true or ctx ends (ready.Wait); the last reason
// f gave goes into the error.
func poll(ctx context.Context, interval time.Duration, f func(ctx context.Context) (bool, string)) error {
	return ready.Wait(ctx, "smoke step", interval, 0, func(ctx context.Context) (bool, string, error) {
		ok, why := f(ctx)
		return ok, why, nil
	})
}

func (s *smoke) systemPodsReady(ctx context.Context) error {
	return poll(ctx, time.Second, func(ctx context.Context) (bool, string) {
		pods, err := s.c.client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var notReady []string
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodSucceeded && !ready.Pod(&p) {
				notReady = append(notReady, fmt.Sprintf("%s(%s)", p.Name, p.Status.Phase))
			}
		}
		s.r.SystemPods = len(pods.Items)
		if len(pods.Items) == 0 {
			return false, "no pods in kube-system"
		}
		return len(notReady) == 0, "not ready: " + strings.Join(notReady, ", ")
	})
}

func (s *smoke) nodePortFree(ctx context.Context) error {
	svcs, err := s.c.client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	for _, svc := range svcs.Items {
		for _, port := range svc.Spec.Ports {
			if port.NodePort == ServiceNodePort {
				return fmt.Errorf("nodePort %d is taken by service %s/%s: run smoke on a cluster without the token service deployed",
					ServiceNodePort, svc.Namespace, svc.Name)
			}
		}
	}
	return nil
}

func (s *smoke) createNamespace(ctx context.Context) error {
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   "stampede-smoke-" + hex.EncodeToString(suffix),
		Labels: map[string]string{"app.kubernetes.io/part-of": "stampede-smoke"},
	}}
	if _, err := s.c.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	s.ns = ns.Name
	s.c.log.Info("smoke namespace created", "namespace", s.ns)
	return nil
}

func (s *smoke) deleteNamespace(ctx context.Context) error {
	err := s.c.client.CoreV1().Namespaces().Delete(ctx, s.ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// Waiting keeps the nodePort and the pods from overlapping with whatever runs next.
	return poll(ctx, time.Second, func(ctx context.Context) (bool, string) {
		_, err := s.c.client.CoreV1().Namespaces().Get(ctx, s.ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		return false, fmt.Sprintf("namespace %s still there (%v)", s.ns, err)
	})
}

func (s *smoke) pullPolicy() corev1.PullPolicy {
	if s.c.Mode() == ModeExisting {
		return corev1.PullIfNotPresent
	}
	return corev1.PullNever
}

func (s *smoke) deploy(ctx context.Context, image string) error {
	labels := map[string]string{"app": smokeApp}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: smokeApp, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](smokeReplicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// Spread over the workers so that requests have to cross nodes.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname,
						WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: labels},
					}},
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name:            smokeApp,
						Image:           image,
						ImagePullPolicy: s.pullPolicy(),
						Args:            []string{"-listen", fmt.Sprintf(":%d", smokePort)},
						Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
						}}},
						Ports: []corev1.ContainerPort{{ContainerPort: smokePort}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(smokePort)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := s.c.client.AppsV1().Deployments(s.ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create deployment: %w", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: smokeApp, Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: labels,
			Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromInt32(smokePort), NodePort: ServiceNodePort,
			}},
		},
	}
	if _, err := s.c.client.CoreV1().Services(s.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	return nil
}

func (s *smoke) podsReady(ctx context.Context) error {
	return poll(ctx, time.Second, func(ctx context.Context) (bool, string) {
		pods, err := s.c.client.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + smokeApp})
		if err != nil {
			return false, err.Error()
		}
		n := 0
		var waiting []string
		for _, p := range pods.Items {
			if ready.Pod(&p) {
				n++
				s.r.Pods[p.Name] = p.Spec.NodeName
				continue
			}
			waiting = append(waiting, fmt.Sprintf("%s(%s%s)", p.Name, p.Status.Phase, containerWaiting(&p)))
		}
		return n == smokeReplicas, fmt.Sprintf("%d/%d ready; %s", n, smokeReplicas, strings.Join(waiting, ", "))
	})
}

func containerWaiting(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return " " + w.Reason + ": " + w.Message
		}
	}
	return ""
}
