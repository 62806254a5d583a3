package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The labels of every namespace the suite creates: which run made it, and that stampede did.
// They are the owner record on a cluster stampede did not create (existing mode): only
// namespaces carrying both, with the run's id, are ever deleted there.
const (
	RunLabel       = "stampede.io/run"
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "stampede"
)

// ExistingClient connects to the cluster of kubeconfig's context, which must be named: the
// kubeconfig's current context is never used.
func ExistingClient(kubeconfig, context string) (kubernetes.Interface, error) {
	if kubeconfig == "" || context == "" {
		return nil, errors.New("name the kubeconfig and its context (KUBECONFIG=... CONTEXT=...): the current context is never used")
	}
	cfg, err := existingRESTConfig(kubeconfig, context)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// DeleteRunNamespaces deletes the namespaces that the run runID created (both owner labels),
// and no other, reporting each on out. A run interrupted before its own cleanup leaves them.
func DeleteRunNamespaces(ctx context.Context, cs kubernetes.Interface, runID string, out io.Writer) (int, error) {
	if runID == "" {
		return 0, errors.New("delete run namespaces: a run id is needed")
	}
	sel := fmt.Sprintf("%s=%s,%s=%s", RunLabel, runID, ManagedByLabel, ManagedBy)
	list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return 0, fmt.Errorf("list namespaces of run %s: %w", runID, err)
	}
	var errs []error
	n := 0
	for _, ns := range list.Items {
		// The selector already says so; checked again so that no server-side surprise widens it.
		if ns.Labels[RunLabel] != runID || ns.Labels[ManagedByLabel] != ManagedBy {
			continue
		}
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w", ns.Name, err))
			continue
		}
		n++
		fmt.Fprintf(out, "deleted namespace %s (run %s)\n", ns.Name, runID)
	}
	return n, errors.Join(errs...)
}
