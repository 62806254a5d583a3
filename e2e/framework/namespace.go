package framework

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// RunRoleBinding names the RoleBinding that grants Config.RunRole in a spec's namespace.
const RunRoleBinding = "stampede-run"

// splitNamespace takes the one Namespace object out of a render: the suite creates it itself,
// and applies the rest into it.
func splitNamespace(objs []*unstructured.Unstructured) (*corev1.Namespace, []*unstructured.Unstructured, error) {
	var ns *corev1.Namespace
	var rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			rest = append(rest, o)
			continue
		}
		if ns != nil {
			return nil, nil, fmt.Errorf("render: Namespaces %s and %s: want one", ns.Name, o.GetName())
		}
		ns = &corev1.Namespace{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, ns); err != nil {
			return nil, nil, fmt.Errorf("render: Namespace %s: %w", o.GetName(), err)
		}
	}
	if ns == nil {
		return nil, nil, errors.New("render: no Namespace")
	}
	return ns, rest, nil
}

// createNamespace creates ns, labelled with the run's owner labels, and returns its UID. A
// namespace of that name that exists already is never adopted: the run fails with one line.
func createNamespace(ctx context.Context, cs kubernetes.Interface, ns *corev1.Namespace, runID string) (types.UID, error) {
	if ns.Labels[RunLabel] != runID || ns.Labels[ManagedByLabel] != ManagedBy {
		return "", fmt.Errorf("create namespace %s: it lacks the run's labels %s=%s, %s=%s", ns.Name, RunLabel, runID, ManagedByLabel, ManagedBy)
	}
	created, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("namespace %s exists already: stampede never adopts a namespace it did not create (another run, or a name taken by chance: run again)", ns.Name)
	}
	if err != nil {
		return "", fmt.Errorf("create namespace %s: %w", ns.Name, err)
	}
	return created.UID, nil
}

// ownNamespace reports whether the namespace name is the one this run created: the UID it was
// created with and both owner labels, the run's id included. Only then may the run delete it.
func ownNamespace(ns *corev1.Namespace, uid types.UID, runID string) error {
	switch {
	case uid == "":
		return fmt.Errorf("namespace %s: this run did not create it", ns.Name)
	case ns.UID != uid:
		return fmt.Errorf("namespace %s: UID %s, not the %s this run created", ns.Name, ns.UID, uid)
	case ns.Labels[RunLabel] != runID || ns.Labels[ManagedByLabel] != ManagedBy:
		return fmt.Errorf("namespace %s: labels %s=%q, %s=%q, not this run's (%s)", ns.Name,
			RunLabel, ns.Labels[RunLabel], ManagedByLabel, ns.Labels[ManagedByLabel], runID)
	}
	return nil
}

// deleteOwnNamespace deletes the namespace name only if ownNamespace says this run created it,
// with the UID as a precondition, so that a namespace recreated under the name meanwhile is not
// touched. A namespace already gone is no error.
func deleteOwnNamespace(ctx context.Context, cs kubernetes.Interface, name string, uid types.UID, runID string) error {
	ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read namespace %s before deleting it: %w", name, err)
	}
	if err := ownNamespace(ns, uid, runID); err != nil {
		return fmt.Errorf("not deleting: %w", err)
	}
	err = cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// runRoleSubject is who the suite runs as, as an RBAC subject: a ServiceAccount when the API
// server says so (system:serviceaccount:<namespace>:<name>), else a User.
func runRoleSubject(username string) rbacv1.Subject {
	if rest, ok := strings.CutPrefix(username, "system:serviceaccount:"); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok {
			return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
		}
	}
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: username}
}

// bindRunRole binds the ClusterRole role to the suite's own identity in namespace only, and waits
// until the API server's authorizer applies it (its RBAC cache follows the binding within
// moments; the first request after the create can still be refused).
func bindRunRole(ctx context.Context, cs kubernetes.Interface, namespace, role string) error {
	who, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("bind %s in %s: who am I (SelfSubjectReview): %w", role, namespace, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: RunRoleBinding, Namespace: namespace,
			Labels: map[string]string{ManagedByLabel: ManagedBy}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{runRoleSubject(who.Status.UserInfo.Username)},
	}
	if _, err := cs.RbacV1().RoleBindings(namespace).Create(ctx, rb, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("bind ClusterRole %s to %s in %s: %w", role, who.Status.UserInfo.Username, namespace, err)
	}
	// Every run role grants reading the namespace's pods: the first thing the suite waits on.
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "list", Resource: "pods"}}}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return r.Status.Allowed, nil
	})
	if err != nil {
		return fmt.Errorf("ClusterRole %s bound in %s does not let %s list pods there after 30s (does it exist, and grant that?): %w",
			role, namespace, who.Status.UserInfo.Username, err)
	}
	return nil
}
