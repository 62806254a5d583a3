package check

import (
	"slices"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// asServed is o with the headers the service sends with its answer, recorded.
func asServed(o history.Op) history.Op {
	o.HeadersRecorded = true
	if !o.Responded() {
		return o
	}
	o.ContentType = ContentTypeJSON
	switch o.Status {
	case 200:
		o.CacheControl = "no-store"
	case 401:
		o.WWWAuthenticate = "WidgetKey"
	}
	return o
}

// shapeHistory is mixedHistory, every answer with the headers the service sends.
func shapeHistory(t *testing.T) ([]history.Op, []Row, Params) {
	ops, rows := mixedHistory(t)
	for i := range ops {
		ops[i] = asServed(ops[i])
	}
	p := mixedParams()
	p.Customers = []history.Customer{alice, bob, dave}
	return ops, rows, p
}

// find returns the op of ops with id.
func find(ops []history.Op, id string) history.Op {
	i := slices.IndexFunc(ops, func(o history.Op) bool { return o.ID() == id })
	if i < 0 {
		panic("no op " + id)
	}
	return ops[i]
}

// TestAPIShapePasses: the service's answers, as it sends them, keep every promise; so do the
// variants a client accepts as the same (a charset=utf-8 parameter, more Cache-Control
// directives, a challenge of its scheme with a realm), and an older history without the headers.
func TestAPIShapePasses(t *testing.T) {
	ops, rows, p := shapeHistory(t)
	edit := func(id string, f func(*history.Op)) []history.Op {
		o := find(ops, id)
		f(&o)
		return replace(ops, o)
	}
	for name, variant := range map[string][]history.Op{
		"charset=utf-8":         edit("0/0/0", func(o *history.Op) { o.ContentType = "application/json; charset=UTF-8" }),
		"more cache directives": edit("0/0/0", func(o *history.Op) { o.CacheControl = "private, no-store, max-age=0" }),
		"a realm":               edit("0/4/0", func(o *history.Op) { o.WWWAuthenticate = `widgetkey realm="widgets"` }),
	} {
		t.Run(name, func(t *testing.T) { judge(t, variant, rows, p, nil) })
	}
	if res := judge(t, ops, rows, p, nil); res.HeadersUnrecorded != 0 {
		t.Errorf("%d answers without recorded headers, want 0", res.HeadersUnrecorded)
	}
	t.Run("headers not recorded", func(t *testing.T) {
		old := slices.Clone(ops)
		answers := 0
		for i := range old {
			old[i].HeadersRecorded, old[i].ContentType, old[i].CacheControl, old[i].WWWAuthenticate = false, "", "", ""
			if old[i].Responded() {
				answers++
			}
		}
		if res := judge(t, old, rows, p, nil); res.HeadersUnrecorded != answers {
			t.Errorf("%d answers without recorded headers, want all %d", res.HeadersUnrecorded, answers)
		}
	})
}

// TestAPIShapeFails breaks each promise of the table once, as a broken service would (the
// self-test's mutants among them), and the rule names the promise broken.
func TestAPIShapeFails(t *testing.T) {
	ops, rows, p := shapeHistory(t)
	created := find(ops, "0/0/0")
	refused := find(ops, "0/4/0") // 401 to a request without a key
	forbade := find(ops, "0/3/0") // 403 to another tenant's key
	conflicted := find(ops, "0/2/0")
	with := func(o history.Op, f func(*history.Op)) history.Op {
		f(&o)
		return o
	}
	for _, tc := range []struct {
		name string
		op   history.Op
		want map[Rule]int
		// clause is the Finding.Line of the api-shape finding; "" for none.
		clause string
	}{
		{name: "201 to the creation (mutant created-201)", op: with(created, func(o *history.Op) { o.Status = 201 }),
			want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeStatus},
		{name: "200 as text/plain (mutant sniffed-content-type)",
			op:   with(created, func(o *history.Op) { o.ContentType = "text/plain; charset=utf-8" }),
			want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeContentType},
		{name: "200 without Content-Type", op: with(created, func(o *history.Op) { o.ContentType = "" }),
			want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeContentType},
		{name: "JSON in another charset", op: with(forbade, func(o *history.Op) { o.ContentType = "application/json; charset=latin1" }),
			want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeContentType},
		{name: "a token that may be cached", op: with(created, func(o *history.Op) { o.CacheControl = "max-age=60" }),
			want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeCacheControl},
		{name: "a token member more", op: with(created, func(o *history.Op) {
			o.Body = strings.Replace(o.Body, `"created"`, `"expires_in":86400,"created"`, 1)
		}), want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeBody},
		{name: "401 without WWW-Authenticate (mutant bare-401)", op: with(refused, func(o *history.Op) { o.WWWAuthenticate = "" }),
			want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeWWWAuthenticate},
		{name: "401 challenging Basic", op: with(refused, func(o *history.Op) { o.WWWAuthenticate = `Basic realm="tokens"` }),
			want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeWWWAuthenticate},
		{name: "an error without message (mutant terse-errors)", op: with(forbade, func(o *history.Op) { o.Body = `{"error":"forbidden"}` }),
			want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeBody},
		{name: "an error with an empty message", op: with(conflicted, func(o *history.Op) { o.Body = `{"error":"conflict","message":""}` }),
			want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeBody},
		{name: "an error member more", op: with(conflicted, func(o *history.Op) {
			o.Body = `{"error":"conflict","message":"retry","status":409}`
		}), want: map[Rule]int{RuleAPIShape: 1}, clause: ShapeBody},
		{name: "a documented code with another status", op: with(forbade, func(o *history.Op) { o.Status = 401 }),
			// auth wants 403 to another tenant's key; the table, 403 for forbidden.
			want: map[Rule]int{RuleAPIShape: 1, RuleAuth: 1}, clause: ShapeStatus},
		{name: "an error wrapped in an object is clean-error's", op: with(conflicted, func(o *history.Op) {
			o.Body = `{"error":{"code":"conflict","message":"retry"}}`
		}), want: map[Rule]int{RuleCleanError: 1}},
		{name: "a 401 that is not JSON is auth's", op: with(refused, func(o *history.Op) { o.Body = "Unauthorized\n" }),
			want: map[Rule]int{RuleAuth: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := judge(t, replace(ops, tc.op), rows, p, tc.want)
			var clauses []string
			for _, v := range res.Violations {
				for _, f := range v.Findings {
					if f.Kind == KindShapeBreach {
						clauses = append(clauses, f.Line)
						if f.Request != tc.op.ID() || !strings.Contains(f.Detail, "promised") {
							t.Errorf("finding %+v: want one about %s saying what was promised", f, tc.op.ID())
						}
					}
				}
			}
			var want []string
			if tc.clause != "" {
				want = []string{tc.clause}
			}
			if !slices.Equal(clauses, want) {
				t.Errorf("api-shape clauses %v, want %v", clauses, want)
			}
		})
	}
}

// TestErrorMembers holds error bodies to their code's members: field where the table wants it,
// and nothing else.
func TestErrorMembers(t *testing.T) {
	for _, tc := range []struct {
		body, code, problem string
		ok                  bool
	}{
		{`{"error":"conflict","message":"retry"}` + "\n", "conflict", "", true},
		{`{"message":"retry","error":"conflict"}`, "conflict", "", true},
		{`{"error":"invalid_field","field":"email","message":"email must be x@y"}`, "invalid_field", "", true},
		{`{"error":"invalid_field","message":"email must be x@y"}`, "invalid_field", "no field", true},
		{`{"error":"forbidden","message":"no","field":"tenant_ref"}`, "forbidden", "extra field", true},
		{`{"error":"forbidden","message":7}`, "forbidden", "message 7 is not a string", true},
		{`{"error":"teapot","message":"short and stout"}`, "teapot", "", true},
		{`{"error":""}`, "", "", false},
		{`null`, "", "", false},
		{`<html>`, "", "", false},
	} {
		code, problem, ok := decodeErrorBody(tc.body)
		if code != tc.code || problem != tc.problem || ok != tc.ok {
			t.Errorf("decodeErrorBody(%q) = %q, %q, %v; want %q, %q, %v", tc.body, code, problem, ok, tc.code, tc.problem, tc.ok)
		}
	}
	for body, want := range map[string]string{
		`{"credential":"t","widget_id":"c","created":false}` + "\n":  "",
		`{"created":true,"widget_id":"c","credential":"t"}`:          "",
		`{"credential":"t","widget_id":"c","created":"true"}`:        `created "true" is not a boolean`,
		`{"credential":"t","widget_id":"c"}`:                         "no created",
		`{"data":{"credential":"t","widget_id":"c","created":true}}`: "extra data, no created, no credential, no widget_id",
	} {
		if got := tokenMembersProblem(body); got != want {
			t.Errorf("tokenMembersProblem(%q) = %q, want %q", body, got, want)
		}
	}
}

// TestContractKeepsTheRetryAfterPromise: RuleContract judges Retry-After for RuleAPIShape, so
// every line of every contract must promise what the table does for its code.
func TestContractKeepsTheRetryAfterPromise(t *testing.T) {
	for _, s := range []string{modeLegacy, modeReturnExisting, modeFailFast, modeAtomic} {
		for _, l := range contract(t, s).Lines {
			p := fixtureAPI.errorPromise(l.Code, l.Status)
			if p == nil || p.Status != l.Status || p.RetryAfter != l.RetryAfter {
				t.Errorf("%s line %s: %d %s, Retry-After %v; the table says %+v", s, l.ID, l.Status, l.Code, l.RetryAfter, p)
			}
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(fixtureAPI.Errors), func(p ErrorPromise) bool { return !p.RetryAfter })); n != 3 {
		t.Errorf("%d outcomes promise Retry-After, want 3 (conflict, overloaded, unavailable)", n)
	}
}

// decodeErrorBody returns the code of an error body, by the fixture's API, and what is
// wrong with its members; ok false for a body that is no error object.
func decodeErrorBody(body string) (code, problem string, ok bool) {
	var buf [8]member
	o, err := readObject(body, buf[:0])
	if err != nil {
		return "", "", false
	}
	code, _, okCode := o.stringAt(body, fixtureAPI.ErrorCode)
	if !okCode || code == "" {
		return "", "", false
	}
	p := fixtureAPI.errorPromise(code, 0)
	if p == nil {
		return code, "", true
	}
	return code, membersProblem(o, &p.Promise), true
}

// tokenMembersProblem is what is wrong with a 2xx body's members, held to the fixture's.
func tokenMembersProblem(body string) string { return bodyMembersProblem(body, &fixtureAPI.New) }
