// Package request is the create request of a target, neutral of its API: a template of where it
// goes, which headers and JSON body it carries, with placeholders that each customer fills
// ({{tenant}}, {{key}}, {{email}}, {{name}}), and how it carries its tenant's key. A target
// file's create and identity sections make one (target.RequestOf); the traffic fills it per
// customer, in this process or in the attacker pods, which get it as JSON and so know no
// target's API. It imports nothing of the target file's, so that the attacker stays small.
package request

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// AuthorizationHeader is the header of a bearer key, "Bearer <key>".
const AuthorizationHeader = "Authorization"

// Template is a create request with placeholders.
type Template struct {
	Method string `json:"method"`
	// Path may hold placeholders; their values are path-escaped.
	Path string `json:"path"`
	// Headers are sent with every request; a header whose value expands to "" is left out.
	Headers map[string]string `json:"headers,omitempty"`
	// Auth is how a request carries its tenant's key; the zero Auth sends none.
	Auth Auth `json:"auth,omitzero"`
	// Body holds the members of the JSON object sent, each a string; a member whose value
	// expands to "" is left out, so that a customer without an email sends no email member.
	// Members go in the order of their names: JSON objects are unordered.
	Body map[string]string `json:"body"`
	// Observe names the answer's headers the recorder reads beyond the API's own: the serving
	// pod and the handler's interval (the target's observability); empty names are not read.
	Observe Observe `json:"observe,omitzero"`
}

// Observe names the headers in which the target tells which pod served an answer and when its
// handler worked on it (Server-Timing's handler metric with start and end).
type Observe struct {
	PodHeader      string `json:"podHeader,omitempty"`
	IntervalHeader string `json:"intervalHeader,omitempty"`
}

// Auth is the header that carries a tenant's key: as "Bearer KEY" when Bearer, else the key alone.
type Auth struct {
	Header string `json:"header,omitempty"`
	Bearer bool   `json:"bearer,omitempty"`
}

// Value is the value of the auth header that carries key.
func (a Auth) Value(key string) string {
	if a.Bearer {
		return "Bearer " + key
	}
	return key
}

// Validate says what is wrong with t, all at once; reserved are headers the sender sets itself.
func (t Template) Validate(reserved ...string) error {
	var errs []error
	if t.Method == "" {
		errs = append(errs, errors.New("request: no method"))
	}
	if !strings.HasPrefix(t.Path, "/") {
		errs = append(errs, fmt.Errorf("request path %q: want one starting with /", t.Path))
	}
	if t.Auth.Bearer && t.Auth.Header == "" {
		errs = append(errs, errors.New("request auth: a bearer key needs its header"))
	}
	if t.Auth.Header != "" {
		reserved = append(reserved, t.Auth.Header)
	}
	for _, name := range slices.Sorted(maps.Keys(t.Headers)) {
		if slices.ContainsFunc(reserved, func(r string) bool { return strings.EqualFold(r, name) }) {
			errs = append(errs, fmt.Errorf("request header %s: the sender sets it", name))
		}
	}
	return errors.Join(errs...)
}

// placeholder matches {{name}}, as the target file writes it.
var placeholder = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// Expand fills the placeholders of s from values; an unknown name is left as written.
func Expand(s string, values map[string]string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := values[strings.TrimSpace(m[2:len(m)-2])]; ok {
			return v
		}
		return m
	})
}

// Values are the placeholders' values for c.
func Values(c history.Customer) map[string]string {
	return map[string]string{"tenant": c.Tenant, "key": c.EntityKey, "email": c.Email, "name": c.Name}
}

// URL is the request's URL for c under base, its path's placeholders filled and escaped.
func (t Template) URL(base string, c history.Customer) string {
	esc := Values(c)
	for k, v := range esc {
		esc[k] = url.PathEscape(v)
	}
	return strings.TrimSuffix(base, "/") + Expand(t.Path, esc)
}

// Header is the request's headers for c, without its key (the sender adds it). A body goes as
// application/json unless the headers say otherwise.
func (t Template) Header(c history.Customer) http.Header {
	h := http.Header{}
	if t.Body != nil {
		h.Set("Content-Type", "application/json")
	}
	v := Values(c)
	for name, tmpl := range t.Headers {
		if s := Expand(tmpl, v); s != "" {
			h.Set(name, s)
		}
	}
	return h
}

// BodyOf is the JSON body of c's requests: the same for every request of c, which are identical
// first registrations.
func (t Template) BodyOf(c history.Customer) []byte {
	if t.Body == nil {
		return nil
	}
	v := Values(c)
	members := make(map[string]string, len(t.Body))
	for name, tmpl := range t.Body {
		if s := Expand(tmpl, v); s != "" {
			members[name] = s
		}
	}
	b, err := json.Marshal(members) // members in the order of their names
	if err != nil {
		panic(fmt.Sprintf("marshal the request body: %v", err)) // strings always marshal
	}
	return b
}
