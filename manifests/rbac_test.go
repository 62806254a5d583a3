package manifests

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// manifests/rbac, as `kubectl apply -k` renders it: each rule one resource (the proof removes
// them one at a time, and a missing-permission line names one), bind only by name, and the
// guard's identity the binding's subject.
func TestRBAC(t *testing.T) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "rbac")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]rbacv1.ClusterRole{}
	var binding rbacv1.ClusterRoleBinding
	var guard admissionv1.ValidatingAdmissionPolicy
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		var into any
		var cr rbacv1.ClusterRole
		switch r.GetKind() {
		case "ClusterRole":
			into = &cr
		case "ClusterRoleBinding":
			into = &binding
		case "ValidatingAdmissionPolicy":
			into = &guard
		default:
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(m, into, true); err != nil {
			t.Fatalf("%s %s: %v", r.GetKind(), r.GetName(), err)
		}
		if r.GetKind() == "ClusterRole" {
			roles[cr.Name] = cr
		}
	}
	if problems := rbacProblems(roles, binding, guard); len(problems) > 0 {
		t.Errorf("manifests/rbac:\n%s", strings.Join(problems, "\n"))
	}
	// Each check fails on purpose.
	for name, breakIt := range map[string]func(){
		"wildcard":      func() { roles["stampede-run"].Rules[0].Verbs = []string{"*"} },
		"two resources": func() { roles["stampede-run"].Rules[0].Resources = []string{"pods", "secrets"} },
		"bind any":      func() { r := roles["stampede-existing"]; r.Rules[len(r.Rules)-1].ResourceNames = nil },
		"guard user":    func() { binding.Subjects[0].Name = "someone-else" },
		"no run role":   func() { delete(roles, "stampede-run") },
	} {
		saved, savedBinding := cloneRoles(roles), *binding.DeepCopy()
		breakIt()
		if len(rbacProblems(roles, binding, guard)) == 0 {
			t.Errorf("%s: no problem found", name)
		}
		roles, binding = saved, savedBinding
	}
}

func cloneRoles(roles map[string]rbacv1.ClusterRole) map[string]rbacv1.ClusterRole {
	c := map[string]rbacv1.ClusterRole{}
	for k, v := range roles {
		c[k] = *v.DeepCopy()
	}
	return c
}

// rbacProblems says what is wrong with the roles, their binding and the guard.
func rbacProblems(roles map[string]rbacv1.ClusterRole, binding rbacv1.ClusterRoleBinding, guard admissionv1.ValidatingAdmissionPolicy) []string {
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, name := range []string{"stampede-existing", "stampede-run"} {
		if _, ok := roles[name]; !ok {
			errorf("no ClusterRole %s", name)
		}
	}
	for name, cr := range roles {
		for _, rule := range cr.Rules {
			if len(rule.Resources) != 1 || slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
				errorf("%s: rule %+v: want one resource, no wildcard", name, rule)
			}
			if slices.Contains(rule.Verbs, "bind") && (len(rule.ResourceNames) != 1 || rule.ResourceNames[0] != "stampede-run") {
				errorf("%s: bind %+v: want only stampede-run, by name", name, rule)
			}
			if slices.ContainsFunc(rule.Verbs, func(v string) bool { return v == "escalate" || v == "impersonate" }) {
				errorf("%s: rule %+v escalates", name, rule)
			}
		}
	}
	if len(binding.Subjects) != 1 || binding.RoleRef.Name != "stampede-existing" {
		errorf("binding %+v: want stampede-existing to one subject", binding)
		return problems
	}
	s := binding.Subjects[0]
	user := "system:serviceaccount:" + s.Namespace + ":" + s.Name
	if len(guard.Spec.MatchConditions) != 1 || !strings.Contains(guard.Spec.MatchConditions[0].Expression, "'"+user+"'") {
		errorf("the guard's match conditions %+v do not name the bound identity %s", guard.Spec.MatchConditions, user)
	}
	return problems
}
