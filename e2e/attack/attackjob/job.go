// Package attackjob runs an attack.Plan inside the cluster: a Kubernetes Job of N pods in
// Indexed completion mode, one shard each, spread over the nodes, that reach the target through
// its ClusterIP Service; it waits for the Job and reads every pod's output back from its log
// through the API. Its two attack.Senders send a spec's batches that way: JobSender a Job per
// batch, RoundSender through long-lived round servers for many short batches.
package attackjob

import (
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/stampede-e2e/stampede/e2e/attack"
)

// Names and labels of the Job's objects.
const (
	// Container is the attacker's container, whose log holds the pod's output.
	Container = "attacker"
	// AppName is the app.kubernetes.io/name of the Job and its pods.
	AppName = "stampede-attacker"
	// JobLabel carries the Job's name on its pods: the anti-affinity and the listing use it.
	JobLabel = "stampede.io/attack"
	// IndexAnnotation is where the Job controller writes each pod's completion index.
	IndexAnnotation = "batch.kubernetes.io/job-completion-index"
	// User is the attacker's uid and gid, the image's USER.
	User = 65532
	// KeysSecretKey is the key, in the Secret that Params.KeysSecret names, whose value is the
	// API keys file (attack.FormatKeys).
	KeysSecretKey = "api-keys"
	// KeysDir is where the pods mount that Secret, read-only; the attacker reads
	// KeysDir/KeysSecretKey.
	KeysDir    = "/etc/stampede-attacker"
	keysVolume = "api-keys"
)

// Params say what Render renders.
type Params struct {
	// Name is the Job's, a DNS label: one Job per traffic run of a spec.
	Name      string
	Namespace string
	// Image is the attacker image (scripts/build-image.sh attacker, or a registry's).
	Image string
	// PullPolicy is IfNotPresent unless set: a loaded image must not be pulled.
	PullPolicy corev1.PullPolicy
	// Plan is every pod's plan; Plan.Shard.Count is the number of pods, and each pod's index
	// is its completion index.
	Plan attack.Plan
	// Deadline bounds the Job's run (activeDeadlineSeconds); none if zero.
	Deadline time.Duration
	// Labels go on the Job and its pods, besides the Job's own.
	Labels map[string]string
	// KeysSecret names the Secret, in Namespace, whose KeysSecretKey holds the tenants' API
	// keys (KeysSecret renders one): the pods mount it read-only and every request carries its
	// tenant's key. Empty: no request carries a key. Plan.Keys is never rendered.
	KeysSecret string
}

func (p Params) validate() error {
	var errs []error
	for _, msg := range validation.IsDNS1123Label(p.Name) {
		errs = append(errs, fmt.Errorf("job name %q: %s", p.Name, msg))
	}
	for _, msg := range validation.IsDNS1123Label(p.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: %s", p.Namespace, msg))
	}
	if err := validImage(p.Image); err != nil {
		errs = append(errs, err)
	}
	// The pods' plan, with the keys the suite holds, if it gave them: checked here, not in pods.
	plan := p.podPlan()
	plan.Keys = p.Plan.Keys
	if err := plan.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.KeysSecret != "" {
		for _, msg := range validation.IsDNS1123Subdomain(p.KeysSecret) {
			errs = append(errs, fmt.Errorf("keys secret %q: %s", p.KeysSecret, msg))
		}
	}
	// The keys reach the pods only through the Secret; without one the plan would run keyless.
	if p.KeysSecret == "" && (len(p.Plan.Keys) > 0 || p.Plan.KeysFile != "" || p.Plan.Foreign.Customers > 0 || p.Plan.Wrong.Customers > 0) {
		errs = append(errs, errors.New("the plan has API keys, but no KeysSecret to mount them from"))
	}
	return errors.Join(errs...)
}

// validImage accepts a tagged or digested image reference, never :latest (a loaded image must
// not be pulled, and :latest would be).
func validImage(image string) error {
	if image == "" || strings.ContainsAny(image, " \t\n") || strings.HasSuffix(image, ":latest") ||
		(!strings.Contains(image, "@") && strings.LastIndex(image, ":") <= strings.LastIndex(image, "/")) {
		return fmt.Errorf("image %q: want a tagged reference (scripts/build-image.sh attacker prints one)", image)
	}
	return nil
}

// podPlan is the plan as the pods get it: their index their own, from the Job controller, and
// the keys in the mounted file, never in the plan.
func (p Params) podPlan() attack.Plan {
	plan := p.Plan
	plan.Shard.Index = 0
	plan.Keys = nil
	if p.KeysSecret != "" {
		plan.KeysFile = KeysDir + "/" + KeysSecretKey
	}
	return plan
}

// KeysSecret returns the Secret name in namespace that holds keys (API key by tenant id) as
// the attackers' keys file, under KeysSecretKey: create it, then name it in Params.KeysSecret.
func KeysSecret(name, namespace string, keys map[string]string, labels map[string]string) (*corev1.Secret, error) {
	file, err := attack.FormatKeys(keys)
	if err != nil {
		return nil, fmt.Errorf("render the attackers' keys secret: %w", err)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{KeysSecretKey: file},
	}, nil
}

// Render returns the Job that runs p.Plan in p.Plan.Shard.Count pods: Indexed completion mode,
// parallelism and completions N, no retry (a pod run again would send its share twice), each
// pod's index from the Job controller, a preference for pods on different nodes (only a
// preference: three pods on two workers still schedule), and the restricted Pod Security
// profile: non-root, no privilege escalation, every capability dropped, RuntimeDefault seccomp,
// a read-only root filesystem, no service account token. With a KeysSecret, the pods mount it
// read-only, readable by their group alone, and the plan names the file.
func Render(p Params) (*batchv1.Job, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("render the attacker job: %w", err)
	}
	pods := int32(p.Plan.Shard.Count)
	labels := map[string]string{}
	for k, v := range p.Labels {
		labels[k] = v
	}
	labels["app.kubernetes.io/name"] = AppName
	labels[JobLabel] = p.Name
	pull := p.PullPolicy
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	plan := p.podPlan()
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			CompletionMode: ptr.To(batchv1.IndexedCompletion),
			Completions:    ptr.To(pods),
			Parallelism:    ptr.To(pods),
			BackoffLimit:   ptr.To[int32](0),
			// Leftovers go even if the suite dies before it deletes the Job; long enough for
			// the suite to read every log first.
			TTLSecondsAfterFinished: ptr.To[int32](600),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       attackerPod(p.Image, pull, plan.Args(), p.KeysSecret, map[string]string{JobLabel: p.Name}),
			},
		},
	}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	// While it runs, each pod answers clock readings on RoundsPort, reached only through a
	// port-forward: the suite puts the pod's times on its own clock, as a round server's.
	c := &job.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: attack.ClockAddrEnv, Value: fmt.Sprintf(":%d", attack.RoundsPort)})
	if p.Deadline > 0 {
		job.Spec.ActiveDeadlineSeconds = ptr.To(int64((p.Deadline + time.Second - 1) / time.Second))
	}
	return job, nil
}

// attackerPod is the pod spec of every attacker, a Job's or a round server's: the attacker
// container with args, the keys Secret mounted read-only when named, a preference for nodes
// without another pod labelled spread (only a preference: three pods on two workers still
// schedule), and the restricted Pod Security profile.
func attackerPod(image string, pull corev1.PullPolicy, args []string, keysSecret string, spread map[string]string) corev1.PodSpec {
	var (
		volumes []corev1.Volume
		mounts  []corev1.VolumeMount
		fsGroup *int64
	)
	if keysSecret != "" {
		volumes = []corev1.Volume{{Name: keysVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: keysSecret,
			Items:      []corev1.KeyToPath{{Key: KeysSecretKey, Path: KeysSecretKey}},
			// Owner and group only; the kubelet gives the file to fsGroup, the attacker's group.
			DefaultMode: ptr.To[int32](0o440),
		}}}}
		mounts = []corev1.VolumeMount{{Name: keysVolume, MountPath: KeysDir, ReadOnly: true}}
		fsGroup = ptr.To[int64](User)
	}
	return corev1.PodSpec{
		AutomountServiceAccountToken:  ptr.To(false),
		EnableServiceLinks:            ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](5),
		SecurityContext:               RestrictedPod(fsGroup),
		Volumes:                       volumes,
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchLabels: spread},
					TopologyKey:   corev1.LabelHostname,
				},
			}},
		}},
		Containers: []corev1.Container{{
			Name:            Container,
			Image:           image,
			ImagePullPolicy: pull,
			Args:            args,
			VolumeMounts:    mounts,
			Env: []corev1.EnvVar{
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			},
			// Small, like the token service's: every node of a kind cluster shares the host's
			// cores. No CPU limit: throttling would spread the bursts.
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("50m"),
					corev1.ResourceMemory: resource.MustParse("32Mi"),
				},
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			SecurityContext:          RestrictedContainer(),
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		}},
	}
}

// RestrictedPod is the pod security context of the suite's own pods (attackers, probes): the
// image's non-root user, the runtime's default seccomp profile; fsGroup, when set, makes mounted
// Secrets readable by that group. With RestrictedContainer it meets the restricted Pod Security
// Standard that the suite's namespaces enforce.
func RestrictedPod(fsGroup *int64) *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](User),
		RunAsGroup:     ptr.To[int64](User),
		FSGroup:        fsGroup,
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// RestrictedContainer is the container security context of the suite's own pods: no privilege
// escalation, no capabilities, a read-only root filesystem.
func RestrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}
