package attackjob

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/stampede-e2e/stampede/e2e/attack"
)

func roundParams() RoundServerParams {
	return RoundServerParams{Name: "attacker-rounds", Namespace: "stampede-atomic-abc123", Image: "stampede/attacker:0123456789ab",
		Replicas: 3, Labels: map[string]string{"app.kubernetes.io/part-of": "stampede"}, KeysSecret: "attacker-rounds-keys"}
}

// TestRenderRoundServers: N restricted pods (Kubernetes' own evaluator) running the serve
// command with the keys file of the mounted Secret, ready when they answer the health path,
// spread over nodes by the Deployment's own label, and labelled as attackers, whom the
// network policy lets reach the token service.
func TestRenderRoundServers(t *testing.T) {
	d, err := RenderRoundServers(roundParams())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := d.Spec.Template
	expectRestricted(t, tmpl)
	c := tmpl.Spec.Containers[0]
	if want := []string{"serve", "-listen=:8081", "-api-keys=" + KeysDir + "/" + KeysSecretKey}; !slices.Equal(c.Args, want) {
		t.Errorf("args %q, want %q", c.Args, want)
	}
	if *d.Spec.Replicas != 3 || d.Spec.Selector.MatchLabels[RoundsLabel] != "attacker-rounds" ||
		tmpl.Labels[RoundsLabel] != "attacker-rounds" || tmpl.Labels["app.kubernetes.io/name"] != AppName ||
		tmpl.Labels["app.kubernetes.io/part-of"] != "stampede" {
		t.Errorf("replicas %d, selector %v, pod labels %v", *d.Spec.Replicas, d.Spec.Selector.MatchLabels, tmpl.Labels)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != attack.HealthPath || p.HTTPGet.Port.StrVal != "rounds" ||
		len(c.Ports) != 1 || c.Ports[0].ContainerPort != attack.RoundsPort {
		t.Errorf("probe %+v, ports %+v", c.ReadinessProbe, c.Ports)
	}
	terms := tmpl.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	if len(terms) != 1 || terms[0].PodAffinityTerm.LabelSelector.MatchLabels[RoundsLabel] != "attacker-rounds" {
		t.Errorf("anti-affinity %+v", terms)
	}
	if v := tmpl.Spec.Volumes; len(v) != 1 || v[0].Secret == nil || v[0].Secret.SecretName != "attacker-rounds-keys" || *v[0].Secret.DefaultMode != 0o440 {
		t.Errorf("volumes %+v", v)
	}
	p := roundParams()
	p.KeysSecret = ""
	if d, err := RenderRoundServers(p); err != nil || slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Args, func(a string) bool { return strings.HasPrefix(a, "-api-keys") }) {
		t.Errorf("without a keys Secret: %v, %v", err, d)
	}
}

func TestRenderRoundServersRefuses(t *testing.T) {
	for name, mutate := range map[string]func(*RoundServerParams){
		"no replicas":  func(p *RoundServerParams) { p.Replicas = 0 },
		"latest image": func(p *RoundServerParams) { p.Image = "stampede/attacker:latest" },
		"bad name":     func(p *RoundServerParams) { p.Name = "Rounds_1" },
	} {
		p := roundParams()
		mutate(&p)
		if _, err := RenderRoundServers(p); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}

// TestStartRoundServers: it creates the Deployment and returns the names of ready servers,
// sorted (shard i is the i-th), leaving out pods not ready or going; bounded by ctx, it says
// what each pod is waiting for.
func TestStartRoundServers(t *testing.T) {
	p := roundParams()
	p.Replicas = 2
	pod := func(name string, ready bool, deleting bool) *corev1.Pod {
		cond := corev1.ConditionFalse
		if ready {
			cond = corev1.ConditionTrue
		}
		o := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Labels: map[string]string{RoundsLabel: p.Name}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: Container, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}},
		}
		if deleting {
			o.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		}
		return o
	}
	PollEvery = time.Millisecond
	cs := fake.NewClientset(pod("rounds-c", true, false), pod("rounds-a", false, false), pod("rounds-b", true, true))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := StartRoundServers(ctx, cs, p)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 ready") || !strings.Contains(err.Error(), "ImagePullBackOff") {
		t.Errorf("with one ready server: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the Deployment: %v", err)
	}
	cs = fake.NewClientset(pod("rounds-c", true, false), pod("rounds-a", true, false), pod("rounds-b", true, true))
	pods, err := StartRoundServers(context.Background(), cs, p)
	if err != nil || !slices.Equal(pods, []string{"rounds-a", "rounds-c"}) {
		t.Errorf("got %v, %v; want rounds-a and rounds-c", pods, err)
	}
}
