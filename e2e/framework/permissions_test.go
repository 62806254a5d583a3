package framework

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMissingPermission(t *testing.T) {
	for msg, want := range map[string]string{
		`pods "x" is forbidden: User "system:serviceaccount:ops:stampede" cannot create resource "pods/portforward" in API group "" in the namespace "stampede-atomic-1a2b3c"`:                                                                                                                                    "missing permission: create pods/portforward (API group core) in namespace stampede-atomic-1a2b3c, for system:serviceaccount:ops:stampede:",
		`namespaces is forbidden: User "alice" cannot create resource "namespaces" in API group "" at the cluster scope`:                                                                                                                                                                                          "missing permission: create namespaces (API group core) at the cluster scope, for alice:",
		`deployments.apps "api" is forbidden: User "bob" cannot patch resource "deployments" in API group "apps" in the namespace "ns"`:                                                                                                                                                                           "missing permission: patch deployments (API group apps) in namespace ns, for bob:",
		"rolebindings.rbac.authorization.k8s.io \"stampede-run\" is forbidden: user \"system:serviceaccount:ops:stampede\" (groups=[\"system:serviceaccounts\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}": "missing permission: bind clusterroles (API group rbac.authorization.k8s.io) at the cluster scope, for system:serviceaccount:ops:stampede:",
		`forbidden: User "bob" cannot get path "/metrics"`:                                                        "missing permission: get path /metrics (non-resource URL), for bob:",
		`pods "p" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true`:                   "",
		`namespaces "x" is forbidden: unable to create new content in namespace x because it is being terminated`: "",
	} {
		got := MissingPermission(msg)
		if want == "" && got != "" || want != "" && !strings.HasPrefix(got, want) || strings.Contains(got, "\n") {
			t.Errorf("MissingPermission(%q)\n = %q\nwant prefix %q, one line", msg, got, want)
		}
	}
}

// The recorder passes a 403 on unchanged and records only an authorizer's refusal.
func TestRecordDenials(t *testing.T) {
	body := map[string]string{
		"/rbac": `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden: User \"u\" cannot list resource \"pods\" in API group \"\" in the namespace \"ns\"","reason":"Forbidden","code":403}`,
		"/psa":  `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"p\" is forbidden: violates PodSecurity \"restricted:latest\"","reason":"Forbidden","code":403}`,
	}
	// The typed clients get protobuf: the k8s envelope around a Status whose message is plain bytes.
	st := metav1.Status{Status: "Failure", Reason: metav1.StatusReasonForbidden, Code: 403,
		Message: `nodes is forbidden: User "u" cannot list resource "nodes" in API group "" at the cluster scope`}
	pb, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	body["/protobuf"] = "k8s\x00" + string(pb)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, body[r.URL.Path])
	}))
	defer srv.Close()
	denials = deniedRights{}
	hc := &http.Client{Transport: recordDenials(http.DefaultTransport)}
	for _, path := range []string{"/rbac", "/psa", "/rbac", "/protobuf"} {
		resp, err := hc.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if string(got) != body[path] || resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d %q passed on, want 403 %q", path, resp.StatusCode, got, body[path])
		}
	}
	lines := MissingPermissions()
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "missing permission: list pods (API group core) in namespace ns, for u:") ||
		!strings.HasPrefix(lines[1], "missing permission: list nodes (API group core) at the cluster scope, for u:") {
		t.Errorf("MissingPermissions() = %q, want in order one line for list pods (JSON), one for list nodes (protobuf)", lines)
	}
}
