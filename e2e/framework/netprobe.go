package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stampede-e2e/stampede/e2e/attack/attackjob"
)

// ProbeResult is what a probe pod found (stampede-attacker probe prints it).
type ProbeResult struct {
	Addr      string `json:"addr"`
	Connected bool   `json:"connected"`
	Error     string `json:"error,omitempty"`
	TookMS    int64  `json:"took_ms"`
	// Pod and Node say where the probe ran.
	Pod, Node string `json:"-"`
}

// ProbeName is the NameLabel of the suite's probe pods, which no policy of the manifests allows.
const ProbeName = "stampede-netprobe"

// ProbeSpec is one probe: its pod's name and extra labels, the address it dials (host:port,
// resolved in the namespace), how long it waits, and the node it runs on (empty: any).
type ProbeSpec struct {
	Name     string
	Labels   map[string]string
	Addr     string
	Timeout  time.Duration
	NodeName string
}

// Probe runs a pod in the deployment's namespace, labelled ProbeName plus labels, that opens one
// TCP connection to addr (host:port, resolved in the namespace) and reports whether it opened
// within timeout. The pod meets the restricted standard (the namespace enforces it) and runs the
// attacker image, which the suite builds and loads anyway. nodeName, when set, pins the pod to a
// node. The pod is deleted afterwards.
func (d *Deployment) Probe(ctx context.Context, name string, labels map[string]string, addr string, timeout time.Duration, nodeName string) ProbeResult {
	GinkgoHelper()
	return d.Probes(ctx, ProbeSpec{Name: name, Labels: labels, Addr: addr, Timeout: timeout, NodeName: nodeName})[0]
}

// Probes runs every probe at once, as Probe runs one, and returns their results in order: a
// denied connection takes its whole timeout, and independent probes need not wait for each other.
func (d *Deployment) Probes(ctx context.Context, specs ...ProbeSpec) []ProbeResult {
	GinkgoHelper()
	pods := d.Env.Client.CoreV1().Pods(d.Namespace)
	for _, s := range specs {
		pod := probePod(d.Namespace, s.Name, d.Env.Config.AttackerImage, s.Labels, s.Addr, s.Timeout, s.NodeName)
		_, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "create probe pod %s", s.Name)
		DeferCleanup(func(ctx SpecContext) {
			_ = pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
		})
	}
	results := make([]ProbeResult, len(specs))
	for i, s := range specs {
		results[i] = d.probeResult(ctx, s)
	}
	return results
}

// probeResult waits for the probe pod s.Name to end and reads what it printed.
func (d *Deployment) probeResult(ctx context.Context, s ProbeSpec) ProbeResult {
	GinkgoHelper()
	pods := d.Env.Client.CoreV1().Pods(d.Namespace)
	name := s.Name
	var done *corev1.Pod
	Eventually(ctx, func(g Gomega) {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(p.Status.Phase).To(BeElementOf(corev1.PodSucceeded, corev1.PodFailed), "probe pod %s", name)
		done = p
	}).WithTimeout(s.Timeout + 2*time.Minute).WithPolling(rolloutPoll).Should(Succeed())
	logs, err := pods.GetLogs(name, &corev1.PodLogOptions{Container: "probe"}).DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred(), "probe pod %s logs", name)
	Expect(done.Status.Phase).To(Equal(corev1.PodSucceeded), "probe pod %s: %s", name, logs)
	var r ProbeResult
	line := strings.TrimSpace(string(logs))
	Expect(json.Unmarshal([]byte(line[strings.LastIndex(line, "\n")+1:]), &r)).To(Succeed(), "probe pod %s printed %q", name, logs)
	r.Pod, r.Node = name, done.Spec.NodeName
	fmt.Fprintf(GinkgoWriter, "probe %s on %s -> %s: connected=%v %s (%d ms)\n", name, r.Node, r.Addr, r.Connected, r.Error, r.TookMS)
	return r
}

// probePod is the pod Probe runs: restricted, no service account token, the attacker image in
// its probe mode.
func probePod(namespace, name, image string, labels map[string]string, addr string, timeout time.Duration, nodeName string) *corev1.Pod {
	l := map[string]string{"app.kubernetes.io/name": ProbeName}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: l},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			NodeName:                      nodeName,
			SecurityContext:               attackjob.RestrictedPod(nil),
			Containers: []corev1.Container{{
				Name:            "probe",
				Image:           image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args:            []string{"probe", "-addr", addr, "-timeout", timeout.String()},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
				},
				SecurityContext: attackjob.RestrictedContainer(),
			}},
		},
	}
}
