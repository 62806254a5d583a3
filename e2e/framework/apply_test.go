package framework

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
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

// The workloads are applied only once everything else is in place (a pod starts with its Secrets
// and NetworkPolicies there), and not at all when something else failed.
func TestApplyWorkloadsLast(t *testing.T) {
	mapper := meta.NewDefaultRESTMapper(nil)
	kinds := []schema.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "Deployment"}, {Version: "v1", Kind: "Secret"},
		{Group: "apps", Version: "v1", Kind: "StatefulSet"}, {Version: "v1", Kind: "ConfigMap"},
		{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}, {Version: "v1", Kind: "Service"},
	}
	var objs []*unstructured.Unstructured
	for _, k := range kinds {
		mapper.Add(k, meta.RESTScopeNamespace)
		o := &unstructured.Unstructured{}
		o.SetGroupVersionKind(k)
		o.SetName("x")
		o.SetNamespace("ns")
		objs = append(objs, o)
	}
	for _, failing := range []string{"", "secrets"} {
		dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
		var mu sync.Mutex
		var order []string
		dyn.PrependReactor("patch", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, a.GetResource().Resource)
			if a.GetResource().Resource == failing {
				return true, nil, errors.New("refused")
			}
			return true, &unstructured.Unstructured{}, nil
		})
		err := (&Applier{dyn: dyn, mapper: mapper}).Apply(context.Background(), objs)
		if (err != nil) != (failing != "") {
			t.Fatalf("failing %q: err %v", failing, err)
		}
		workloads := map[string]bool{"deployments": true, "statefulsets": true}
		seen := 0
		for i, r := range order {
			if workloads[r] {
				seen++
				continue
			}
			if seen > 0 {
				t.Errorf("failing %q: %s applied after a workload (order %v, at %d)", failing, r, order, i)
			}
		}
		want := len(objs)
		if failing != "" {
			want = len(objs) - 2
		}
		if len(order) != want || (failing != "" && seen != 0) {
			t.Errorf("failing %q: applied %v, want %d objects and no workload after a failure", failing, order, want)
		}
	}
}
