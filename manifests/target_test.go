package manifests

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// ordersParams are valid Params for the second target fixture (testdata/orders): another
// workload, Service, port, Secrets, settings and key file format, which no Go code names.
func ordersParams(t *testing.T, mode string) Params {
	t.Helper()
	tg, err := target.Load("testdata/orders/target.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return Params{Target: tg, Mode: mode, Namespace: "ns", Images: map[string]string{"example/orders": "example/orders:7"},
		PostgresImage: "a/pg:1", Secrets: map[string][]byte{"orders-keys": []byte("abc:shop-1\n")},
		PostgresPassword: "pw", DatabasePassword: "dpw", DatabaseTLS: testTLS(t), Replicas: 4}
}

// renderedOrders is what the table below checks of a render of the orders target.
type renderedOrders struct {
	objs     []*unstructured.Unstructured
	deploy   appsv1.Deployment
	postgres appsv1.StatefulSet
	service  corev1.Service
	policies map[string]networkingv1.NetworkPolicy
	// settings are the ConfigMap entries and env values of the api container, as the kubelet
	// sees them; secrets each Secret's data by name without its hash suffix.
	settings map[string]string
	secrets  map[string]map[string]string
}

func renderOrders(t *testing.T, p Params) *renderedOrders {
	t.Helper()
	objs, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	r := &renderedOrders{objs: objs, policies: map[string]networkingv1.NetworkPolicy{}, settings: map[string]string{},
		secrets: map[string]map[string]string{}}
	conv := runtime.DefaultUnstructuredConverter
	configMaps := map[string]map[string]string{}
	for _, o := range objs {
		var err error
		switch o.GetKind() {
		case "Deployment":
			err = conv.FromUnstructured(o.Object, &r.deploy)
		case "StatefulSet":
			err = conv.FromUnstructured(o.Object, &r.postgres)
		case "Service":
			if o.GetName() == "orders" {
				err = conv.FromUnstructured(o.Object, &r.service)
			}
		case "NetworkPolicy":
			var np networkingv1.NetworkPolicy
			err = conv.FromUnstructured(o.Object, &np)
			r.policies[np.Name] = np
		case "ConfigMap":
			var cm corev1.ConfigMap
			err = conv.FromUnstructured(o.Object, &cm)
			configMaps[cm.Name] = cm.Data
		case "Secret":
			var s corev1.Secret
			err = conv.FromUnstructured(o.Object, &s)
			data := map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
			r.secrets[hashSuffix.ReplaceAllString(s.Name, "")] = data
		}
		if err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	for _, c := range r.deploy.Spec.Template.Spec.Containers {
		for _, from := range c.EnvFrom {
			if from.ConfigMapRef != nil {
				maps.Copy(r.settings, configMaps[from.ConfigMapRef.Name])
			}
		}
		for _, e := range c.Env {
			r.settings[e.Name] = e.Value
		}
	}
	return r
}

// The second target renders with its own names throughout: the suite's base adapts to it (the
// database's role Secret, the policies' peers and port), the mode's settings land where the mode
// says, and nothing of the token service appears.
func TestRenderOrders(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p *Params)
		check  func(r *renderedOrders) error
	}{
		{"workload", nil, func(r *renderedOrders) error {
			c := r.deploy.Spec.Template.Spec.Containers[0]
			if r.deploy.Name != "orders-api" || *r.deploy.Spec.Replicas != 4 || c.Image != "example/orders:7" {
				return fmt.Errorf("Deployment %s, %d replicas, image %s", r.deploy.Name, *r.deploy.Spec.Replicas, c.Image)
			}
			return nil
		}},
		{"mode by env", nil, func(r *renderedOrders) error {
			if r.settings["ORDERS_LOCKING"] != "row" || r.settings["ORDERS_WORKERS"] != "2" {
				return fmt.Errorf("settings %v, want ORDERS_LOCKING=row over the manifests' default", r.settings)
			}
			return nil
		}},
		{"mode by ConfigMap", func(p *Params) { p.Mode = "racy" }, func(r *renderedOrders) error {
			// The container's own env still says default: the ConfigMap is what the mode changes.
			if cm := r.secretsOrConfig("orders-settings"); cm["ORDERS_LOCKING"] != "none" || cm["ORDERS_WORKERS"] != "2" {
				return fmt.Errorf("orders-settings %v, want ORDERS_LOCKING=none merged", cm)
			}
			return nil
		}},
		{"mode label", func(p *Params) { p.Mode = "racy" }, func(r *renderedOrders) error {
			for _, o := range r.objs {
				if o.GetLabels()[ModeLabel] != "racy" {
					return fmt.Errorf("%s %s: labels %v", o.GetKind(), o.GetName(), o.GetLabels())
				}
			}
			return nil
		}},
		{"endpoint", nil, func(r *renderedOrders) error {
			if r.settings["PGHOST"] != PostgresName || r.settings["PGPORT"] != "5432" {
				return fmt.Errorf("PGHOST %q PGPORT %q, want the bundled PostgreSQL", r.settings["PGHOST"], r.settings["PGPORT"])
			}
			return nil
		}},
		{"endpoint repointed", func(p *Params) { p.DatabaseHost, p.DatabasePort = "toxiproxy", 15432 }, func(r *renderedOrders) error {
			if r.settings["PGHOST"] != "toxiproxy" || r.settings["PGPORT"] != "15432" {
				return fmt.Errorf("PGHOST %q PGPORT %q, want toxiproxy:15432", r.settings["PGHOST"], r.settings["PGPORT"])
			}
			return nil
		}},
		{"generated secrets", nil, func(r *renderedOrders) error {
			want := map[string]map[string]string{
				"orders-keys":  {"keys.txt": "abc:shop-1\n"},
				"orders-db":    {"DB_USER": "orders", "DB_NAME": "orders", "DB_PASS": "dpw"},
				"orders-db-ca": {"ca.crt": string(testTLS(t).CACertPEM)},
			}
			for name, data := range want {
				if !maps.Equal(r.secrets[name], data) {
					return fmt.Errorf("Secret %s holds %v, want %v", name, r.secrets[name], data)
				}
			}
			if r.secrets["postgres-credentials"]["POSTGRES_DB"] != "orders" {
				return fmt.Errorf("PostgreSQL's database %q, want the target's", r.secrets["postgres-credentials"]["POSTGRES_DB"])
			}
			return nil
		}},
		{"database role", nil, func(r *renderedOrders) error {
			pod := r.postgres.Spec.Template.Spec
			var user string
			for _, e := range pod.Containers[0].Env {
				if e.Name == "POSTGRES_APP_USER" {
					user = hashSuffix.ReplaceAllString(e.ValueFrom.SecretKeyRef.Name, "") + "/" + e.ValueFrom.SecretKeyRef.Key
				}
			}
			secret, key := fileSecret(pod, pod.Containers[0], "/etc/postgres-credentials/app-password")
			if pw := hashSuffix.ReplaceAllString(secret, "") + "/" + key; user != "orders-db/DB_USER" || pw != "orders-db/DB_PASS" {
				return fmt.Errorf("PostgreSQL creates the role from %s and password %s, want orders-db's DB_USER and DB_PASS", user, pw)
			}
			return nil
		}},
		{"policies", nil, func(r *renderedOrders) error {
			pg := r.policies[PostgresName].Spec.Ingress[0].From[0].PodSelector.MatchLabels
			att := r.policies["stampede-attacker"].Spec.Egress[0]
			if !maps.Equal(pg, map[string]string{"app": "orders"}) || !maps.Equal(att.To[0].PodSelector.MatchLabels, pg) ||
				att.Ports[0].Port.IntValue() != 8000 {
				return fmt.Errorf("postgres admits %v; attackers reach %v on %v: want the Service's selector, port 8000", pg, att.To[0].PodSelector.MatchLabels, att.Ports[0].Port)
			}
			return nil
		}},
		{"cluster IP", nil, func(r *renderedOrders) error {
			if r.service.Spec.Type != corev1.ServiceTypeClusterIP {
				return fmt.Errorf("Service type %s", r.service.Spec.Type)
			}
			return nil
		}},
		{"node port", func(p *Params) { p.NodePort = true }, func(r *renderedOrders) error {
			if s := r.service.Spec; s.Type != corev1.ServiceTypeNodePort || s.Ports[0].NodePort != NodePort {
				return fmt.Errorf("Service %s node port %d, want NodePort %d", s.Type, s.Ports[0].NodePort, NodePort)
			}
			return nil
		}},
		{"no token service", nil, func(r *renderedOrders) error {
			y, err := RenderYAML(ordersParams(t, "safe"))
			if err != nil {
				return err
			}
			if i := strings.Index(strings.ToLower(string(y)), "tokensvc"); i >= 0 {
				return fmt.Errorf("the render names the token service: %q", string(y[max(0, i-80):i+20]))
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ordersParams(t, "safe")
			if tc.change != nil {
				tc.change(&p)
			}
			if err := tc.check(renderOrders(t, p)); err != nil {
				t.Error(err)
			}
		})
	}
}

// secretsOrConfig is the ConfigMap name's data (rendered under its hashed name).
func (r *renderedOrders) secretsOrConfig(name string) map[string]string {
	for _, o := range r.objs {
		if o.GetKind() == "ConfigMap" && hashSuffix.ReplaceAllString(o.GetName(), "") == name {
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			return data
		}
	}
	return nil
}

// The orders target's refusals name its own fields: a repoint it can take, a setting its modes
// own, a directory that does not provide its workload.
func TestRenderOrdersRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(p *Params)
		want   string
	}{
		"mode's key":     {func(p *Params) { p.Config = map[string]string{"ORDERS_LOCKING": "none"} }, "sets it; choose the mode"},
		"endpoint key":   {func(p *Params) { p.Config = map[string]string{"PGHOST": "x"} }, "database endpoint"},
		"token service":  {func(p *Params) { p.Kustomize = "tokensvc" }, "no Deployment named orders-api"},
		"unknown mode":   {func(p *Params) { p.Mode = "atomic" }, "want one of safe, racy"},
		"its own image":  {func(p *Params) { p.Images = map[string]string{"stampede/tokensvc": "a/t:1"} }, "image for example/orders: empty"},
		"no keys":        {func(p *Params) { p.Secrets = nil }, "secret orders-keys: empty"},
		"no such secret": {func(p *Params) { p.Secrets["tokensvc-api-keys"] = []byte("x") }, "not one the target generates"},
	} {
		t.Run(name, func(t *testing.T) {
			p := ordersParams(t, "safe")
			tc.change(&p)
			_, err := Render(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Render = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if got := Contract(ordersParams(t, "safe").Target); !strings.Contains(got, "Deployment named orders-api with a container api") ||
		!strings.Contains(got, "PGHOST and PGPORT of the ConfigMap orders-settings") || !strings.Contains(got, "orders-keys, key keys.txt") {
		t.Errorf("Contract:\n%s", got)
	}
	if got := slices.Collect(maps.Keys(ordersParams(t, "safe").Secrets)); len(got) != 1 {
		t.Errorf("fixture secrets %q", got)
	}
}
