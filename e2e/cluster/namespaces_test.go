package cluster

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func ns(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// Only the run's own namespaces go: not another run's, not one that merely says stampede, not
// one a team labelled with the run id by hand without the managed-by label.
func TestDeleteRunNamespaces(t *testing.T) {
	cs := fake.NewClientset(
		ns("stampede-atomic-1", map[string]string{RunLabel: "r1", ManagedByLabel: ManagedBy}),
		ns("stampede-legacy-2", map[string]string{RunLabel: "r1", ManagedByLabel: ManagedBy}),
		ns("stampede-atomic-3", map[string]string{RunLabel: "r2", ManagedByLabel: ManagedBy}),
		ns("payments", map[string]string{RunLabel: "r1"}),
		ns("default", nil),
	)
	var out strings.Builder
	n, err := DeleteRunNamespaces(context.Background(), cs, "r1", &out)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, %v; want 2", n, err)
	}
	left, _ := cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	var names []string
	for _, n := range left.Items {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "default,payments,stampede-atomic-3" {
		t.Errorf("left %v", names)
	}
	if _, err := DeleteRunNamespaces(context.Background(), cs, "", &out); err == nil {
		t.Error("an empty run id must be refused, not match everything")
	}
	if _, err := ExistingClient("/k", ""); err == nil {
		t.Error("a kubeconfig without a named context must be refused")
	}
}
