package manifests

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// wantStrategies are the service's create strategies (service/internal/config, which this
// package cannot import); each needs an overlay.
var wantStrategies = []string{"atomic", "fail-fast", "legacy", "return-existing"}

// brokenStrategies are the strategies the service refuses unless
// TOKENSVC_ALLOW_BROKEN_STRATEGIES=true (config.Strategy.Broken).
var brokenStrategies = []string{"legacy", "return-existing"}

// tokensvcTarget is the token service's target file, the fixture most tests render.
func tokensvcTarget(t *testing.T) *target.Target {
	t.Helper()
	targetOnce.Do(func() { targetValue, targetErr = target.Load("../targets/tokensvc/target.yaml") })
	if targetErr != nil {
		t.Fatal(targetErr)
	}
	return targetValue
}

var (
	targetOnce  sync.Once
	targetValue *target.Target
	targetErr   error
)

// tokensvcImage is the token service's image as its manifests name it.
var tokensvcImage, _, _ = strings.Cut(TokensvcPlaceholderImage, ":")

// tokensvcParams are valid Params for the token service in mode, signing with key.
func tokensvcParams(t *testing.T, mode string, key []byte) Params {
	t.Helper()
	return Params{Target: tokensvcTarget(t), Mode: mode, Namespace: "ns", Images: map[string]string{tokensvcImage: "a/tokensvc:1"},
		PostgresImage: "a/pg:1", Secrets: map[string][]byte{"tokensvc-signing-key": key, "tokensvc-api-keys": testAPIKeys},
		PostgresPassword: "pw", DatabasePassword: "dpw", DatabaseTLS: testTLS(t)}
}

func TestModes(t *testing.T) {
	if got := modeNames(tokensvcTarget(t)); !slices.Equal(slices.Sorted(slices.Values(got)), wantStrategies) {
		t.Fatalf("the target's modes %q, want %q", got, wantStrategies)
	}
}

// TestDirsOnDisk renders the suite's base and the token service's directory each alone from the
// working tree, as `kubectl kustomize` would: each stays a valid kustomization of its own.
func TestDirsOnDisk(t *testing.T) {
	for dir, want := range map[string][]string{
		"base":     {"Namespace/stampede", "StatefulSet/postgres", "Service/postgres", "NetworkPolicy/postgres"},
		"tokensvc": {"Deployment/tokensvc", "Service/tokensvc", "NetworkPolicy/tokensvc", "PodDisruptionBudget/tokensvc"},
	} {
		rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			t.Fatalf("render %s: %v", dir, err)
		}
		var got []string
		for _, r := range rm.Resources() {
			got = append(got, r.GetKind()+"/"+r.GetName())
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("%s renders %q, want %s among them", dir, got, w)
			}
		}
	}
}

func TestRender(t *testing.T) {
	key := newKeyPEM(t)
	for _, s := range wantStrategies {
		t.Run(s, func(t *testing.T) {
			p := tokensvcParams(t, s, key)
			p.Namespace = "stampede-run-1"
			p.Images = map[string]string{tokensvcImage: "stampede/tokensvc:0123456789ab"}
			p.PostgresImage = "localhost:5000/pg@sha256:" + strings.Repeat("a", 64)
			p.Replicas = 5
			p.PostgresPassword, p.DatabasePassword = "s3cret-pass word", "app-pass word"
			p.Config = map[string]string{"TOKENSVC_LEGACY_RECHECK_DELAY": "5ms"}
			p.DatabaseHost, p.DatabasePort = "toxiproxy", PostgresPort
			p.NodePort = true
			objs, err := Render(p)
			if err != nil {
				t.Fatal(err)
			}
			w, err := parse(objs)
			if err != nil {
				t.Fatal(err)
			}
			err = check(w, want{strategy: s, namespace: p.Namespace, replicas: 5,
				tokensvcImage: p.Images[tokensvcImage], postgresImage: p.PostgresImage,
				config: map[string]string{"TOKENSVC_LEGACY_RECHECK_DELAY": "5ms", "TOKENSVC_DATABASE_HOST": "toxiproxy"}, signingKey: key, password: p.PostgresPassword, dbPassword: p.DatabasePassword, nodePort: true})
			if err != nil {
				t.Error(err)
			}
			yml, err := RenderYAML(p)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(yml), "\n---\n") + 1; n != len(objs) {
				t.Errorf("RenderYAML: %d documents, Render: %d objects", n, len(objs))
			}
			var kinds []string
			lastConfig, firstWorkload := -1, len(objs)
			for i, o := range objs {
				kinds = append(kinds, o.GetKind())
				switch o.GetKind() {
				case "ConfigMap", "Secret":
					lastConfig = i
				case "Deployment", "StatefulSet":
					firstWorkload = min(firstWorkload, i)
				}
			}
			if kinds[0] != "Namespace" || lastConfig > firstWorkload {
				t.Errorf("apply order %q: want the Namespace, then configuration, then workloads", kinds)
			}
		})
	}
}

// TestCheckFails makes each check fail on purpose, so that TestRender cannot pass vacuously.
func TestCheckFails(t *testing.T) {
	key := newKeyPEM(t)
	p := tokensvcParams(t, "fail-fast", key)
	p.NodePort = true
	good := want{strategy: "fail-fast", namespace: "ns", replicas: 3, tokensvcImage: "a/tokensvc:1",
		postgresImage: "a/pg:1", signingKey: key, password: "pw", nodePort: true}
	breaks := map[string]func(w *rendered, wt *want){
		"strategy":                    func(w *rendered, wt *want) { wt.strategy = "atomic" },
		"broken strategy not allowed": func(w *rendered, wt *want) { wt.strategy = "legacy" },
		"fixed strategy allows broken": func(w *rendered, wt *want) {
			for _, cm := range w.configMaps {
				cm.Data["TOKENSVC_ALLOW_BROKEN_STRATEGIES"] = "true"
			}
		},
		"namespace": func(w *rendered, wt *want) { w.deploy.Namespace = "other" },
		"replicas":  func(w *rendered, wt *want) { wt.replicas = 4 },
		"image":     func(w *rendered, wt *want) { wt.tokensvcImage = "a/tokensvc:2" },
		"pull policy": func(w *rendered, wt *want) {
			w.deploy.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
		},
		"readiness": func(w *rendered, wt *want) { w.deploy.Spec.Template.Spec.Containers[0].ReadinessProbe = nil },
		"liveness path": func(w *rendered, wt *want) {
			w.deploy.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path = "/"
		},
		"node port":     func(w *rendered, wt *want) { w.service.Spec.Ports[0].NodePort = 30081 },
		"cluster IP":    func(w *rendered, wt *want) { wt.nodePort = false },
		"data volume":   func(w *rendered, wt *want) { wt.emptyDir = true },
		"pod name":      func(w *rendered, wt *want) { w.deploy.Spec.Template.Spec.Containers[0].Env = nil },
		"key":           func(w *rendered, wt *want) { wt.signingKey = newKeyPEM(t) },
		"password":      func(w *rendered, wt *want) { wt.password = "other" },
		"config":        func(w *rendered, wt *want) { wt.config = map[string]string{"TOKENSVC_DRAIN_DELAY": "9s"} },
		"grace":         func(w *rendered, wt *want) { w.deploy.Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64) },
		"pg secret ref": func(w *rendered, wt *want) { w.postgres.Spec.Template.Spec.Containers[0].Env = nil },
		"pg password file": func(w *rendered, wt *want) {
			for i, e := range w.postgres.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "POSTGRES_APP_PASSWORD_FILE" {
					w.postgres.Spec.Template.Spec.Containers[0].Env[i].Value = "/etc/postgres-credentials/superuser-password"
				}
			}
		},
		"password file": func(w *rendered, wt *want) {
			for i, e := range w.deploy.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "TOKENSVC_DATABASE_PASSWORD_FILE" {
					w.deploy.Spec.Template.Spec.Containers[0].Env[i].Value = "/etc/tokensvc/signing-key/signing.pem"
				}
			}
		},
		"pg probe": func(w *rendered, wt *want) { w.postgres.Spec.Template.Spec.Containers[0].ReadinessProbe = nil },
		"pg probe user": func(w *rendered, wt *want) {
			for i, e := range w.postgres.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "PGUSER" {
					w.postgres.Spec.Template.Spec.Containers[0].Env[i].ValueFrom.SecretKeyRef.Name = "other"
				}
			}
		},
		"service sees superuser": func(w *rendered, wt *want) {
			// The rendered name, with kustomize's hash suffix.
			var super string
			for _, e := range w.postgres.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "POSTGRES_USER" {
					super = e.ValueFrom.SecretKeyRef.Name
				}
			}
			c := &w.deploy.Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: super}, Key: "POSTGRES_PASSWORD"}}})
		},
		"app password": func(w *rendered, wt *want) { wt.dbPassword = "other" },
		"plaintext db": func(w *rendered, wt *want) {
			for i, e := range w.deploy.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "TOKENSVC_DATABASE_URL" {
					w.deploy.Spec.Template.Spec.Containers[0].Env[i].Value = strings.Replace(e.Value, "verify-full", "disable", 1)
				}
			}
		},
	}
	for name, breakIt := range breaks {
		t.Run(name, func(t *testing.T) {
			w := renderParsed(t, p)
			wt := good
			if err := check(w, wt); err != nil {
				t.Fatalf("unbroken render fails: %v", err)
			}
			breakIt(w, &wt)
			if err := check(w, wt); err == nil {
				t.Errorf("check passed with %s broken", name)
			}
		})
	}
}

func TestRenderRefuses(t *testing.T) {
	good := tokensvcParams(t, "atomic", newKeyPEM(t))
	if _, err := Render(good); err != nil {
		t.Fatalf("good params: %v", err)
	}
	rsaLike := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not DER")})
	for name, change := range map[string]func(p *Params){
		"no target":         func(p *Params) { p.Target = nil },
		"no mode":           func(p *Params) { p.Mode = "" },
		"unknown mode":      func(p *Params) { p.Mode = "optimistic" },
		"path as mode":      func(p *Params) { p.Mode = "../base" },
		"no namespace":      func(p *Params) { p.Namespace = "" },
		"bad namespace":     func(p *Params) { p.Namespace = "Stampede_1" },
		"no image":          func(p *Params) { p.Images = nil },
		"unknown image":     func(p *Params) { p.Images = map[string]string{tokensvcImage: "a/t:1", "other": "a/o:1"} },
		"untagged image":    func(p *Params) { p.PostgresImage = "localhost:5000/pg" },
		"latest image":      func(p *Params) { p.Images = map[string]string{tokensvcImage: "a/tokensvc:latest"} },
		"negative replicas": func(p *Params) { p.Replicas = -1 },
		"no key":            func(p *Params) { p.Secrets = map[string][]byte{"tokensvc-api-keys": testAPIKeys} },
		"key not PKCS#8": func(p *Params) {
			p.Secrets = map[string][]byte{"tokensvc-signing-key": rsaLike, "tokensvc-api-keys": testAPIKeys}
		},
		"no api keys": func(p *Params) {
			p.Secrets = map[string][]byte{"tokensvc-signing-key": p.Secrets["tokensvc-signing-key"]}
		},
		"unknown secret":    func(p *Params) { p.Secrets = map[string][]byte{"other": []byte("x")} },
		"no password":       func(p *Params) { p.PostgresPassword = "" },
		"quote in password": func(p *Params) { p.PostgresPassword = "it's" },
		"config bad key":    func(p *Params) { p.Config = map[string]string{"A B": "x"} },
		"config line break": func(p *Params) { p.Config = map[string]string{"TOKENSVC_DRAIN_DELAY": "1s\nX=y"} },
		"config strategy":   func(p *Params) { p.Config = map[string]string{"TOKENSVC_CREATE_STRATEGY": "legacy"} },
		"config broken":     func(p *Params) { p.Config = map[string]string{"TOKENSVC_ALLOW_BROKEN_STRATEGIES": "true"} },
		"config endpoint":   func(p *Params) { p.Config = map[string]string{"TOKENSVC_DATABASE_HOST": "x"} },
		"endpoint no port":  func(p *Params) { p.DatabaseHost = "toxiproxy" },
		"unknown component": func(p *Params) { p.Components = []string{"no-such-component"} },
		"path as component": func(p *Params) { p.Components = []string{"../base"} },
	} {
		t.Run(name, func(t *testing.T) {
			p := good
			change(&p)
			if _, err := Render(p); err == nil {
				t.Errorf("Render accepted %s", name)
			}
		})
	}
}

func TestImageOverride(t *testing.T) {
	for _, tc := range []struct{ ref, name, tag, digest string }{
		{"stampede/tokensvc:0123456789ab", "stampede/tokensvc", "0123456789ab", ""},
		{"localhost:5000/pg:15", "localhost:5000/pg", "15", ""},
		{"pg@sha256:abc", "pg", "", "sha256:abc"},
		{"r:5000/pg:15@sha256:abc", "r:5000/pg", "15", "sha256:abc"},
	} {
		img, err := imageOverride(postgresImage, tc.ref)
		if err != nil {
			t.Errorf("%s: %v", tc.ref, err)
			continue
		}
		if img.Name != "stampede/postgres" || img.NewName != tc.name || img.NewTag != tc.tag || img.Digest != tc.digest {
			t.Errorf("%s: got %+v", tc.ref, img)
		}
	}
}

// rendered is what the checks look at, typed.
type rendered struct {
	namespaces []string // of the namespaced objects
	nsObjects  []string // names of the Namespace objects
	deploy     *appsv1.Deployment
	postgres   *appsv1.StatefulSet
	service    *corev1.Service
	pgService  *corev1.Service
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	labels     map[string]map[string]string // kind/name -> labels
}

// renderParsed renders p and parses what it rendered, failing the test on either error.
func renderParsed(t *testing.T, p Params) *rendered {
	t.Helper()
	objs, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := parse(objs)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func parse(objs []*unstructured.Unstructured) (*rendered, error) {
	w := &rendered{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		labels: map[string]map[string]string{}}
	conv := runtime.DefaultUnstructuredConverter
	var errs []error
	for _, o := range objs {
		// Strict: a misspelt field would otherwise vanish here and be refused by the API server.
		into := func(v any) { errs = append(errs, conv.FromUnstructuredWithValidation(o.Object, v, true)) }
		w.labels[o.GetKind()+"/"+o.GetName()] = o.GetLabels()
		if o.GetKind() == "Namespace" {
			w.nsObjects = append(w.nsObjects, o.GetName())
		} else {
			w.namespaces = append(w.namespaces, o.GetNamespace())
		}
		switch {
		case o.GetKind() == "Deployment" && o.GetName() == TokensvcName:
			w.deploy = &appsv1.Deployment{}
			into(w.deploy)
		case o.GetKind() == "StatefulSet" && o.GetName() == PostgresName:
			w.postgres = &appsv1.StatefulSet{}
			into(w.postgres)
		case o.GetKind() == "Service" && o.GetName() == TokensvcName:
			w.service = &corev1.Service{}
			into(w.service)
		case o.GetKind() == "Service" && o.GetName() == PostgresName:
			w.pgService = &corev1.Service{}
			into(w.pgService)
		case o.GetKind() == "ConfigMap":
			cm := &corev1.ConfigMap{}
			into(cm)
			w.configMaps[o.GetName()] = cm
		case o.GetKind() == "Secret":
			s := &corev1.Secret{}
			into(s)
			w.secrets[o.GetName()] = s
		}
	}
	if w.deploy == nil || w.postgres == nil || w.service == nil || w.pgService == nil {
		errs = append(errs, errors.New("want Deployment tokensvc, StatefulSet postgres, Services tokensvc and postgres"))
	}
	return w, errors.Join(errs...)
}

type want struct {
	strategy, namespace          string
	replicas                     int32
	tokensvcImage, postgresImage string
	config                       map[string]string // besides the strategy
	signingKey                   []byte            // nil: not checked
	password                     string
	dbPassword                   string // "": not checked
	nodePort                     bool   // the Service is NodePort on NodePort, else ClusterIP
	emptyDir                     bool   // the database's data on an emptyDir, else a claim template
}

// check returns every way in which w differs from what the suite relies on.
func check(w *rendered, wt want) error {
	var errs []error
	errorf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !slices.Equal(w.nsObjects, []string{wt.namespace}) {
		errorf("Namespace objects %q, want [%s]", w.nsObjects, wt.namespace)
	}
	for _, ns := range w.namespaces {
		if ns != wt.namespace {
			errorf("an object in namespace %q, want %q", ns, wt.namespace)
		}
	}
	for obj, l := range w.labels {
		if l["stampede.dev/strategy"] != wt.strategy {
			errorf("%s: label stampede.dev/strategy=%q, want %q", obj, l["stampede.dev/strategy"], wt.strategy)
		}
	}

	d := w.deploy
	if d.Namespace != wt.namespace {
		errorf("Deployment in %q", d.Namespace)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != wt.replicas {
		errorf("Deployment replicas %v, want %d", d.Spec.Replicas, wt.replicas)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		return errors.Join(append(errs, fmt.Errorf("tokensvc: %d containers, want 1", len(pod.Containers)))...)
	}
	c := pod.Containers[0]
	checkImage := func(what string, c corev1.Container, image string) {
		if c.Image != image {
			errorf("%s image %q, want %q", what, c.Image, image)
		}
		if c.ImagePullPolicy != corev1.PullIfNotPresent {
			errorf("%s imagePullPolicy %q: there is no registry to pull from", what, c.ImagePullPolicy)
		}
	}
	checkImage("tokensvc", c, wt.tokensvcImage)
	for probe, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		wantPath := map[string]string{"readiness": "/readyz", "liveness": "/livez", "startup": "/livez"}[probe]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != wantPath || p.HTTPGet.Port.String() != "http" {
			errorf("tokensvc %s probe %+v, want GET %s on port http", probe, p, wantPath)
		}
	}
	if len(c.Ports) != 2 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != TokensvcPort ||
		c.Ports[1].Name != "metrics" || c.Ports[1].ContainerPort != TokensvcMetricsPort {
		errorf("tokensvc ports %+v, want http %d and metrics %d", c.Ports, TokensvcPort, TokensvcMetricsPort)
	}
	// The names the suite selects and reaches the workloads by are this package's constants.
	if got := w.deploy.Spec.Template.Labels[NameLabel]; got != TokensvcName || w.deploy.Spec.Selector.MatchLabels[NameLabel] != TokensvcName {
		errorf("tokensvc pods labelled %s=%q, want %q", NameLabel, got, TokensvcName)
	}
	if got := w.postgres.Spec.Template.Labels[NameLabel]; got != PostgresName || PostgresPod != w.postgres.Name+"-0" {
		errorf("postgres pods labelled %s=%q (pod %s), want %q", NameLabel, got, PostgresPod, PostgresName)
	}
	if w.service.Spec.Selector[NameLabel] != TokensvcName || w.pgService.Spec.Selector[NameLabel] != PostgresName {
		errorf("Services select %v and %v", w.service.Spec.Selector, w.pgService.Spec.Selector)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["POD_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		errorf("POD_NAME %+v, want the downward API's metadata.name", e)
	}
	// The service's role: its name from the Secret as variables, its password from the same
	// Secret as a file.
	pgSecret, userKey := secretKeyRef(env["TOKENSVC_DB_USER"])
	if nameSecret, nameKey := secretKeyRef(env["TOKENSVC_DB_NAME"]); userKey != "TOKENSVC_DB_USER" || nameKey != "TOKENSVC_DB_NAME" || nameSecret != pgSecret {
		errorf("TOKENSVC_DB_USER and TOKENSVC_DB_NAME from %s/%s and %s/%s, want both from the service's database Secret", pgSecret, userKey, nameSecret, nameKey)
	}
	if u := env["TOKENSVC_DATABASE_URL"].Value; strings.Contains(u, "password") ||
		!strings.Contains(u, "user=$(TOKENSVC_DB_USER)") || !strings.Contains(u, "sslmode=verify-full") {
		errorf("TOKENSVC_DATABASE_URL %q: want the service's own role from its Secret, no password, over verified TLS", u)
	}
	if sec, key := fileSecret(pod, c, env["TOKENSVC_DATABASE_PASSWORD_FILE"].Value); sec != pgSecret || key != "TOKENSVC_DB_PASSWORD" {
		errorf("TOKENSVC_DATABASE_PASSWORD_FILE %q is %s/%s, want %s/TOKENSVC_DB_PASSWORD", env["TOKENSVC_DATABASE_PASSWORD_FILE"].Value, sec, key, pgSecret)
	}
	keyFile := env["TOKENSVC_SIGNING_KEY_FILE"].Value
	keySecret, _ := fileSecret(pod, c, keyFile)
	if s, ok := w.secrets[keySecret]; !ok {
		errorf("TOKENSVC_SIGNING_KEY_FILE %q is not in a mounted Secret of this render", keyFile)
	} else if wt.signingKey != nil && string(s.Data["signing.pem"]) != string(wt.signingKey) {
		errorf("Secret %s does not hold the signing key", keySecret)
	}
	// The settings, as the kubelet will see them: envFrom first, then env.
	settings := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := w.configMaps[from.ConfigMapRef.Name]
			if !ok {
				errorf("envFrom ConfigMap %q is not in the render", from.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				settings[k] = v
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			settings[e.Name] = e.Value
		}
	}
	if got := settings["TOKENSVC_CREATE_STRATEGY"]; got != wt.strategy {
		errorf("TOKENSVC_CREATE_STRATEGY %q, want %q", got, wt.strategy)
	}
	// A broken strategy's canary must start; a fixed one must not carry the test-only setting.
	if got, want := settings["TOKENSVC_ALLOW_BROKEN_STRATEGIES"], map[bool]string{true: "true"}[slices.Contains(brokenStrategies, wt.strategy)]; got != want {
		errorf("TOKENSVC_ALLOW_BROKEN_STRATEGIES %q for strategy %s, want %q", got, wt.strategy, want)
	}
	for k, v := range wt.config {
		if settings[k] != v {
			errorf("%s %q, want %q", k, settings[k], v)
		}
	}
	for _, ref := range []string{"TOKENSVC_DATABASE_HOST", "TOKENSVC_DATABASE_PORT", "TOKENSVC_DATABASE_POOL"} {
		if _, ok := settings[ref]; !ok {
			errorf("TOKENSVC_DATABASE_URL refers to %s, which is not set", ref)
		}
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 21 {
		errorf("terminationGracePeriodSeconds %v: want more than TOKENSVC_SHUTDOWN_TIMEOUT (%s)",
			pod.TerminationGracePeriodSeconds, settings["TOKENSVC_SHUTDOWN_TIMEOUT"])
	}
	if settings["TOKENSVC_SHUTDOWN_TIMEOUT"] != "20s" {
		errorf("TOKENSVC_SHUTDOWN_TIMEOUT %q: the grace period (25s) is sized for 20s", settings["TOKENSVC_SHUTDOWN_TIMEOUT"])
	}

	s := w.service
	wantType, wantNodePort := corev1.ServiceTypeClusterIP, int32(0)
	if wt.nodePort {
		wantType, wantNodePort = corev1.ServiceTypeNodePort, NodePort
	}
	if s.Spec.Type != wantType || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].NodePort != wantNodePort ||
		s.Spec.Ports[0].TargetPort.String() != "http" || s.Spec.Ports[0].Port != TokensvcServicePort {
		errorf("Service tokensvc %+v, want %s, port %d and node port %d to port http", s.Spec, wantType, TokensvcServicePort, wantNodePort)
	}
	if err := checkDataVolume(w.postgres, wt.emptyDir); err != nil {
		errorf("postgres: %v", err)
	}

	pg := w.postgres
	if len(pg.Spec.Template.Spec.Containers) != 1 {
		return errors.Join(append(errs, fmt.Errorf("postgres: %d containers", len(pg.Spec.Template.Spec.Containers)))...)
	}
	pc := pg.Spec.Template.Spec.Containers[0]
	checkImage("postgres", pc, wt.postgresImage)
	if p := pc.ReadinessProbe; p == nil || p.Exec == nil || len(p.Exec.Command) == 0 || p.Exec.Command[0] != "pg_isready" {
		errorf("postgres readiness probe %+v, want pg_isready", p)
	}
	pgEnv := map[string]corev1.EnvVar{}
	for _, e := range pc.Env {
		pgEnv[e.Name] = e
	}
	superSecret, _ := secretKeyRef(pgEnv["POSTGRES_USER"])
	if superSecret == "" || superSecret == pgSecret {
		errorf("postgres's superuser Secret %q: want one of its own, not the service's (%q)", superSecret, pgSecret)
	}
	// The superuser's password never reaches the service's pod, by any route.
	for _, ref := range secretRefs(pod) {
		if ref == superSecret {
			errorf("the token service's pod refers to the superuser's Secret %q", superSecret)
		}
	}
	for _, name := range []string{"PGUSER", "PGDATABASE", "POSTGRES_DB"} {
		if sec, _ := secretKeyRef(pgEnv[name]); sec != superSecret {
			errorf("postgres %s from Secret %q: want it from the superuser's Secret, so that pg_isready logs in", name, sec)
		}
	}
	appUserSecret, appUserKey := secretKeyRef(pgEnv["POSTGRES_APP_USER"])
	appPwSecret, appPwKey := fileSecret(pg.Spec.Template.Spec, pc, pgEnv["POSTGRES_APP_PASSWORD_FILE"].Value)
	if appUserSecret != pgSecret || appUserKey != "TOKENSVC_DB_USER" || appPwSecret != pgSecret || appPwKey != "TOKENSVC_DB_PASSWORD" {
		errorf("postgres creates the service's role from %s/%s and the file %s/%s, want TOKENSVC_DB_USER and TOKENSVC_DB_PASSWORD of %s",
			appUserSecret, appUserKey, appPwSecret, appPwKey, pgSecret)
	}
	if sec, key := fileSecret(pg.Spec.Template.Spec, pc, pgEnv["POSTGRES_PASSWORD_FILE"].Value); sec != superSecret || key != "POSTGRES_PASSWORD" {
		errorf("POSTGRES_PASSWORD_FILE is %s/%s, want %s/POSTGRES_PASSWORD", sec, key, superSecret)
	}
	if sec, ok := w.secrets[superSecret]; !ok {
		errorf("superuser Secret %q is not in the render", superSecret)
	} else if wt.password != "" && string(sec.Data["POSTGRES_PASSWORD"]) != wt.password {
		errorf("POSTGRES_PASSWORD %q, want %q", sec.Data["POSTGRES_PASSWORD"], wt.password)
	}
	if sec, ok := w.secrets[pgSecret]; !ok {
		errorf("the service's database Secret %q is not in the render", pgSecret)
	} else if wt.dbPassword != "" && string(sec.Data["TOKENSVC_DB_PASSWORD"]) != wt.dbPassword {
		errorf("TOKENSVC_DB_PASSWORD %q, want %q", sec.Data["TOKENSVC_DB_PASSWORD"], wt.dbPassword)
	}
	if w.pgService.Spec.Ports[0].Port != PostgresPort || settings["TOKENSVC_DATABASE_PORT"] != strconv.Itoa(PostgresPort) {
		errorf("postgres Service port %d, tokensvc connects to %s", w.pgService.Spec.Ports[0].Port, settings["TOKENSVC_DATABASE_PORT"])
	}
	return errors.Join(errs...)
}

// secretKeyRef returns the Secret and key a variable takes its value from, if any.
func secretKeyRef(e corev1.EnvVar) (secret, key string) {
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		return "", ""
	}
	return e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key
}

// fileSecret returns the Secret and key whose file c sees at path, through its volume mounts
// and the pod's secret or projected volumes; "" when path is no Secret's file.
func fileSecret(pod corev1.PodSpec, c corev1.Container, path string) (secret, key string) {
	for _, m := range c.VolumeMounts {
		file, ok := strings.CutPrefix(path, m.MountPath+"/")
		if !ok {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			var sources []corev1.SecretProjection
			switch {
			case v.Secret != nil:
				sources = []corev1.SecretProjection{{LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items}}
			case v.Projected != nil:
				for _, s := range v.Projected.Sources {
					if s.Secret != nil {
						sources = append(sources, *s.Secret)
					}
				}
			}
			for _, s := range sources {
				if len(s.Items) == 0 {
					return s.Name, file // every key, as a file of its name
				}
				for _, it := range s.Items {
					if it.Path == file {
						return s.Name, it.Key
					}
				}
			}
		}
	}
	return "", ""
}

// secretRefs lists every Secret a pod spec refers to: volumes, envFrom and env.
func secretRefs(pod corev1.PodSpec) []string {
	var refs []string
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			refs = append(refs, v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					refs = append(refs, s.Secret.Name)
				}
			}
		}
	}
	for _, c := range pod.Containers {
		for _, from := range c.EnvFrom {
			if from.SecretRef != nil {
				refs = append(refs, from.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				refs = append(refs, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	return refs
}

var testAPIKeys = []byte("m-0 sha256:" + strings.Repeat("ab", 32) + "\n")

// testTLS is one DatabaseTLS for the whole test binary: generating keys per render is slow.
func testTLS(t *testing.T) DatabaseTLS {
	t.Helper()
	tlsOnce.Do(func() { tlsValue, tlsErr = NewDatabaseTLS("ns") })
	if tlsErr != nil {
		t.Fatal(tlsErr)
	}
	return tlsValue
}

var (
	tlsOnce  sync.Once
	tlsValue DatabaseTLS
	tlsErr   error
)

func newKeyPEM(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// The async-commit component sets synchronous_commit=off on PostgreSQL's command line, and only
// when asked: without it, PostgreSQL runs with the image's synchronous_commit=on.
func TestComponentPostgresAsyncCommit(t *testing.T) {
	if got := Components(); !slices.Equal(got, []string{ComponentPostgresAsyncCommit}) {
		t.Fatalf("Components() = %q", got)
	}
	args := func(components ...string) []string {
		t.Helper()
		p := tokensvcParams(t, "atomic", newKeyPEM(t))
		p.Components = components
		objs, err := Render(p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := parse(objs)
		if err != nil {
			t.Fatal(err)
		}
		return w.postgres.Spec.Template.Spec.Containers[0].Args
	}
	if a := args(); len(a) != 0 {
		t.Errorf("without the component PostgreSQL has args %q", a)
	}
	if a := args(ComponentPostgresAsyncCommit); !slices.Equal(a, []string{"-c", "synchronous_commit=off"}) {
		t.Errorf("with %s PostgreSQL has args %q", ComponentPostgresAsyncCommit, a)
	}
}

// teamDir is a team's copy of the token service's kustomize directory (tokensvc/), with files
// replaced or added.
func teamDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("tokensvc")); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// bundledTokensvc is the token service's workload file.
func bundledTokensvc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("tokensvc/tokensvc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A team's own token-service directory replaces the bundled one, and a directory that lacks what
// the suite needs is refused with what it must provide.
func TestRenderTokensvcDir(t *testing.T) {
	bundled := bundledTokensvc(t)
	marked := strings.Replace(bundled, "kind: Deployment\n", "kind: Deployment\n# the team's copy\n", 1)
	marked = strings.Replace(marked, "  name: tokensvc\n", "  name: tokensvc\n  annotations:\n    team.example/owner: payments\n", 1)
	p := tokensvcParams(t, "atomic", newKeyPEM(t))
	p.Kustomize = teamDir(t, map[string]string{"tokensvc.yaml": marked})
	w := renderParsed(t, p)
	if w.deploy.Annotations["team.example/owner"] != "payments" {
		t.Errorf("the rendered Deployment is not the team's: annotations %v", w.deploy.Annotations)
	}
	if err := check(w, want{strategy: "atomic", namespace: "ns", replicas: 3, tokensvcImage: "a/tokensvc:1", postgresImage: "a/pg:1",
		signingKey: p.Secrets["tokensvc-signing-key"], password: "pw"}); err != nil {
		t.Errorf("the team's render fails the suite's own checks: %v", err)
	}

	deploymentOnly := strings.SplitN(bundled, "\n---\n", 2)[0]
	for name, files := range map[string]map[string]string{
		"no kustomization": {"tokensvc.yaml": bundled},
		"no Service":       {"kustomization.yaml": "resources: [tokensvc.yaml]\n", "tokensvc.yaml": deploymentOnly},
		"other container":  {"tokensvc.yaml": strings.Replace(bundled, "- name: tokensvc\n", "- name: app\n", 1)},
		"selects nothing":  {"tokensvc.yaml": strings.Replace(bundled, "  selector:\n    app.kubernetes.io/name: tokensvc\n", "  selector:\n    app: other\n", 1)},
	} {
		dir := t.TempDir()
		if name != "no kustomization" {
			dir = teamDir(t, files)
		} else if err := os.WriteFile(filepath.Join(dir, "tokensvc.yaml"), []byte(bundled), 0o644); err != nil {
			t.Fatal(err)
		}
		p.Kustomize = dir
		if _, err := Render(p); err == nil || !strings.Contains(err.Error(), "tokensvc-config") {
			t.Errorf("%s: %v, want a refusal that says what the directory must provide", name, err)
		}
	}
}

// checkDataVolume says whether PostgreSQL's data volume is where want says: an emptyDir (and no
// claim template, which would leave a claim behind), or the claim template "data".
func checkDataVolume(pg *appsv1.StatefulSet, emptyDir bool) error {
	var claims, dirs []string
	for _, c := range pg.Spec.VolumeClaimTemplates {
		claims = append(claims, c.Name)
	}
	for _, v := range pg.Spec.Template.Spec.Volumes {
		if v.EmptyDir != nil {
			dirs = append(dirs, v.Name)
		}
	}
	switch {
	case emptyDir && (len(claims) != 0 || !slices.Contains(dirs, "data")):
		return fmt.Errorf("claim templates %q, emptyDirs %q: want data on an emptyDir and no claim", claims, dirs)
	case !emptyDir && (!slices.Equal(claims, []string{"data"}) || slices.Contains(dirs, "data")):
		return fmt.Errorf("claim templates %q, emptyDirs %q: want data on the claim template", claims, dirs)
	}
	return nil
}

// Existing mode's render: a ClusterIP Service, whatever type the team's directory gave it, and
// the database on an emptyDir sized as the claim was.
func TestRenderExistingMode(t *testing.T) {
	bundled := bundledTokensvc(t)
	lb := strings.Replace(bundled, "  type: NodePort\n", "  type: LoadBalancer\n  externalTrafficPolicy: Local\n", 1)
	if lb == bundled {
		t.Fatal("the bundled Service is no longer of type NodePort: update this test")
	}
	dir := teamDir(t, map[string]string{"tokensvc.yaml": lb})
	for name, tokensvcDir := range map[string]string{"bundled": "", "team's LoadBalancer": dir} {
		t.Run(name, func(t *testing.T) {
			p := tokensvcParams(t, "atomic", newKeyPEM(t))
			p.Kustomize, p.DatabaseStorage = tokensvcDir, StorageEmptyDir
			w := renderParsed(t, p)
			if err := check(w, want{strategy: "atomic", namespace: "ns", replicas: 3, tokensvcImage: "a/tokensvc:1",
				postgresImage: "a/pg:1", signingKey: p.Secrets["tokensvc-signing-key"], password: "pw", emptyDir: true}); err != nil {
				t.Error(err)
			}
			if w.service.Spec.ExternalTrafficPolicy != "" {
				t.Errorf("externalTrafficPolicy %q left on a ClusterIP Service", w.service.Spec.ExternalTrafficPolicy)
			}
			for _, v := range w.postgres.Spec.Template.Spec.Volumes {
				if v.Name == "data" && v.EmptyDir.SizeLimit.String() != "1Gi" {
					t.Errorf("data emptyDir sizeLimit %v, want the claim's 1Gi", v.EmptyDir.SizeLimit)
				}
			}
		})
	}
}

// A team's directory with a cluster-scoped object is refused in one line naming it; so is one
// that brings its own Namespace.
func TestRenderRefusesClusterScoped(t *testing.T) {
	extra := map[string]string{
		"ClusterRole reader": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules: []\n",
		"StorageClass fast":  "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\nprovisioner: example.com/fast\n",
		"Namespace payments": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments\n",
	}
	for want, obj := range extra {
		t.Run(want, func(t *testing.T) {
			kust, err := os.ReadFile("tokensvc/kustomization.yaml")
			if err != nil {
				t.Fatal(err)
			}
			p := tokensvcParams(t, "atomic", newKeyPEM(t))
			p.Kustomize = teamDir(t, map[string]string{"extra.yaml": obj,
				"kustomization.yaml": strings.Replace(string(kust), "  - networkpolicy.yaml\n", "  - networkpolicy.yaml\n  - extra.yaml\n", 1)})
			_, err = Render(p)
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Render = %v, want one line naming %s", err, want)
			}
		})
	}
}
