package framework

import (
	"testing"
	"time"

	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// The probe pod must pass the restricted standard the suite's namespaces enforce, or the API
// server refuses it and the network-policy spec cannot run; judged by Kubernetes' own evaluator.
func TestProbePodRestricted(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		t.Fatal(err)
	}
	pod := probePod("ns", "p", "stampede/attacker:1", map[string]string{"x": "y"}, "10.0.0.1:5432", 5*time.Second, "")
	for _, r := range eval.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec) {
		if !r.Allowed {
			t.Errorf("restricted: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
		}
	}
	if pod.Labels["app.kubernetes.io/name"] != ProbeName || pod.Labels["x"] != "y" {
		t.Errorf("labels %v", pod.Labels)
	}
	if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Error("the probe mounts a service account token")
	}
}
