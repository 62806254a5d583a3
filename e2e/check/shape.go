package check

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// Promise is what the token service's API promises a client for one outcome of POST /v1/tokens
// (service/README.md, "API"): the exact status, the body's members and the headers. Every answer
// is also JSON (ContentTypeJSON).
type Promise struct {
	// Outcome is OutcomeToken for a registration's answer, new customer or existing, and the error
	// code (the body's "error") otherwise.
	Outcome string
	// Status is the exact status code: a 201 is not the promised 200, whatever a 2xx means to HTTP.
	Status int
	// Fields are the body's members, all of them and nothing else. "created" is a JSON boolean,
	// every other member a string, "message" a non-empty one.
	Fields []string
	// RetryAfter says the answer carries Retry-After. RuleContract holds answers to it, with the
	// strategy's line for the code, which says the same; RuleAPIShape does not judge it twice.
	RetryAfter bool
	// CacheControl, when set, is a directive the answer's Cache-Control must hold: no-store on
	// a token (RFC 6749 5.1), so that no cache between the service and its client keeps one.
	CacheControl string
	// WWWAuthenticate, when set, is the scheme the answer's WWW-Authenticate must challenge
	// with (RFC 9110 11.6.1: a 401 carries one; RFC 6750: Bearer).
	WWWAuthenticate string
}

// OutcomeToken is the Promise.Outcome of a registration's answer, new customer or existing.
const OutcomeToken = "token"

// ContentTypeJSON is the media type of every answer of the API. The service sends it without
// parameters; a charset=utf-8 parameter, the only charset JSON has (RFC 8259 8.1), changes
// nothing for a client and is accepted; any other parameter or type is not.
const ContentTypeJSON = "application/json"

// errorFields are the members of every error body.
var errorFields = []string{"error", "message"}

// APIShape is the service's documented API (service/README.md, "API" and "Status codes") as the
// table RuleAPIShape holds every answer to, one Promise per outcome.
var APIShape = []Promise{
	{Outcome: OutcomeToken, Status: http.StatusOK, Fields: []string{"token", "customer_id", "created"}, CacheControl: "no-store"},
	{Outcome: "unauthenticated", Status: http.StatusUnauthorized, Fields: errorFields, WWWAuthenticate: "Bearer"},
	{Outcome: "invalid_json", Status: http.StatusBadRequest, Fields: errorFields},
	{Outcome: "invalid_body", Status: http.StatusBadRequest, Fields: errorFields},
	{Outcome: "unknown_field", Status: http.StatusBadRequest, Fields: []string{"error", "message", "field"}},
	{Outcome: "invalid_field", Status: http.StatusBadRequest, Fields: []string{"error", "message", "field"}},
	{Outcome: "not_found", Status: http.StatusNotFound, Fields: errorFields},
	{Outcome: "method_not_allowed", Status: http.StatusMethodNotAllowed, Fields: errorFields},
	{Outcome: "body_too_large", Status: http.StatusRequestEntityTooLarge, Fields: errorFields},
	{Outcome: "unsupported_media_type", Status: http.StatusUnsupportedMediaType, Fields: errorFields},
	{Outcome: "forbidden", Status: http.StatusForbidden, Fields: errorFields},
	{Outcome: "conflict", Status: http.StatusConflict, Fields: errorFields, RetryAfter: true},
	{Outcome: "empty_subject", Status: http.StatusInternalServerError, Fields: errorFields},
	{Outcome: "internal", Status: http.StatusInternalServerError, Fields: errorFields},
	{Outcome: "overloaded", Status: http.StatusServiceUnavailable, Fields: errorFields, RetryAfter: true},
	{Outcome: "unavailable", Status: http.StatusServiceUnavailable, Fields: errorFields, RetryAfter: true},
}

// The clauses of RuleAPIShape, as Finding.Line names them: which promise an answer broke.
const (
	ShapeStatus          = "status"
	ShapeContentType     = "content-type"
	ShapeBody            = "body-members"
	ShapeCacheControl    = "cache-control"
	ShapeWWWAuthenticate = "www-authenticate"
)

// tokenPromise is APIShape's first row.
var tokenPromise = &APIShape[0]

// promiseOf returns the row of APIShape for an error code; nil for a code the API does not have.
func promiseOf(code string) *Promise {
	for i := range APIShape[1:] {
		if APIShape[1+i].Outcome == code {
			return &APIShape[1+i]
		}
	}
	return nil
}

// judgeTokenShape holds a 2xx answer to the token Promise; members is what is wrong with its
// body's members ("" for nothing), judged once per distinct body (tokenMembersProblem).
func judgeTokenShape(op *history.Op, members string) []findingOps {
	return shapeFindings(op, tokenPromise, members)
}

// judgeErrorShape holds a non-2xx answer to the Promise of the error code its body names. A body
// that is no error object, or names a code the API does not have, is RuleCleanError's or
// RuleAuth's (every non-2xx is one of theirs): no promise of the table applies to it.
func judgeErrorShape(op *history.Op) []findingOps {
	code, members, ok := decodeErrorBody(op.Body)
	if !ok {
		return nil
	}
	p := promiseOf(code)
	if p == nil {
		return nil
	}
	return shapeFindings(op, p, members)
}

// shapeFindings holds op to p, one finding per promise broken; the headers only when the
// recorder kept them (history.Op.HeadersRecorded). Retry-After is RuleContract's: each of its
// lines for a code that promises one requires it (TestContractKeepsTheRetryAfterPromise).
func shapeFindings(op *history.Op, p *Promise, members string) []findingOps {
	var out []findingOps
	broke := func(clause, format string, args ...any) {
		out = append(out, shapeFinding(op, clause, fmt.Sprintf("%s answer: ", p.Outcome)+fmt.Sprintf(format, args...)))
	}
	if op.Status != p.Status {
		broke(ShapeStatus, "status %d, promised %d", op.Status, p.Status)
	}
	if members != "" {
		broke(ShapeBody, "%s, promised exactly %s", members, strings.Join(p.Fields, ", "))
	}
	if !op.HeadersRecorded {
		return out
	}
	if !isJSONContentType(op.ContentType) {
		broke(ShapeContentType, "Content-Type %q, promised %s", op.ContentType, ContentTypeJSON)
	}
	if p.CacheControl != "" && !hasDirective(op.CacheControl, p.CacheControl) {
		broke(ShapeCacheControl, "Cache-Control %q, promised %s", op.CacheControl, p.CacheControl)
	}
	if p.WWWAuthenticate != "" && !challenges(op.WWWAuthenticate, p.WWWAuthenticate) {
		broke(ShapeWWWAuthenticate, "WWW-Authenticate %q, promised a %s challenge", op.WWWAuthenticate, p.WWWAuthenticate)
	}
	return out
}

func shapeFinding(op *history.Op, clause, detail string) findingOps {
	return findingOps{Finding{Kind: KindShapeBreach, Request: op.ID(), Line: clause, Detail: op.ID() + ": " + detail}, []*history.Op{op}}
}

// tokenMembersProblem says what is wrong with the members of a 2xx body, held to the token
// Promise; "" when nothing is. The body the service writes is recognised without encoding/json,
// as parseTokenResponse does.
func tokenMembersProblem(body string) string {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(body, "\n"), `{"token":"`)
	_, rest, ok2 := cutPlain(rest, `","customer_id":"`)
	_, rest, ok3 := cutPlain(rest, `","created":`)
	if ok && ok2 && ok3 && (rest == "true}" || rest == "false}") {
		return ""
	}
	members, err := decodeObject(body)
	if err != nil {
		return fmt.Sprintf("body is not a JSON object: %v (body %q)", err, excerpt(body))
	}
	return membersProblem(members, tokenPromise)
}

// decodeErrorBody returns the code of an error body and what is wrong with its members ("" for
// nothing); ok is false when the body is no error object (not a JSON object, or no non-empty
// string "error"). The body the service writes for an error without a field is recognised without
// encoding/json.
func decodeErrorBody(body string) (code, problem string, ok bool) {
	rest, ok1 := strings.CutPrefix(strings.TrimSuffix(body, "\n"), `{"error":"`)
	code, rest, ok2 := cutPlain(rest, `","message":"`)
	msg, ok3 := strings.CutSuffix(rest, `"}`)
	if ok1 && ok2 && ok3 && code != "" && msg != "" && plain(msg) {
		if p := promiseOf(code); p == nil || !slices.Contains(p.Fields, "field") {
			return code, "", true
		}
	}
	members, err := decodeObject(body)
	if err != nil {
		return "", "", false
	}
	raw, found := members["error"]
	if !found || json.Unmarshal(raw, &code) != nil || code == "" {
		return "", "", false
	}
	p := promiseOf(code)
	if p == nil {
		return code, "", true
	}
	return code, membersProblem(members, p), true
}

// plain reports whether s is printable ASCII with nothing a JSON string would escape: then `"`+s+`"`
// is a JSON string whose value is s.
func plain(s string) bool {
	_, _, ok := cutPlain(s+"\x00", "\x00")
	return ok
}

func decodeObject(body string) (map[string]json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &members); err != nil {
		return nil, err
	}
	if members == nil {
		return nil, fmt.Errorf("null, not an object")
	}
	return members, nil
}

// membersProblem says how members differ from p's: missing, of the wrong type, or extra.
func membersProblem(members map[string]json.RawMessage, p *Promise) string {
	var problems []string
	for _, f := range p.Fields {
		raw, ok := members[f]
		if !ok {
			problems = append(problems, "no "+f)
			continue
		}
		if why := memberTypeProblem(f, raw); why != "" {
			problems = append(problems, why)
		}
	}
	for f := range members {
		if !slices.Contains(p.Fields, f) {
			problems = append(problems, "extra "+f)
		}
	}
	slices.Sort(problems)
	return strings.Join(problems, ", ")
}

// memberTypeProblem says what is wrong with the value of member f: "created" is a boolean, any
// other member a string, "message" a non-empty one.
func memberTypeProblem(f string, raw json.RawMessage) string {
	if f == "created" {
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return fmt.Sprintf("%s %s is not a boolean", f, excerpt(string(raw)))
		}
		return ""
	}
	var s string
	switch {
	case json.Unmarshal(raw, &s) != nil:
		return fmt.Sprintf("%s %s is not a string", f, excerpt(string(raw)))
	case f == "message" && s == "":
		return "message is empty"
	}
	return ""
}

// isJSONContentType reports whether ct is ContentTypeJSON, with at most a charset=utf-8 parameter.
func isJSONContentType(ct string) bool {
	if ct == ContentTypeJSON {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != ContentTypeJSON {
		return false
	}
	charset, ok := params["charset"]
	return len(params) == 0 || len(params) == 1 && ok && strings.EqualFold(charset, "utf-8")
}

// hasDirective reports whether the Cache-Control value cc holds directive d.
func hasDirective(cc, d string) bool {
	for part := range strings.SplitSeq(cc, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
		if strings.EqualFold(name, d) {
			return true
		}
	}
	return false
}

// challenges reports whether the WWW-Authenticate value v challenges with scheme (its first
// challenge's, case-insensitively, as RFC 9110 11.1 compares schemes).
func challenges(v, scheme string) bool {
	first, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	first, _, _ = strings.Cut(first, ",")
	return strings.EqualFold(first, scheme)
}
