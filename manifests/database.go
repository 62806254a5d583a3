package manifests

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

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
		if !slices.Contains(out, o) {
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

// refPath is where an item of a pod template (an env or envFrom entry, a volume, a projected
// volume's source) names a Secret or a ConfigMap.
type refPath struct {
	kind string
	path []string
}

var (
	envRefs     = []refPath{{"Secret", []string{"valueFrom", "secretKeyRef", "name"}}, {"ConfigMap", []string{"valueFrom", "configMapKeyRef", "name"}}}
	envFromRefs = []refPath{{"Secret", []string{"secretRef", "name"}}, {"ConfigMap", []string{"configMapRef", "name"}}}
	volumeRefs  = []refPath{{"Secret", []string{"secret", "secretName"}}, {"ConfigMap", []string{"configMap", "name"}}}
	sourceRefs  = []refPath{{"Secret", []string{"secret", "name"}}, {"ConfigMap", []string{"configMap", "name"}}}
)

// podTemplateRefs lists the Secrets and ConfigMaps a workload's pod template refers to: its
// containers' env and envFrom, and its volumes (projected ones included), in order, once each.
func podTemplateRefs(workload *unstructured.Unstructured) ([]objRef, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(workload.Object, "spec", "template", "spec")
	spec, isMap := v.(map[string]any)
	if err != nil || !ok || !isMap {
		return nil, errors.New("no pod template")
	}
	var refs []objRef
	addAll := func(items []any, paths []refPath) {
		for _, item := range items {
			m, _ := item.(map[string]any)
			for _, p := range paths {
				n, found, _ := unstructured.NestedString(m, p.path...)
				if r := (objRef{p.kind, n}); found && n != "" && !slices.Contains(refs, r) {
					refs = append(refs, r)
				}
			}
		}
	}
	for _, field := range []string{"initContainers", "containers"} {
		cs, _, _ := nestedSlice(spec, field)
		for _, c := range cs {
			c, _ := c.(map[string]any)
			envs, _, _ := nestedSlice(c, "env")
			addAll(envs, envRefs)
			froms, _, _ := nestedSlice(c, "envFrom")
			addAll(froms, envFromRefs)
		}
	}
	vols, _, _ := nestedSlice(spec, "volumes")
	for _, v := range vols {
		addAll([]any{v}, volumeRefs)
		v, _ := v.(map[string]any)
		sources, _, _ := nestedSlice(v, "projected", "sources")
		addAll(sources, sourceRefs)
	}
	return refs, nil
}
