package check

import (
	"encoding/json"
	"fmt"
	"mime"
	"slices"
	"strings"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// The clauses of RuleAPIShape, as Finding.Line names them: which promise an answer broke.
const (
	ShapeStatus          = "status"
	ShapeContentType     = "content-type"
	ShapeBody            = "body-members"
	ShapeCacheControl    = "cache-control"
	ShapeWWWAuthenticate = "www-authenticate"
)

// judgeSuccessShape holds a 2xx answer to the promise of its outcome (API.success); a's members
// problem was judged once per distinct body, against the promise of the first answer with it.
func judgeSuccessShape(api *API, op *history.Op, a *answer) []findingOps {
	p := api.success(op.Status, a.createdBy(api, op))
	members := a.members
	if a.promise != nil && p != a.promise && !slices.Equal(p.Members, a.promise.Members) {
		members = bodyMembersProblem(op.Body, p)
	}
	return shapeFindings(op, p, members)
}

// judgeErrorShape holds a non-2xx answer to the promise of the error code its body names. A body
// that is no error object, or names a code the API does not have, is RuleCleanError's or
// RuleAuth's (every non-2xx is one of theirs): no promise of the API applies to it.
func judgeErrorShape(api *API, op *history.Op) []findingOps {
	var buf [8]member
	o, err := readObject(op.Body, buf[:0])
	if err != nil {
		return nil
	}
	code, found, ok := o.stringAt(op.Body, api.ErrorCode)
	if !found || !ok || code == "" {
		return nil
	}
	p := api.errorPromise(code, op.Status)
	if p == nil {
		return nil
	}
	return shapeFindings(op, &p.Promise, membersProblem(o, &p.Promise))
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
		broke(ShapeBody, "%s, promised exactly %s", members, memberNames(p.Members))
	}
	if !op.HeadersRecorded {
		return out
	}
	if p.ContentType != "" && !isMediaType(op.ContentType, p.ContentType) {
		broke(ShapeContentType, "Content-Type %q, promised %s", op.ContentType, p.ContentType)
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

// bodyMembersProblem says what is wrong with the members of body, held to p; "" when nothing is.
func bodyMembersProblem(body string, p *Promise) string {
	var buf [8]member
	o, err := readObject(body, buf[:0])
	if err != nil {
		return fmt.Sprintf("body is not a JSON object: %v (body %q)", err, excerpt(body))
	}
	return membersProblem(o, p)
}

func memberNames(members []Member) string {
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}

// membersProblem says how o's members differ from p's: missing, of the wrong type, or extra;
// "" when p lists none.
func membersProblem(o object, p *Promise) string {
	if p.Members == nil {
		return ""
	}
	// The common case, exactly the promised members in order and of their types, allocates nothing.
	if len(o) == len(p.Members) {
		same := true
		for i, m := range p.Members {
			if o[i].name != m.Name || memberTypeProblem(m, o[i]) != "" {
				same = false
				break
			}
		}
		if same {
			return ""
		}
	}
	var problems []string
	for _, m := range p.Members {
		got, ok := o.member(m.Name)
		if !ok {
			problems = append(problems, "no "+m.Name)
			continue
		}
		if why := memberTypeProblem(m, got); why != "" {
			problems = append(problems, why)
		}
	}
	for _, m := range o {
		if !slices.ContainsFunc(p.Members, func(pm Member) bool { return pm.Name == m.name }) {
			problems = append(problems, "extra "+m.name)
		}
	}
	slices.Sort(problems)
	return strings.Join(problems, ", ")
}

// memberTypeProblem says what is wrong with the value of got, member m, as its type wants.
func memberTypeProblem(m Member, got member) string {
	raw := got.raw
	switch m.Type {
	case MemberAny:
		return ""
	case MemberBoolean:
		if _, ok := boolValue(raw); !ok {
			return fmt.Sprintf("%s %s is not a boolean", m.Name, excerpt(raw))
		}
		return ""
	case MemberNumber:
		var n json.Number
		if raw == "" || raw[0] == '"' || json.Unmarshal([]byte(raw), &n) != nil {
			return fmt.Sprintf("%s %s is not a number", m.Name, excerpt(raw))
		}
		return ""
	}
	s, ok := got.stringValue()
	switch {
	case !ok:
		return fmt.Sprintf("%s %s is not a string", m.Name, excerpt(raw))
	case m.Type == MemberNonEmpty && s == "":
		return m.Name + " is empty"
	}
	return ""
}

// isMediaType reports whether ct is the media type want, with at most a charset=utf-8 parameter.
func isMediaType(ct, want string) bool {
	if ct == want {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
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
