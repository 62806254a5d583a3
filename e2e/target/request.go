package target

import (
	"maps"

	"github.com/stampede-e2e/stampede/e2e/request"
)

// RequestOf is the create request that a target's create and identity sections describe. An
// identity header that create.headers leaves out carries the placeholder alone: the key's
// {{key}}, the tenant's {{tenant}} (an Idempotency-Key header, say).
func RequestOf(c Create, id Identity) request.Template {
	r := request.Template{Method: c.Method, Path: c.Path, Headers: maps.Clone(c.Headers), Body: maps.Clone(c.Body)}
	if r.Headers == nil {
		r.Headers = map[string]string{}
	}
	for _, s := range []struct {
		src         Source
		placeholder string
	}{{id.Key, "{{key}}"}, {id.Tenant, "{{tenant}}"}} {
		if _, ok := headerValue(r.Headers, s.src.Header); s.src.Header != "" && !ok {
			r.Headers[s.src.Header] = s.placeholder
		}
	}
	if a := c.Auth; a != nil {
		r.Auth = request.Auth{Header: a.Header, Bearer: a.Scheme == "bearer"}
		if r.Auth.Bearer && r.Auth.Header == "" {
			r.Auth.Header = request.AuthorizationHeader
		}
	}
	return r
}

// Request is t's create request (RequestOf).
func (t *Target) Request() request.Template {
	r := RequestOf(t.Create, t.Identity)
	if o := t.Observability; o != nil {
		r.Observe = request.Observe{PodHeader: o.PodHeader, IntervalHeader: o.HandlerIntervalHeader}
	}
	return r
}
