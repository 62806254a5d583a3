package manifests

import (
	"fmt"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func kindNames(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

// TestDatabaseObjects: a database started ahead (framework's) is one render's DatabaseObjects,
// adopted by a later render of another mode only when SameDatabase says so. For both targets
// the objects are PostgreSQL's StatefulSet, Service and the Secrets its pod reads, the same in
// every mode; the storage, a component or another password makes them differ.
func TestDatabaseObjects(t *testing.T) {
	db := func(t *testing.T, p Params) []*unstructured.Unstructured {
		t.Helper()
		objs, err := Render(p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := DatabaseObjects(objs)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	key := newKeyPEM(t)
	for _, tc := range []struct {
		name   string
		params func(mode string) Params
		modes  []string
	}{
		{"tokensvc", func(mode string) Params { return tokensvcParams(t, mode, key) }, wantStrategies},
		{"orders", func(mode string) Params { return ordersParams(t, mode) }, []string{"safe", "racy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := db(t, tc.params(tc.modes[0]))
			names := kindNames(first)
			if len(names) < 3 || names[0] != "StatefulSet/"+PostgresName || names[1] != "Service/"+PostgresName {
				t.Fatalf("database objects %q: want the StatefulSet, the Service, then what the pod reads", names)
			}
			for _, n := range names[2:] {
				if n[:len("Secret/")] != "Secret/" && n[:len("ConfigMap/")] != "ConfigMap/" {
					t.Errorf("database object %s: want only Secrets and ConfigMaps besides PostgreSQL's own", n)
				}
			}
			for _, mode := range tc.modes[1:] {
				if !SameDatabase(first, db(t, tc.params(mode))) {
					t.Errorf("mode %s: the database's objects differ from mode %s's", mode, tc.modes[0])
				}
			}
			for what, change := range map[string]func(*Params){
				"emptyDir":       func(p *Params) { p.DatabaseStorage = StorageEmptyDir },
				"component":      func(p *Params) { p.Components = []string{ComponentPostgresAsyncCommit} },
				"password":       func(p *Params) { p.DatabasePassword += "x" },
				"superuser":      func(p *Params) { p.PostgresPassword += "x" },
				"namespace":      func(p *Params) { p.Namespace += "x" },
				"postgres image": func(p *Params) { p.PostgresImage = "a/pg:2" },
			} {
				p := tc.params(tc.modes[0])
				change(&p)
				if SameDatabase(first, db(t, p)) {
					t.Errorf("another %s: SameDatabase still says the same", what)
				}
			}
		})
	}
}

// TestDatabaseObjectsRefs: every kind of reference a pod template has to a Secret or a
// ConfigMap brings that object along, once; a reference to one the render lacks is an error.
func TestDatabaseObjectsRefs(t *testing.T) {
	obj := func(kind, name string) *unstructured.Unstructured {
		o := &unstructured.Unstructured{Object: map[string]any{}}
		o.SetKind(kind)
		o.SetName(name)
		return o
	}
	sts := obj("StatefulSet", PostgresName)
	sts.Object["spec"] = map[string]any{"template": map[string]any{"spec": map[string]any{
		"initContainers": []any{map[string]any{"envFrom": []any{map[string]any{"configMapRef": map[string]any{"name": "c1"}}}}},
		"containers": []any{map[string]any{
			"env": []any{
				map[string]any{"valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "s1"}}},
				map[string]any{"valueFrom": map[string]any{"configMapKeyRef": map[string]any{"name": "c2"}}},
				map[string]any{"valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "s1"}}},
			},
			"envFrom": []any{map[string]any{"secretRef": map[string]any{"name": "s2"}}},
		}},
		"volumes": []any{
			map[string]any{"secret": map[string]any{"secretName": "s3"}},
			map[string]any{"configMap": map[string]any{"name": "c3"}},
			map[string]any{"projected": map[string]any{"sources": []any{
				map[string]any{"secret": map[string]any{"name": "s4"}},
				map[string]any{"configMap": map[string]any{"name": "c4"}},
			}}},
		},
	}}}
	objs := []*unstructured.Unstructured{obj("Deployment", "app"), sts, obj("Service", PostgresName), obj("Secret", "unrelated")}
	for _, n := range []string{"c1", "c2", "c3", "c4"} {
		objs = append(objs, obj("ConfigMap", n))
	}
	for _, n := range []string{"s1", "s2", "s3", "s4"} {
		objs = append(objs, obj("Secret", n))
	}
	got, err := DatabaseObjects(objs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"StatefulSet/postgres", "Service/postgres", "ConfigMap/c1", "Secret/s1", "ConfigMap/c2", "Secret/s2",
		"Secret/s3", "ConfigMap/c3", "Secret/s4", "ConfigMap/c4"}
	if names := kindNames(got); !slices.Equal(names, want) {
		t.Errorf("database objects %q, want %q", names, want)
	}
	if _, err := DatabaseObjects(slices.DeleteFunc(slices.Clone(objs), func(o *unstructured.Unstructured) bool {
		return o.GetName() == "s4"
	})); err == nil || fmt.Sprint(err) != "StatefulSet postgres refers to Secret s4, which the render lacks" {
		t.Errorf("a missing Secret: err %v", err)
	}
}
