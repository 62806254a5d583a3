package manifests

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/stampede-e2e/stampede/manifests/components/toxiproxy"
)

// renderAll renders the atomic strategy with toxiproxy added, as the chaos specs deploy it: every
// kind of pod the suite deploys from these manifests.
func renderAll(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	p := tokensvcParams(t, "atomic", newKeyPEM(t))
	p.Components = []string{ComponentPostgresAsyncCommit}
	objs, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := toxiproxy.Render("ns", "a/toxiproxy:1")
	if err != nil {
		t.Fatal(err)
	}
	sel, _, err := unstructured.NestedStringMap(find(objs, "Service", "tokensvc").Object, "spec", "selector")
	if err != nil {
		t.Fatal(err)
	}
	FillTargetPeers(proxy, sel)
	return append(objs, proxy...)
}

// podTemplates returns the pod template of every workload in objs, by workload name.
func podTemplates(t *testing.T, objs []*unstructured.Unstructured) map[string]corev1.PodTemplateSpec {
	t.Helper()
	pods := map[string]corev1.PodTemplateSpec{}
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
				t.Fatal(err)
			}
			pods[d.Name] = d.Spec.Template
		case "StatefulSet":
			var s appsv1.StatefulSet
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &s); err != nil {
				t.Fatal(err)
			}
			pods[s.Name] = s.Spec.Template
		case "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod":
			t.Fatalf("%s %s: a workload kind this test does not read; add it", o.GetKind(), o.GetName())
		}
	}
	return pods
}

// Every pod the manifests deploy meets the restricted Pod Security Standard, as Kubernetes' own
// evaluator (the one behind the admission plugin) judges it; the namespace enforces it; and no
// pod mounts a service account token or writes to its root filesystem.
func TestRestrictedPods(t *testing.T) {
	objs := renderAll(t)
	eval, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		t.Fatal(err)
	}
	restricted := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
	pods := podTemplates(t, objs)
	for _, name := range []string{TokensvcName, PostgresName, toxiproxy.Name} {
		tmpl, ok := pods[name]
		if !ok {
			t.Errorf("no workload %s in the render", name)
			continue
		}
		for _, r := range eval.EvaluatePod(restricted, &tmpl.ObjectMeta, &tmpl.Spec) {
			if !r.Allowed {
				t.Errorf("%s: restricted: %s: %s", name, r.ForbiddenReason, r.ForbiddenDetail)
			}
		}
		if a := tmpl.Spec.AutomountServiceAccountToken; a == nil || *a {
			t.Errorf("%s: automountServiceAccountToken %v, want false: none of them calls the API server", name, a)
		}
		for _, c := range tmpl.Spec.Containers {
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s/%s: root filesystem writable", name, c.Name)
			}
		}
	}
	var ns int
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			continue
		}
		ns++
		if l := o.GetLabels(); l[psapi.EnforceLevelLabel] != string(psapi.LevelRestricted) {
			t.Errorf("Namespace %s: %s=%q, want restricted", o.GetName(), psapi.EnforceLevelLabel, l[psapi.EnforceLevelLabel])
		}
	}
	if ns != 1 {
		t.Errorf("%d Namespace objects, want 1", ns)
	}
}

// The evaluator above really refuses what the standard forbids: a pod without the seccomp
// profile fails it. Without this the test could pass on an evaluator that allows everything.
func TestRestrictedPodsCanFail(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := podTemplates(t, renderAll(t))[TokensvcName]
	tmpl.Spec.SecurityContext.SeccompProfile = nil
	denied := false
	for _, r := range eval.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, &tmpl.ObjectMeta, &tmpl.Spec) {
		denied = denied || !r.Allowed
	}
	if !denied {
		t.Fatal("a pod without seccompProfile passed the restricted standard")
	}
}

// The policies: default deny for every pod in the namespace, and each allowed path exactly.
func TestNetworkPolicies(t *testing.T) {
	pols := map[string]networkingv1.NetworkPolicy{}
	for _, o := range renderAll(t) {
		if o.GetKind() != "NetworkPolicy" {
			continue
		}
		var p networkingv1.NetworkPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &p); err != nil {
			t.Fatal(err)
		}
		if p.Namespace != "ns" {
			t.Errorf("NetworkPolicy %s in namespace %q", p.Name, p.Namespace)
		}
		pols[p.Name] = p
	}
	deny, ok := pols["default-deny"]
	if !ok || len(deny.Spec.PodSelector.MatchLabels)+len(deny.Spec.PodSelector.MatchExpressions) != 0 ||
		len(deny.Spec.Ingress)+len(deny.Spec.Egress) != 0 || fmt.Sprint(deny.Spec.PolicyTypes) != "[Ingress Egress]" {
		t.Errorf("default-deny %+v: want every pod selected, both directions, no rule", deny.Spec)
	}
	// peers renders a rule's peers and ports compactly: "name=tokensvc:TCP/8080".
	peers := func(from []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) string {
		var ps, pp []string
		for _, f := range from {
			if f.PodSelector != nil {
				ps = append(ps, "name="+f.PodSelector.MatchLabels[NameLabel])
			}
		}
		for _, p := range ports {
			pp = append(pp, fmt.Sprintf("%s/%s", *p.Protocol, p.Port.String()))
		}
		return strings.Join(ps, ",") + ":" + strings.Join(pp, ",")
	}
	want := map[string]string{
		"tokensvc in":   ":TCP/8080",
		"tokensvc out":  "name=postgres,name=toxiproxy:TCP/5432",
		"postgres in":   "name=tokensvc,name=toxiproxy:TCP/5432",
		"toxiproxy in":  "name=tokensvc:TCP/5432",
		"toxiproxy out": "name=postgres:TCP/5432",
	}
	for key, w := range want {
		name, dir, _ := strings.Cut(key, " ")
		p, ok := pols[name]
		if !ok {
			t.Errorf("no NetworkPolicy %s", name)
			continue
		}
		var got []string
		if dir == "in" {
			for _, r := range p.Spec.Ingress {
				got = append(got, peers(r.From, r.Ports))
			}
		} else {
			for _, r := range p.Spec.Egress {
				got = append(got, peers(r.To, r.Ports))
			}
		}
		if len(got) != 1 || got[0] != w {
			t.Errorf("%s: rules %q, want [%s]", key, got, w)
		}
	}
	if p, ok := pols[PostgresName]; ok && len(p.Spec.Egress) != 0 {
		t.Errorf("postgres may open connections: %+v", p.Spec.Egress)
	}
}

// notSecret are the Secret keys a container may take as an environment variable: names of
// roles and databases, which connection strings and pg_isready need as variables. Every other
// key of a Secret (passwords, keys) reaches a container only as a file.
var notSecret = map[string]bool{"POSTGRES_USER": true, "POSTGRES_DB": true, "TOKENSVC_DB_USER": true, "TOKENSVC_DB_NAME": true}

// publicSecrets hold nothing secret (a CA certificate), so their files may be world-readable.
var publicSecrets = map[string]bool{"tokensvc-database-ca": true}

// secretsInEnv lists every way the pod gives a container a secret through its environment,
// where /proc/PID/environ, `kubectl describe` and every child process show it, or mounts a
// Secret writable or readable by others.
func secretsInEnv(name string, pod corev1.PodSpec) []string {
	var found []string
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		for _, from := range c.EnvFrom {
			if from.SecretRef != nil {
				found = append(found, fmt.Sprintf("%s/%s: envFrom Secret %s puts all its keys in the environment", name, c.Name, from.SecretRef.Name))
			}
		}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !notSecret[e.ValueFrom.SecretKeyRef.Key]:
				found = append(found, fmt.Sprintf("%s/%s: env %s from Secret %s key %s", name, c.Name, e.Name,
					e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key))
			case strings.Contains(strings.ToLower(e.Value), "password=") || strings.Contains(e.Value, "PRIVATE KEY") ||
				strings.Contains(e.Value, "PASSWORD)"):
				found = append(found, fmt.Sprintf("%s/%s: env %s holds or expands a secret: %q", name, c.Name, e.Name, e.Value))
			}
		}
		for _, m := range c.VolumeMounts {
			for _, v := range pod.Volumes {
				if v.Name != m.Name {
					continue
				}
				secrets, mode := volumeSecrets(v)
				public := true
				for _, s := range secrets {
					public = public && publicSecrets[s]
				}
				switch {
				case len(secrets) == 0:
				case !m.ReadOnly:
					found = append(found, fmt.Sprintf("%s/%s: Secret volume %s mounted writable", name, c.Name, v.Name))
				case !public && (mode == nil || *mode&0o007 != 0):
					found = append(found, fmt.Sprintf("%s/%s: Secret volume %s mode %s, want none for others (e.g. 0440)", name, c.Name, v.Name, fileMode(mode)))
				}
			}
		}
	}
	return found
}

// volumeSecrets returns the Secrets a volume (a secret or projected one) holds, by their name
// without kustomize's hash suffix, and its files' mode.
func volumeSecrets(v corev1.Volume) ([]string, *int32) {
	unhashed := func(name string) string {
		if i := strings.LastIndex(name, "-"); i > 0 && len(name)-i == 11 {
			return name[:i]
		}
		return name
	}
	switch {
	case v.Secret != nil:
		return []string{unhashed(v.Secret.SecretName)}, v.Secret.DefaultMode
	case v.Projected != nil:
		var names []string
		for _, s := range v.Projected.Sources {
			if s.Secret != nil {
				names = append(names, unhashed(s.Secret.Name))
			}
		}
		return names, v.Projected.DefaultMode
	}
	return nil, nil
}

func fileMode(m *int32) string {
	if m == nil {
		return "default (0644)"
	}
	return fmt.Sprintf("%#o", *m)
}

// No pod the manifests deploy takes a secret (a password, a key) from its environment: each
// is a file of a Secret volume mounted read-only, readable by the pod's group only.
func TestNoSecretInEnv(t *testing.T) {
	for name, tmpl := range podTemplates(t, renderAll(t)) {
		for _, f := range secretsInEnv(name, tmpl.Spec) {
			t.Error(f)
		}
	}
}

// secretsInEnv finds each way a secret can come back into the environment, or a Secret's files
// open up: without this, TestNoSecretInEnv could pass on a check that finds nothing.
func TestNoSecretInEnvCanFail(t *testing.T) {
	breaks := map[string]func(p *corev1.PodSpec){
		"envFrom Secret": func(p *corev1.PodSpec) {
			p.Containers[0].EnvFrom = append(p.Containers[0].EnvFrom, corev1.EnvFromSource{
				SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "tokensvc-database-abcdefghij"}}})
		},
		"password key": func(p *corev1.PodSpec) {
			p.Containers[0].Env = append(p.Containers[0].Env, corev1.EnvVar{Name: "TOKENSVC_DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tokensvc-database-abcdefghij"}, Key: "TOKENSVC_DB_PASSWORD"}}})
		},
		"password in the URL": func(p *corev1.PodSpec) {
			for i, e := range p.Containers[0].Env {
				if e.Name == "TOKENSVC_DATABASE_URL" {
					p.Containers[0].Env[i].Value += " password='$(TOKENSVC_DB_PASSWORD)'"
				}
			}
		},
		"key in env": func(p *corev1.PodSpec) {
			p.Containers[0].Env = append(p.Containers[0].Env, corev1.EnvVar{Name: "TOKENSVC_SIGNING_KEY", Value: "-----BEGIN PRIVATE KEY-----"})
		},
		"writable mount": func(p *corev1.PodSpec) {
			for i := range p.Containers[0].VolumeMounts {
				p.Containers[0].VolumeMounts[i].ReadOnly = false
			}
		},
		"world-readable": func(p *corev1.PodSpec) {
			for _, v := range p.Volumes {
				if v.Secret != nil {
					mode := int32(0o444)
					v.Secret.DefaultMode = &mode
				}
			}
		},
	}
	for what, breakIt := range breaks {
		tmpl := podTemplates(t, renderAll(t))[TokensvcName]
		breakIt(&tmpl.Spec)
		if len(secretsInEnv(TokensvcName, tmpl.Spec)) == 0 {
			t.Errorf("%s: not found", what)
		}
	}
	pg := podTemplates(t, renderAll(t))[PostgresName]
	pg.Spec.Containers[0].Env = append(pg.Spec.Containers[0].Env, corev1.EnvVar{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "postgres-credentials-abcdefghij"}, Key: "POSTGRES_PASSWORD"}}})
	if len(secretsInEnv(PostgresName, pg.Spec)) == 0 {
		t.Error("POSTGRES_PASSWORD from its Secret in PostgreSQL's environment: not found")
	}
}

// dnsPeers renders the DNS policy's one egress rule compactly: "ns=kube-system/k8s-app=kube-dns",
// "ip=169.254.20.10/32", then ":UDP/53,TCP/53".
func dnsPeers(t *testing.T, objs []*unstructured.Unstructured) string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "NetworkPolicy" || o.GetName() != DNSPolicyName {
			continue
		}
		var p networkingv1.NetworkPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Spec.Egress) != 1 || fmt.Sprint(p.Spec.PolicyTypes) != "[Egress]" || len(p.Spec.PodSelector.MatchLabels) != 0 {
			t.Fatalf("%s: %+v, want one egress rule for every pod", DNSPolicyName, p.Spec)
		}
		var peers, ports []string
		for _, to := range p.Spec.Egress[0].To {
			switch {
			case to.IPBlock != nil:
				peers = append(peers, "ip="+to.IPBlock.CIDR)
			default:
				var ns string
				if to.NamespaceSelector != nil {
					ns = to.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
				}
				var sel []string
				if to.PodSelector != nil {
					for k, v := range to.PodSelector.MatchLabels {
						sel = append(sel, k+"="+v)
					}
				}
				peers = append(peers, "ns="+ns+"/"+strings.Join(sel, ","))
			}
		}
		for _, pp := range p.Spec.Egress[0].Ports {
			ports = append(ports, fmt.Sprintf("%s/%s", *pp.Protocol, pp.Port.String()))
		}
		return strings.Join(peers, " ") + ":" + strings.Join(ports, ",")
	}
	t.Fatalf("no NetworkPolicy %s", DNSPolicyName)
	return ""
}

// The DNS policy: by default CoreDNS's pods and NodeLocal DNSCache's listener; a cluster's own
// DNS replaces both; a setting with no peer or a bad address block is refused.
func TestDNSEgress(t *testing.T) {
	if got, want := dnsPeers(t, renderAll(t)), "ns=kube-system/k8s-app=kube-dns ip=169.254.20.10/32:UDP/53,TCP/53"; got != want {
		t.Errorf("default DNS egress %q, want %q", got, want)
	}
	p := tokensvcParams(t, "atomic", newKeyPEM(t))
	p.DNS = &DNSEgress{Namespace: "dns", PodLabels: map[string]string{"app": "unbound"}, CIDRs: []string{"10.0.0.10/32", "169.254.25.10/32"}}
	objs, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dnsPeers(t, objs), "ns=dns/app=unbound ip=10.0.0.10/32 ip=169.254.25.10/32:UDP/53,TCP/53"; got != want {
		t.Errorf("DNS egress %q, want %q", got, want)
	}
	p.DNS = &DNSEgress{CIDRs: []string{"169.254.20.10/32"}}
	objs, err = Render(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dnsPeers(t, objs), "ip=169.254.20.10/32:UDP/53,TCP/53"; got != want {
		t.Errorf("address-only DNS egress %q, want %q", got, want)
	}
	for name, d := range map[string]DNSEgress{
		"no peer":     {},
		"bad CIDR":    {CIDRs: []string{"169.254.20.10"}},
		"bad label":   {Namespace: "kube-system", PodLabels: map[string]string{"k8s-app": "kube dns"}},
		"bad storage": DefaultDNS,
	} {
		p.DNS = &d
		p.DatabaseStorage = ""
		if name == "bad storage" {
			p.DatabaseStorage = "hostpath"
		}
		if _, err := Render(p); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}

func TestParseDNSEgress(t *testing.T) {
	for in, want := range map[string]string{
		DefaultDNS.String():                       "kube-system/k8s-app=kube-dns 169.254.20.10/32",
		"169.254.25.10/32":                        "169.254.25.10/32",
		" dns/app=unbound,tier=edge 10.0.0.10/32": "dns/app=unbound,tier=edge 10.0.0.10/32",
	} {
		d, err := ParseDNSEgress(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseDNSEgress(%q) = %v, %v; want %q", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "kube-dns", "a/x=1 b/y=2", "kube-system/k8s-app=kube dns"} {
		if d, err := ParseDNSEgress(bad); err == nil {
			t.Errorf("ParseDNSEgress(%q) = %v, want an error", bad, d)
		}
	}
}
