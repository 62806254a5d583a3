package traffic

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// Request is the create request of a target, neutral of its API: where it goes, the headers and
// JSON body it carries with placeholders ({{tenant}}, {{key}}, {{email}}, {{name}}) that each
// customer fills, and how it carries its tenant's key. It travels to the attacker pods as JSON,
// so that they send the target's request without knowing its API.
type Request struct {
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
}

// Auth is the header that carries a tenant's key: as "Bearer KEY" when Bearer, else the key alone.
type Auth struct {
	Header string `json:"header,omitempty"`
	Bearer bool   `json:"bearer,omitempty"`
}

// RequestOf is the create request that a target's create and identity sections describe. An
// identity header that create.headers leaves out carries the placeholder alone: the key's
// {{key}}, the tenant's {{tenant}} (an Idempotency-Key header, say).
func RequestOf(c target.Create, id target.Identity) Request {
	r := Request{Method: c.Method, Path: c.Path, Headers: maps.Clone(c.Headers), Body: maps.Clone(c.Body)}
	if r.Headers == nil {
		r.Headers = map[string]string{}
	}
	for _, s := range []struct {
		src         target.Source
		placeholder string
	}{{id.Key, "{{key}}"}, {id.Tenant, "{{tenant}}"}} {
		if s.src.Header != "" && !hasHeader(r.Headers, s.src.Header) {
			r.Headers[s.src.Header] = s.placeholder
		}
	}
	if a := c.Auth; a != nil {
		r.Auth = Auth{Header: a.Header, Bearer: a.Scheme == "bearer"}
		if r.Auth.Bearer && r.Auth.Header == "" {
			r.Auth.Header = AuthorizationHeader
		}
	}
	return r
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// Validate says what is wrong with r, all at once.
func (r Request) Validate() error {
	var errs []error
	if r.Method == "" {
		errs = append(errs, errors.New("request: no method"))
	}
	if !strings.HasPrefix(r.Path, "/") {
		errs = append(errs, fmt.Errorf("request path %q: want one starting with /", r.Path))
	}
	if r.Auth.Bearer && r.Auth.Header == "" {
		errs = append(errs, errors.New("request auth: a bearer key needs its header"))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Headers)) {
		if strings.EqualFold(name, RequestHeader) || (r.Auth.Header != "" && strings.EqualFold(name, r.Auth.Header)) {
			errs = append(errs, fmt.Errorf("request header %s: the suite sets it", name))
		}
	}
	return errors.Join(errs...)
}

// values are the placeholders' values for c.
func values(c history.Customer) map[string]string {
	return map[string]string{"tenant": c.MerchantID, "key": c.ExternalID, "email": c.Email, "name": c.Name}
}

// URL is the request's URL for c under base, its path's placeholders filled and escaped.
func (r Request) URL(base string, c history.Customer) string {
	esc := values(c)
	for k, v := range esc {
		esc[k] = url.PathEscape(v)
	}
	return strings.TrimSuffix(base, "/") + target.Expand(r.Path, esc)
}

// Header is the request's headers for c, without its key (keyring.header adds it). A body goes
// as application/json unless the headers say otherwise.
func (r Request) Header(c history.Customer) http.Header {
	h := http.Header{}
	if r.Body != nil {
		h.Set("Content-Type", "application/json")
	}
	v := values(c)
	for name, tmpl := range r.Headers {
		if s := target.Expand(tmpl, v); s != "" {
			h.Set(name, s)
		}
	}
	return h
}

// BodyOf is the JSON body of c's requests: the same for every request of c, which are identical
// first registrations.
func (r Request) BodyOf(c history.Customer) []byte {
	if r.Body == nil {
		return nil
	}
	v := values(c)
	members := make(map[string]string, len(r.Body))
	for name, tmpl := range r.Body {
		if s := target.Expand(tmpl, v); s != "" {
			members[name] = s
		}
	}
	b, err := json.Marshal(members) // members in the order of their names
	if err != nil {
		panic(fmt.Sprintf("marshal the request body: %v", err)) // strings always marshal
	}
	return b
}

// keyValue is the value of the auth header that carries key.
func (a Auth) keyValue(key string) string {
	if a.Bearer {
		return "Bearer " + key
	}
	return key
}
