package manifests

import (
	"errors"
	"fmt"
	"maps"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// DatabaseObjects are the objects of a render that PostgreSQL needs to start: its StatefulSet,
// its Service, and every Secret and ConfigMap its pod template refers to. Applied alone into
// the render's namespace, they start the database before anything of the target exists; the
// rest of the same render, applied later, completes the deployment without touching them.
func DatabaseObjects(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	sts := find(objs, "StatefulSet", PostgresName)
	if sts == nil {
		return nil, fmt.Errorf("no StatefulSet %s", PostgresName)
	}
	svc := find(objs, "Service", PostgresName)
	if svc == nil {
		return nil, fmt.Errorf("no Service %s", PostgresName)
	}
	refs, err := podTemplateRefs(sts)
	if err != nil {
		return nil, fmt.Errorf("StatefulSet %s: %w", PostgresName, err)
	}
	out := []*unstructured.Unstructured{sts, svc}
	for _, ref := range refs {
		o := find(objs, ref.kind, ref.name)
		if o == nil {
			return nil, fmt.Errorf("StatefulSet %s refers to %s %s, which the render lacks", PostgresName, ref.kind, ref.name)
		}
		if !containsObj(out, o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// SameDatabase reports whether two renders' DatabaseObjects are the same but for their mode
// label, which Render puts on every object's metadata and never on a pod template: applying b
// over a namespace where a runs changes no pod.
func SameDatabase(a, b []*unstructured.Unstructured) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(withoutModeLabel(a[i]), withoutModeLabel(b[i])) {
			return false
		}
	}
	return true
}

// withoutModeLabel is o's content without ModeLabel on its metadata; o is not changed (a
// render's values are not all JSON's types, which DeepCopy refuses).
func withoutModeLabel(o *unstructured.Unstructured) map[string]any {
	obj := maps.Clone(o.Object)
	md, _ := obj["metadata"].(map[string]any)
	md = maps.Clone(md)
	if l, ok := md["labels"].(map[string]any); ok {
		l = maps.Clone(l)
		delete(l, ModeLabel)
		md["labels"] = l
	}
	obj["metadata"] = md
	return obj
}

type objRef struct{ kind, name string }

// podTemplateRefs lists the Secrets and ConfigMaps a workload's pod template refers to: its
// containers' env and envFrom, and its volumes (projected ones included), in order, once each.
func podTemplateRefs(workload *unstructured.Unstructured) ([]objRef, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(workload.Object, "spec", "template", "spec")
	spec, isMap := v.(map[string]any)
	if err != nil || !ok || !isMap {
		return nil, errors.New("no pod template")
	}
	var refs []objRef
	add := func(kind string, name any) {
		n, _ := name.(string)
		if n == "" {
			return
		}
		r := objRef{kind, n}
		for _, have := range refs {
			if have == r {
				return
			}
		}
		refs = append(refs, r)
	}
	for _, field := range []string{"initContainers", "containers"} {
		cs, _, _ := nestedSlice(spec, field)
		for _, c := range cs {
			c, _ := c.(map[string]any)
			envs, _, _ := nestedSlice(c, "env")
			for _, e := range envs {
				e, _ := e.(map[string]any)
				if n, ok, _ := unstructured.NestedString(e, "valueFrom", "secretKeyRef", "name"); ok {
					add("Secret", n)
				}
				if n, ok, _ := unstructured.NestedString(e, "valueFrom", "configMapKeyRef", "name"); ok {
					add("ConfigMap", n)
				}
			}
			froms, _, _ := nestedSlice(c, "envFrom")
			for _, f := range froms {
				f, _ := f.(map[string]any)
				if n, ok, _ := unstructured.NestedString(f, "secretRef", "name"); ok {
					add("Secret", n)
				}
				if n, ok, _ := unstructured.NestedString(f, "configMapRef", "name"); ok {
					add("ConfigMap", n)
				}
			}
		}
	}
	vols, _, _ := nestedSlice(spec, "volumes")
	for _, v := range vols {
		v, _ := v.(map[string]any)
		if n, ok, _ := unstructured.NestedString(v, "secret", "secretName"); ok {
			add("Secret", n)
		}
		if n, ok, _ := unstructured.NestedString(v, "configMap", "name"); ok {
			add("ConfigMap", n)
		}
		sources, _, _ := nestedSlice(v, "projected", "sources")
		for _, s := range sources {
			s, _ := s.(map[string]any)
			if n, ok, _ := unstructured.NestedString(s, "secret", "name"); ok {
				add("Secret", n)
			}
			if n, ok, _ := unstructured.NestedString(s, "configMap", "name"); ok {
				add("ConfigMap", n)
			}
		}
	}
	return refs, nil
}

func containsObj(objs []*unstructured.Unstructured, o *unstructured.Unstructured) bool {
	for _, have := range objs {
		if have == o {
			return true
		}
	}
	return false
}

