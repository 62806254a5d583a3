package framework

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func runNamespace(name, runID string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{RunLabel: runID, ManagedByLabel: ManagedBy}}}
}

// A namespace that exists already is refused in one line, never adopted; one without the run's
// labels is not created.
func TestCreateNamespaceNeverAdopts(t *testing.T) {
	ctx := context.Background()
	theirs := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stampede-atomic-abcdef", UID: "theirs"}}
	cs := fake.NewClientset(theirs)
	_, err := createNamespace(ctx, cs, runNamespace("stampede-atomic-abcdef", "r1"), "r1")
	if err == nil || !strings.Contains(err.Error(), "never adopts") || strings.Contains(err.Error(), "\n") {
		t.Errorf("existing name: %v, want one line saying it is never adopted", err)
	}
	got, _ := cs.CoreV1().Namespaces().Get(ctx, "stampede-atomic-abcdef", metav1.GetOptions{})
	if len(got.Labels) != 0 {
		t.Errorf("the existing namespace was changed: labels %v", got.Labels)
	}
	if _, err := createNamespace(ctx, cs, runNamespace("n2", "other"), "r1"); err == nil {
		t.Error("a namespace without this run's label was created")
	}
	if _, err := createNamespace(ctx, cs, runNamespace("n3", "r1"), "r1"); err != nil {
		t.Errorf("a fresh namespace: %v", err)
	}
}

// Only the namespace this run created, with its UID and labels, is deleted.
func TestDeleteOwnNamespaceOnly(t *testing.T) {
	ctx := context.Background()
	mine := runNamespace("mine", "r1")
	mine.UID = "uid-mine"
	otherRun := runNamespace("other-run", "r2")
	otherRun.UID = "uid-other"
	unlabelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled", UID: "uid-unlabelled"}}
	recreated := runNamespace("recreated", "r1")
	recreated.UID = "uid-new"
	cs := fake.NewClientset(mine, otherRun, unlabelled, recreated)
	for _, tc := range []struct {
		name    string
		uid     types.UID
		deleted bool
	}{
		{"other-run", "uid-other", false}, // right UID, another run's label
		{"unlabelled", "uid-unlabelled", false},
		{"recreated", "uid-old", false}, // this run's labels, not the namespace it created
		{"mine", "", false},             // never created by this Deployment
		{"mine", "uid-mine", true},
		{"gone", "uid-gone", false},
	} {
		err := deleteOwnNamespace(ctx, cs, tc.name, tc.uid, "r1")
		_, getErr := cs.CoreV1().Namespaces().Get(ctx, tc.name, metav1.GetOptions{})
		if deleted := getErr != nil; deleted != tc.deleted && tc.name != "gone" {
			t.Errorf("%s (uid %q): deleted %v, want %v (err %v)", tc.name, tc.uid, deleted, tc.deleted, err)
		}
		if !tc.deleted && tc.name != "gone" && err == nil {
			t.Errorf("%s (uid %q): no error saying why it was not deleted", tc.name, tc.uid)
		}
	}
}

func TestRunRoleSubject(t *testing.T) {
	if s := runRoleSubject("system:serviceaccount:ops:stampede"); s.Kind != "ServiceAccount" || s.Namespace != "ops" || s.Name != "stampede" {
		t.Errorf("service account subject %+v", s)
	}
	if s := runRoleSubject("alice@example.com"); s.Kind != "User" || s.Name != "alice@example.com" || s.APIGroup != "rbac.authorization.k8s.io" {
		t.Errorf("user subject %+v", s)
	}
}
