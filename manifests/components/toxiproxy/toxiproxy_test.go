package toxiproxy

import (
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestRender(t *testing.T) {
	objs, err := Render("stampede-atomic-abc123", "stampede/toxiproxy:v2.12.0-0297e9501db6")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
		if o.GetNamespace() != "stampede-atomic-abc123" {
			t.Errorf("%s/%s in namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
	if got := strings.Join(kinds, ","); got != "ConfigMap,Deployment,Service,NetworkPolicy" {
		t.Errorf("kinds in order %s, want ConfigMap,Deployment,Service,NetworkPolicy (configuration before the pod that mounts it)", got)
	}

	var dep appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(objs[1].Object, &dep, true); err != nil {
		t.Fatalf("the Deployment does not decode strictly: %v", err)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != "stampede/toxiproxy:v2.12.0-0297e9501db6" {
		t.Errorf("image %s", c.Image)
	}
	if !strings.Contains(strings.Join(c.Command, " "), "-config /etc/toxiproxy/proxies.json") {
		t.Errorf("command %v does not read the proxies", c.Command)
	}

	var cm corev1.ConfigMap
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(objs[0].Object, &cm, true); err != nil {
		t.Fatal(err)
	}
	var proxies []struct{ Name, Listen, Upstream string }
	if err := json.Unmarshal([]byte(cm.Data["proxies.json"]), &proxies); err != nil {
		t.Fatalf("proxies.json: %v", err)
	}
	if len(proxies) != 1 || proxies[0].Name != ProxyName || proxies[0].Listen != "0.0.0.0:5432" || proxies[0].Upstream != "postgres:5432" {
		t.Errorf("proxies %+v", proxies)
	}

	var svc corev1.Service
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(objs[2].Object, &svc, true); err != nil {
		t.Fatal(err)
	}
	ports := map[int32]bool{}
	for _, p := range svc.Spec.Ports {
		ports[p.Port] = true
	}
	// The API can re-point the proxy: the suite reaches it through a port-forward to the pod,
	// and the Service does not offer it to other pods.
	if !ports[ProxyPort] || ports[APIPort] || svc.Name != Name {
		t.Errorf("service %s ports %v, want %d and not the API's %d", svc.Name, svc.Spec.Ports, ProxyPort, APIPort)
	}
}

func TestRenderRefuses(t *testing.T) {
	for _, tc := range []struct{ ns, image string }{
		{"Bad_NS", "stampede/toxiproxy:v1"},
		{"ok", ""},
		{"ok", "stampede/toxiproxy"},
		{"ok", "stampede/toxiproxy:latest"},
	} {
		if _, err := Render(tc.ns, tc.image); err == nil {
			t.Errorf("Render(%q, %q) succeeded", tc.ns, tc.image)
		}
	}
}
