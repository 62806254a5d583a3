package check

// The target's create API as the rules read it: where a success keeps the entity's id, its
// created flag and its credential, what each outcome and each error promises a client, how the
// credential is verified, and what the outcome counter counts. Built from a target file
// (APIFromTarget), so that no rule knows one service.
import (
	"fmt"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// API is what the rules hold a target's answers to. It is saved with the params (judge.json), so
// that a re-check judges by the API the run was judged by.
type API struct {
	// Target names the target the API was read from.
	Target string `json:"target"`
	// ID, Created and Credential are JSON pointers into a success's body: the entity's id, its
	// created flag ("" for none) and its credential ("" for none).
	ID         string `json:"id"`
	Created    string `json:"created,omitempty"`
	Credential string `json:"credential,omitempty"`
	// New, Existing and Replayed are the promises of a success, by outcome; Replayed nil when
	// the API has no replay of its own.
	New      Promise  `json:"new"`
	Existing Promise  `json:"existing"`
	Replayed *Promise `json:"replayed,omitempty"`
	// ErrorCode is the JSON pointer to an error body's code; Errors the API's errors by code.
	ErrorCode string         `json:"error_code"`
	Errors    []ErrorPromise `json:"errors"`
	// Verifier is how a credential is verified; Claims, for VerifierJWT, the claims held to the
	// request's fields (the sub is the row's id and iat its creation, whatever the mapping).
	Verifier VerifierKind `json:"verifier"`
	Claims   []ClaimField `json:"claims,omitempty"`
	// Issuer, Audience and TTL are the JWT verifier's settings as the target configures them
	// unless a mode sets them; JWKSPath is where it publishes its keys. What Check holds tokens
	// to is Params' (the run's configuration, required): these are for the caller to set it from.
	Issuer   string        `json:"jwt_issuer,omitempty"`
	Audience string        `json:"jwt_audience,omitempty"`
	TTL      time.Duration `json:"jwt_ttl_ns,omitempty"`
	JWKSPath string        `json:"jwks_path,omitempty"`
	// Fields are the request body's members and what each carries, as the target's body
	// template writes them ("{{tenant}}"); Agree the members the truth's rows must hold as
	// sent (Row.Agree), sorted.
	Fields map[string]string `json:"fields"`
	Agree  []string          `json:"agree,omitempty"`
	// Counter is the outcome counter the pods keep (RuleMetrics); nil for none.
	Counter *Counter `json:"counter,omitempty"`
	// Contracts are the contracts of the target's modes (ContractOf), one of which judges a run
	// (Params.Contract); absent in runs saved before they were saved, which were runs of the
	// token service (SavedParams.Params).
	Contracts []Contract `json:"contracts,omitempty"`
	// Names are the target's words (target.Target.Nouns) that the prose of a judgement reads;
	// absent in runs saved before they were saved, which read the caller's (SavedParams.Params).
	Names Names `json:"names,omitzero"`
}

// Nouns are a's Names, the neutral words where it has none.
func (a *API) Nouns() Names { return a.Names.WithDefaults() }

// Promise is what the API promises a client for one outcome: the exact status, the media type,
// the body's members and the headers.
type Promise struct {
	// Outcome names it in findings: new, existing, replayed, or the error code.
	Outcome string `json:"outcome"`
	// Status is the exact status code: a 201 is not a promised 200, whatever a 2xx means to HTTP.
	Status int `json:"status"`
	// ContentType is the media type of the body; a charset=utf-8 parameter, the only charset
	// JSON has (RFC 8259 8.1), is accepted. "" leaves it unjudged.
	ContentType string `json:"content_type,omitempty"`
	// Members are the body's members, all of them and nothing else; nil leaves them unjudged.
	Members []Member `json:"members,omitempty"`
	// RetryAfter says the answer carries Retry-After. RuleContract holds answers to it, with the
	// mode's line for the code, which says the same; RuleAPIShape does not judge it twice.
	RetryAfter bool `json:"retry_after,omitempty"`
	// CacheControl, when set, is a directive the answer's Cache-Control must hold (no-store on a
	// credential, RFC 6749 5.1).
	CacheControl string `json:"cache_control,omitempty"`
	// WWWAuthenticate, when set, is the scheme the answer's WWW-Authenticate must challenge with
	// (RFC 9110 11.6.1: a 401 carries one).
	WWWAuthenticate string `json:"www_authenticate,omitempty"`
}

// Member is one member of a body and its type: MemberString (""), "nonempty" (a non-empty
// string), "boolean", "number" or "any" (target.MemberTypes).
type Member struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
}

// ErrorPromise is one error of the API: its promise (Outcome is its code), the class the rules
// judge it by, and whether it is a clean answer to a valid request at all.
type ErrorPromise struct {
	Promise
	Class string `json:"class"`
	// Clean says a valid request may get it (then whether the mode may give it then is
	// RuleContract's); an error of another request (invalid, unauthenticated, forbidden) or a
	// documented bug is not.
	Clean bool `json:"clean"`
}

// Counter is the Prometheus counter that counts each create request once by outcome, and the
// outcome label's value for each answer a client can see.
type Counter struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	// New, Existing and Replayed are the values counted for those successes, NoID for a
	// success naming no entity; Errors by error code; InvalidInput for any other 4xx code.
	New          string            `json:"new"`
	Existing     string            `json:"existing"`
	Replayed     string            `json:"replayed,omitempty"`
	NoID         string            `json:"no_id,omitempty"`
	Errors       map[string]string `json:"errors,omitempty"`
	InvalidInput string            `json:"invalid_input,omitempty"`
}

// The member types besides MemberString.
const (
	MemberString   = ""
	MemberNonEmpty = "nonempty"
	MemberBoolean  = "boolean"
	MemberNumber   = "number"
	MemberAny      = "any"
)

// The classes of error that are never a clean answer to a valid request: they answer another
// request (a malformed one, another tenant's).
var notCleanClasses = []string{"invalid", "unauthenticated", "forbidden"}

// APIFromTarget reads the API a target file describes, or says what in it the checker cannot
// judge by.
func APIFromTarget(t *target.Target) (API, error) {
	r, e := t.Response, t.Errors
	api := API{Target: t.Name, ID: r.ID, Created: r.Created, Credential: r.Credential, ErrorCode: e.CodePointer,
		Verifier: VerifierEqual, Fields: maps.Clone(t.Create.Body), Names: t.Nouns()}
	var err error
	if api.New, err = promise("new", r.Outcomes.New.Status, r.Outcomes.New.ContentType, r.Outcomes.New.Members, r.Outcomes.New.Headers); err != nil {
		return API{}, err
	}
	if api.Existing, err = promise("existing", r.Outcomes.Existing.Status, r.Outcomes.Existing.ContentType, r.Outcomes.Existing.Members, r.Outcomes.Existing.Headers); err != nil {
		return API{}, err
	}
	if a := r.Outcomes.Replayed; a != nil {
		p, err := promise("replayed", a.Status, a.ContentType, a.Members, a.Headers)
		if err != nil {
			return API{}, err
		}
		api.Replayed = &p
	}
	api.labelSuccesses()
	if api.Errors, err = errorPromises(e); err != nil {
		return API{}, err
	}
	if v := r.Verifier; v != nil && v.Type == "jwt" {
		if err := api.readJWT(v); err != nil {
			return API{}, err
		}
	}
	api.Agree = slices.Sorted(maps.Keys(t.Truth.Columns.Agree))
	if o := t.Observability; o != nil && o.OutcomeCounter != nil && o.OutcomeCounter.Values != nil {
		c, v := o.OutcomeCounter, o.OutcomeCounter.Values
		api.Counter = &Counter{Name: c.Name, Label: c.OutcomeLabel, New: v.New, Existing: v.Existing, Replayed: v.Replayed,
			NoID: v.NoID, Errors: maps.Clone(v.Errors), InvalidInput: v.InvalidInput}
	}
	for i := range t.Modes {
		c, err := ContractOf(&api, &t.Modes[i])
		if err != nil {
			return API{}, fmt.Errorf("api: %w", err)
		}
		api.Contracts = append(api.Contracts, c)
	}
	return api, nil
}

// errorPromises reads the promises of the target's error answers: each its own members, or
// the errors' common ones, and clean unless the target says otherwise or its class answers
// another request (notCleanClasses).
func errorPromises(e target.Errors) ([]ErrorPromise, error) {
	var ps []ErrorPromise
	for _, a := range e.Answers {
		members := a.Members
		if members == nil {
			members = e.Members
		}
		p, err := promise(a.Code, a.Status, e.ContentType, members, a.Headers)
		if err != nil {
			return nil, err
		}
		p.RetryAfter = a.RetryAfter
		clean := (a.Clean == nil || *a.Clean) && !slices.Contains(notCleanClasses, a.Class)
		ps = append(ps, ErrorPromise{Promise: p, Class: a.Class, Clean: clean})
	}
	return ps, nil
}

// readJWT reads a jwt verifier's settings into api: its JWKS, issuer, audience and TTL, and
// the claims that carry a request's field. It refuses algorithms the checker cannot verify.
func (api *API) readJWT(v *target.Verifier) error {
	if !slices.Contains(v.Algorithms, "EdDSA") {
		return fmt.Errorf("api: the jwt verifier checks EdDSA signatures only, the target's algorithms are %v", v.Algorithms)
	}
	api.Verifier, api.JWKSPath = VerifierJWT, v.JWKSPath
	api.Issuer, api.Audience = settingDefault(v.Issuer), settingDefault(v.Audience)
	if ttl := settingDefault(v.TTL); ttl != "" {
		var err error
		if api.TTL, err = time.ParseDuration(ttl); err != nil {
			return fmt.Errorf("api: ttl: %w", err)
		}
	}
	for _, claim := range slices.Sorted(maps.Keys(v.Claims)) {
		if field, ok := strings.CutPrefix(v.Claims[claim], "request."); ok {
			api.Claims = append(api.Claims, ClaimField{Claim: claim, Field: field})
		}
	}
	return nil
}

// promise reads one outcome's promise from the target file's terms.
func promise(outcome string, status int, contentType string, members []string, headers map[string]string) (Promise, error) {
	p := Promise{Outcome: outcome, Status: status, ContentType: contentType}
	for _, m := range members {
		name, typ, _ := strings.Cut(m, ":")
		if typ == "string" {
			typ = MemberString
		}
		p.Members = append(p.Members, Member{Name: name, Type: typ})
	}
	for name, v := range headers {
		switch http.CanonicalHeaderKey(name) {
		case "Cache-Control":
			p.CacheControl = v
		case "Www-Authenticate":
			p.WWWAuthenticate = v
		default:
			return Promise{}, fmt.Errorf("api: %s: no promise about header %q can be judged", outcome, name)
		}
	}
	return p, nil
}

// check says why the API cannot judge anything.
func (a *API) check() error {
	var problems []string
	if a.ID == "" {
		problems = append(problems, "no id pointer")
	}
	if a.ErrorCode == "" {
		problems = append(problems, "no error code pointer")
	}
	if a.Verifier == VerifierJWT && a.Credential == "" {
		problems = append(problems, "a jwt verifier without a credential pointer")
	}
	for _, p := range []string{a.ID, a.Created, a.Credential, a.ErrorCode} {
		if p != "" && !strings.HasPrefix(p, "/") {
			problems = append(problems, fmt.Sprintf("%q is not a JSON pointer", p))
		}
	}
	for _, p := range append([]Promise{a.New, a.Existing}, a.errorPromises()...) {
		if p.ContentType == "" {
			continue
		}
		if _, _, err := mime.ParseMediaType(p.ContentType); err != nil {
			problems = append(problems, fmt.Sprintf("%s: content type %q", p.Outcome, p.ContentType))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("check params: api: %s", strings.Join(problems, ", "))
	}
	return nil
}

func (a *API) errorPromises() []Promise {
	out := make([]Promise, len(a.Errors))
	for i := range a.Errors {
		out[i] = a.Errors[i].Promise
	}
	return out
}

// errorPromise returns the API's error for code, preferring the one of status; nil for a code the
// API does not have.
func (a *API) errorPromise(code string, status int) *ErrorPromise {
	var found *ErrorPromise
	for i := range a.Errors {
		if e := &a.Errors[i]; e.Outcome == code {
			if e.Status == status {
				return e
			}
			if found == nil {
				found = e
			}
		}
	}
	return found
}

// codesOfClass names the API's error codes of class answered with status, joined with " or "
// ("" for none): what RuleAuth wants of a refusal.
func (a *API) codesOfClass(class string, status int) string {
	var codes []string
	for _, e := range a.Errors {
		if e.Class == class && e.Status == status && !slices.Contains(codes, e.Outcome) {
			codes = append(codes, e.Outcome)
		}
	}
	return strings.Join(codes, " or ")
}

// isClass says whether code, answered with status, is one of the API's errors of class.
func (a *API) isClass(code string, status int, class string) bool {
	e := a.errorPromise(code, status)
	return e != nil && e.Status == status && e.Class == class
}

// success returns the promise a 2xx answer is held to: by its created flag when the API has one
// and the body says it (true new; false existing, or replayed when only its status matches),
// otherwise the first outcome whose status is the answer's, new when none is.
func (a *API) success(status int, created *bool) *Promise {
	if created != nil && *created {
		return &a.New
	}
	candidates := []*Promise{&a.New, &a.Existing}
	if created != nil {
		candidates = candidates[1:]
	}
	if a.Replayed != nil {
		candidates = append(candidates, a.Replayed)
	}
	for _, p := range candidates {
		if p.Status == status {
			return p
		}
	}
	return candidates[0]
}

// fieldValue returns how to read, from a customer, the value the request sends in body member
// field; ok false for a member the request does not have.
func (a *API) fieldValue(field string) (func(history.Customer) string, bool) {
	tmpl, ok := a.Fields[field]
	if !ok {
		return nil, false
	}
	// The common case, one placeholder alone, reads the customer without expanding.
	switch tmpl {
	case "{{tenant}}":
		return func(c history.Customer) string { return c.Tenant }, true
	case "{{key}}":
		return func(c history.Customer) string { return c.EntityKey }, true
	case "{{email}}":
		return func(c history.Customer) string { return c.Email }, true
	case "{{name}}":
		return func(c history.Customer) string { return c.Name }, true
	}
	return func(c history.Customer) string {
		return target.Expand(tmpl, map[string]string{"tenant": c.Tenant, "key": c.EntityKey, "email": c.Email, "name": c.Name})
	}, true
}

// statusTellsCreated says the API, without a created flag, tells a new entity by its status
// alone: no other success outcome has the new one's.
func (a *API) statusTellsCreated() bool {
	return a.Created == "" && a.New.Status != a.Existing.Status && (a.Replayed == nil || a.Replayed.Status != a.New.Status)
}

// tellsCreated says a success tells whether it created the entity (RuleCreated judges it).
func (a *API) tellsCreated() bool { return a.Created != "" || a.statusTellsCreated() }

// pointerName is the last reference token of a JSON pointer: the member it names.
func pointerName(pointer string) string {
	return pointer[strings.LastIndexByte(pointer, '/')+1:]
}

// labelSuccesses names the success promises in findings: by their outcome when they differ, and
// when they are one promise by the member that makes the answer worth having (the credential,
// or else the id), as "token answer" says for the token service.
func (a *API) labelSuccesses() {
	same := func(p Promise) bool {
		p.Outcome = a.New.Outcome
		return reflect.DeepEqual(p, a.New)
	}
	if !same(a.Existing) || (a.Replayed != nil && !same(*a.Replayed)) {
		return
	}
	label := pointerName(a.Credential)
	if a.Credential == "" {
		label = pointerName(a.ID)
	}
	a.New.Outcome, a.Existing.Outcome = label, label
	if a.Replayed != nil {
		a.Replayed.Outcome = label
	}
}

func settingDefault(s *target.Setting) string {
	if s == nil {
		return ""
	}
	return s.Default
}

// CredentialOf returns the credential a success's body carries (the API's credential
// pointer), ok false when the API has none or the body holds no string there.
func (a *API) CredentialOf(body string) (string, bool) {
	if a.Credential == "" {
		return "", false
	}
	s, found, ok := stringMember(body, a.Credential)
	return s, found && ok
}
