package framework

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// denials are the rights the API server's authorizer refused this process, as MissingPermission
// lines: a run missing a right ends with one line naming it (MissingPermissions), wherever the
// refusal surfaced.
var denials deniedRights

// MissingPermissions lists, each once and in the order they were first refused, the rights the
// API server refused this run: the first is the one to grant first, later ones may follow from it.
func MissingPermissions() []string { return denials.lines() }

type deniedRights struct {
	mu   sync.Mutex
	seen []string
}

func (d *deniedRights) add(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.seen, line) {
		d.seen = append(d.seen, line)
	}
}

func (d *deniedRights) lines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.seen)
}

// recordDenials wraps an API client's transport: every 403 whose Status says an authorizer
// refused a right is recorded in denials, and the response passes on unchanged.
func recordDenials(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusForbidden || resp.Body == nil {
			return resp, err
		}
		// A Status is small; the limit keeps an odd proxy's page from being read whole.
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr != nil {
			return resp, nil
		}
		// A JSON Status (what port-forwards get) has its message escaped; the typed clients ask
		// for protobuf, where the message's bytes stand as they are.
		msg := string(body)
		var st metav1.Status
		if json.Unmarshal(body, &st) == nil {
			msg = st.Message
		}
		if line := MissingPermission(msg); line != "" {
			denials.add(line)
		}
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// denied matches the authorizer's refusal in a Forbidden Status's message (the API server's
// forbiddenMessage): who, which verb, on which resource and group, in which namespace or at the
// cluster scope, or on which non-resource path.
var denied = regexp.MustCompile(`User "([^"]*)" cannot (\S+) (?:resource "([^"]*)" in API group "([^"]*)"(?: in the namespace "([^"]*)"| at the cluster scope)?|path "([^"]*)")`)

// escalation matches RBAC's refusal of a binding whose rights the binder does not hold.
var escalation = regexp.MustCompile(`user "([^"]*)" \(groups=.*\) is attempting to grant RBAC permissions not currently held`)

// MissingPermission turns the message of a Forbidden from the API server's authorizer into one
// line naming the right that is missing and who lacks it; "" when msg is no such refusal (a
// Pod Security admission's Forbidden, for one, is not about rights).
func MissingPermission(msg string) string {
	if m := escalation.FindStringSubmatch(msg); m != nil {
		// RBAC's escalation check: binding a role needs bind on it, or every right it grants.
		return fmt.Sprintf("missing permission: bind clusterroles (API group rbac.authorization.k8s.io) at the cluster scope, for %s: "+
			"binding a role needs bind on it by name; manifests/rbac grants what existing mode needs (README: Rights existing mode needs)", m[1])
	}
	m := denied.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	user, verb, resource, group, namespace, path := m[1], m[2], m[3], m[4], m[5], m[6]
	where := "at the cluster scope"
	switch {
	case path != "":
		resource, where = "path "+path, "(non-resource URL)"
	case namespace != "":
		where = "in namespace " + namespace
	}
	if group == "" && path == "" {
		group = "core"
	}
	if group != "" {
		resource += " (API group " + group + ")"
	}
	return fmt.Sprintf("missing permission: %s %s %s, for %s: manifests/rbac grants what existing mode needs (README: Rights existing mode needs)",
		verb, resource, where, user)
}
