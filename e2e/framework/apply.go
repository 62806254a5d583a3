package framework

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the server-side apply field manager of everything the suite applies.
const FieldManager = "stampede-e2e"

// Applier applies rendered objects with server-side apply.
type Applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

// NewApplier returns an Applier for the cluster behind cfg.
func NewApplier(cfg *rest.Config) (*Applier, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// Apply server-side applies objs in order (dependencies first, as rendered) into the namespace
// the suite created for them, without forcing: a field another manager owns is never taken
// over, and such a conflict is an error naming the object and the manager. Namespaces and other
// cluster-scoped objects are refused: the suite creates its namespace itself (never adopting one),
// and touches nothing outside it.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("map %s: %w", gvk, err)
		}
		if m.Scope.Name() != meta.RESTScopeNameNamespace {
			return fmt.Errorf("apply %s %s: cluster-scoped: stampede applies only objects inside the namespace it created", o.GetKind(), o.GetName())
		}
		data, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("encode %s/%s: %w", o.GetKind(), o.GetName(), err)
		}
		ri := a.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			if apierrors.IsConflict(err) {
				return fmt.Errorf("apply %s %s/%s: fields owned by another manager, not taken over: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
			return fmt.Errorf("apply %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}
