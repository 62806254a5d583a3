package framework

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// The applier refuses what the API server maps to the cluster scope, whatever kustomize knew of
// the kind: a Namespace (the suite creates its own) and a ClusterRole a team's manifests brought.
func TestApplyRefusesClusterScoped(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	mapper.Add(schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, meta.RESTScopeRoot)
	a := &Applier{dyn: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), mapper: mapper}
	for _, kind := range []struct{ apiVersion, kind string }{{"v1", "Namespace"}, {"rbac.authorization.k8s.io/v1", "ClusterRole"}} {
		o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": kind.apiVersion, "kind": kind.kind,
			"metadata": map[string]any{"name": "x"}}}
		err := a.Apply(context.Background(), []*unstructured.Unstructured{o})
		if err == nil || !strings.Contains(err.Error(), "cluster-scoped") {
			t.Errorf("%s: %v, want a refusal saying it is cluster-scoped", kind.kind, err)
		}
	}
}
