package attackjob

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// expectRestricted runs pod through Kubernetes' own Pod Security evaluator at the restricted
// level, the one the suite's namespaces enforce.
func expectRestricted(t *testing.T, pod corev1.PodTemplateSpec) {
	t.Helper()
	eval, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range eval.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec) {
		if !r.Allowed {
			t.Errorf("restricted: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
		}
	}
}

func params() Params {
	return Params{
		Name:      "attacker-1",
		Namespace: "stampede-atomic-abc123",
		Image:     "stampede/attacker:0123456789ab",
		Plan: attack.Plan{
			Request:   request.Template{Method: "POST", Path: "/create", Auth: request.Auth{Header: traffic.AuthorizationHeader, Bearer: true}, Body: map[string]string{"key": "{{key}}"}},
			URL:       "http://app.stampede-atomic-abc123.svc:8080",
			Customers: traffic.Customers(42, 40, 4),
			Burst:     6,
			Gap:       100 * time.Millisecond,
			Retry:     traffic.RetryParams{MaxAttempts: 5, MaxWait: 2 * time.Second},
			Start:     time.Unix(1_800_000_000, 0),
			Shard:     traffic.Shard{Count: 3},
		},
		Deadline: 90*time.Second + time.Millisecond,
		Labels:   map[string]string{"app.kubernetes.io/part-of": "stampede"},
	}
}

// TestRenderRestricted runs the rendered pod through Kubernetes' own Pod Security evaluator at
// the restricted level: the Job must run in a namespace that enforces it.
func TestRenderRestricted(t *testing.T) {
	job, err := Render(params())
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template
	expectRestricted(t, pod)
	spec := pod.Spec
	c := spec.Containers[0]
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pods must not get a service account token")
	}
	if c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the root filesystem must be read-only")
	}
	if *spec.SecurityContext.RunAsUser != User || *spec.SecurityContext.RunAsGroup != User {
		t.Errorf("uid/gid %d/%d, want the image's %d", *spec.SecurityContext.RunAsUser, *spec.SecurityContext.RunAsGroup, User)
	}
}

// TestRenderJob checks the Job's shape: N indexed pods that never retry, spread over nodes by
// preference, each reading the plan back with its completion index as its shard.
func TestRenderJob(t *testing.T) {
	p := params()
	job, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	s := job.Spec
	if *s.CompletionMode != batchv1.IndexedCompletion || *s.Completions != 3 || *s.Parallelism != 3 || *s.BackoffLimit != 0 {
		t.Errorf("mode %s, completions %d, parallelism %d, backoff %d; want Indexed, 3, 3, 0",
			*s.CompletionMode, *s.Completions, *s.Parallelism, *s.BackoffLimit)
	}
	if *s.ActiveDeadlineSeconds != 91 {
		t.Errorf("deadline %ds, want 91 (rounded up)", *s.ActiveDeadlineSeconds)
	}
	spec := s.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restart policy %s: a restarted pod would send its share again", spec.RestartPolicy)
	}
	aff := spec.Affinity.PodAntiAffinity
	if len(aff.RequiredDuringSchedulingIgnoredDuringExecution) != 0 || len(aff.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Fatalf("anti-affinity %+v: want one preference and no requirement (3 pods on 2 workers must schedule)", aff)
	}
	term := aff.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	if term.TopologyKey != corev1.LabelHostname || term.LabelSelector.MatchLabels[JobLabel] != p.Name ||
		s.Template.Labels[JobLabel] != p.Name || s.Template.Labels["app.kubernetes.io/part-of"] != "stampede" {
		t.Errorf("anti-affinity term %+v does not select this job's pods (labels %v)", term, s.Template.Labels)
	}
	c := spec.Containers[0]
	if c.Name != Container || c.Image != p.Image || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("container %s image %s pull %s", c.Name, c.Image, c.ImagePullPolicy)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Error("a CPU limit would throttle the bursts apart")
	}
	if !slices.Contains(c.Env, corev1.EnvVar{Name: attack.ClockAddrEnv, Value: ":" + strconv.Itoa(attack.RoundsPort)}) {
		t.Errorf("env %v: the pods must answer clock readings on %d, or their times stay on their nodes' clocks", c.Env, attack.RoundsPort)
	}
	for i := range 3 {
		got, err := attack.ParseArgs(c.Args, func(k string) string {
			if k == attack.IndexEnv {
				return strconv.Itoa(i)
			}
			return ""
		}, io.Discard)
		if err != nil {
			t.Fatalf("pod %d cannot read its plan from %q: %v", i, c.Args, err)
		}
		if got.Shard.Index != i || got.Shard.Count != 3 || !got.Start.Equal(p.Plan.Start) || len(got.Customers) != 40 || got.URL != p.Plan.URL {
			t.Errorf("pod %d reads plan %+v", i, got)
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	for name, mutate := range map[string]func(*Params){
		"bad name":       func(p *Params) { p.Name = "Attacker_1" },
		"no namespace":   func(p *Params) { p.Namespace = "" },
		"untagged image": func(p *Params) { p.Image = "registry:5000/attacker" },
		"latest":         func(p *Params) { p.Image = "attacker:latest" },
		"bad plan":       func(p *Params) { p.Plan.Shard = traffic.Shard{} },
	} {
		p := params()
		mutate(&p)
		if _, err := Render(p); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
	p := params()
	p.Image = "registry:5000/stampede/attacker@sha256:abc"
	if _, err := Render(p); err != nil {
		t.Errorf("a digest reference: %v", err)
	}
}

// TestRunReadsEveryPod drives Run against a fake API: the Job completes, and every pod's log is
// read and parsed (the fake's logs are not an attacker's output, which must be said, per pod).
func TestRunReadsEveryPod(t *testing.T) {
	p := params()
	cs := fake.NewClientset()
	cs.PrependReactor("get", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}, nil
	})
	for i := range 3 {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name + "-" + strconv.Itoa(i), Namespace: p.Namespace,
				Labels: map[string]string{JobLabel: p.Name}, Annotations: map[string]string{IndexAnnotation: strconv.Itoa(2 - i)}},
			Spec: corev1.PodSpec{NodeName: "worker"},
			Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: Container,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{StartedAt: metav1.Now()}}}}},
		}
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	PollEvery = time.Millisecond
	res, err := Run(context.Background(), cs, p, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pods) != 3 || res.Pods[0].Index != 0 || res.Pods[2].Index != 2 || string(res.Pods[0].Log) != "fake logs" {
		t.Errorf("pods %+v", res.Pods)
	}
	if _, err := res.Outputs(); err == nil || !strings.Contains(err.Error(), "trailer") {
		t.Errorf("outputs of logs without a trailer: %v", err)
	}
	if _, err := cs.BatchV1().Jobs(p.Namespace).List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := false
	for _, a := range cs.Actions() {
		deleted = deleted || (a.GetVerb() == "delete" && a.GetResource().Resource == "jobs")
	}
	if !deleted {
		t.Error("the job was not deleted")
	}
}

func TestRunFailedJob(t *testing.T) {
	p := params()
	cs := fake.NewClientset()
	cs.PrependReactor("get", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}}}, nil
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "attacker-1-0", Namespace: p.Namespace, Labels: map[string]string{JobLabel: p.Name},
			Annotations: map[string]string{IndexAnnotation: "0"}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: Container,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: "not present"}}}}},
	}
	if _, err := cs.CoreV1().Pods(p.Namespace).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	PollEvery = time.Millisecond
	_, err := Run(context.Background(), cs, p, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "failed") || !strings.Contains(err.Error(), "ErrImageNeverPull") {
		t.Errorf("a failed job: %v", err)
	}
}

// TestRenderMountsKeys checks that a plan with API keys reaches the pods through the Secret
// alone: mounted read-only, readable by the attacker's group and not by others, named by the
// arguments, the pods still restricted, and no key anywhere in the Job.
func TestRenderMountsKeys(t *testing.T) {
	keys := map[string]string{"m-0": "sk_live_zero", "m-1": "sk_live_one", "m-2": "sk_live_two", "m-3": "sk_live_three"}
	p := params()
	p.KeysSecret = "attacker-keys"
	p.Plan.Keys = keys // the suite may hold them; the Job must not carry them
	p.Plan.Foreign = traffic.ForeignKeys{Customers: 0.25, Every: 2}
	job, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(string(raw), k) {
			t.Errorf("the rendered job holds a key: %s", raw)
		}
	}
	pod := job.Spec.Template
	expectRestricted(t, pod)
	spec := pod.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pods must not get a service account token")
	}
	if len(spec.Volumes) != 1 || spec.Volumes[0].Secret == nil || spec.Volumes[0].Secret.SecretName != "attacker-keys" {
		t.Fatalf("volumes %+v: want the keys secret", spec.Volumes)
	}
	sv := spec.Volumes[0].Secret
	if len(sv.Items) != 1 || sv.Items[0].Key != KeysSecretKey || *sv.DefaultMode&0o007 != 0 ||
		spec.SecurityContext.FSGroup == nil || *spec.SecurityContext.FSGroup != User {
		t.Errorf("secret volume %+v, fsGroup %v: want %s alone, for the attacker's group and not others", sv, spec.SecurityContext.FSGroup, KeysSecretKey)
	}
	c := spec.Containers[0]
	if len(c.VolumeMounts) != 1 || !c.VolumeMounts[0].ReadOnly || c.VolumeMounts[0].MountPath != KeysDir {
		t.Errorf("mounts %+v: want %s read-only", c.VolumeMounts, KeysDir)
	}
	// A pod reads the plan, keys from the mounted file (here a copy of what the Secret holds).
	file, err := attack.FormatKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), KeysSecretKey)
	if err := os.WriteFile(local, file, 0o400); err != nil {
		t.Fatal(err)
	}
	args := slices.Clone(c.Args)
	i := slices.Index(args, "-api-keys="+KeysDir+"/"+KeysSecretKey)
	if i < 0 {
		t.Fatalf("the arguments %q do not name the mounted keys file", args)
	}
	args[i] = "-api-keys=" + local
	got, err := attack.ParseArgs(append(args, "-index=1"), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Keys, keys) || got.Foreign != p.Plan.Foreign {
		t.Errorf("a pod reads keys %v (want the plan's), foreign %+v", got.Keys, got.Foreign)
	}

	secret, err := KeysSecret("attacker-keys", p.Namespace, keys, p.Labels)
	if err != nil {
		t.Fatal(err)
	}
	back, err := attack.ParseKeys(bytes.NewReader(secret.Data[KeysSecretKey]))
	if err != nil || !reflect.DeepEqual(back, keys) || secret.Namespace != p.Namespace {
		t.Errorf("secret %s/%s holds keys %v, err %v", secret.Namespace, secret.Name, back, err)
	}
}

func TestRenderRefusesKeysWithoutSecret(t *testing.T) {
	all := map[string]string{"m-0": "k0", "m-1": "k1", "m-2": "k2", "m-3": "k3"}
	for _, tc := range []struct {
		name   string
		mutate func(*Params)
		want   string
	}{
		{"keys", func(p *Params) { p.Plan.Keys = all }, "no KeysSecret"},
		{"a keys file", func(p *Params) { p.Plan.KeysFile = "/tmp/keys" }, "no KeysSecret"},
		{"foreign keys", func(p *Params) { p.Plan.Foreign.Customers = 1; p.Plan.KeysFile = "/tmp/keys" }, "no KeysSecret"},
		{"a bad secret", func(p *Params) { p.KeysSecret = "Keys_Secret" }, "keys secret"},
		{"a foreign fraction above 1", func(p *Params) { p.KeysSecret = "keys"; p.Plan.Foreign.Customers = 1.5 }, "want 0 to 1"},
		{"keys missing a tenant", func(p *Params) {
			p.KeysSecret, p.Plan.Keys = "keys", map[string]string{"m-0": "k0", "m-1": "k1", "m-2": "k2"}
		}, "[m-3]"},
	} {
		p := params()
		tc.mutate(&p)
		if _, err := Render(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	p := params()
	p.KeysSecret, p.Plan.Foreign = "keys", traffic.ForeignKeys{Customers: 1}
	if _, err := Render(p); err != nil {
		t.Errorf("foreign keys from the secret, the suite holding no key: %v", err)
	}
	if _, err := KeysSecret("keys", "ns", map[string]string{"m-0": "with blank"}, nil); err == nil {
		t.Error("a key the file cannot carry was rendered")
	}
}
