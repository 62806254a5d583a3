package check

import (
	"fmt"
	"net/http"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// The clauses of RuleAuth, as Finding.Line names them.
const (
	// AuthForeignForbidden: a request with another tenant's key is answered 403 forbidden.
	AuthForeignForbidden = "foreign-key-forbidden"
	// AuthNoKeyUnauthenticated: a request without a key is answered 401 unauthenticated.
	AuthNoKeyUnauthenticated = "no-key-unauthenticated"
	// AuthMalformedKeyUnauthenticated: a request whose Authorization is not "Bearer <API key>"
	// is answered 401 unauthenticated.
	AuthMalformedKeyUnauthenticated = "malformed-key-unauthenticated"
	// AuthUnknownKeyUnauthenticated: a request with a well-formed key that names no tenant is
	// answered 401 unauthenticated.
	AuthUnknownKeyUnauthenticated = "unknown-key-unauthenticated"
	// AuthOwnKeyServed: a request with its own tenant's key is never answered 401 or 403.
	AuthOwnKeyServed = "own-key-not-refused"
	// AuthNoRowWithoutOwnKey: a customer none of whose requests carried its own tenant's key
	// has no row.
	AuthNoRowWithoutOwnKey = "no-row-without-own-key"
)

// authChecked says whether RuleAuth applies: always, but to params saved before the service had
// API keys, whose histories carry no key.
func (e *judgeEnv) authChecked() bool { return !e.p.savedBeforeAuth }

// entitled reports whether op could register its customer: it carried the customer's tenant's
// key (any request could, before API keys).
func (e *judgeEnv) entitled(c history.Customer, op *history.Op) bool {
	return !e.authChecked() || op.SentKey() == history.KeyOwn
}

// refusedByAuth reports whether op was answered 401 or 403: the service refused its key, and
// the answer carries no token and says nothing about the registration.
func refusedByAuth(op *history.Op) bool {
	return op.Responded() && (op.Status == http.StatusUnauthorized || op.Status == http.StatusForbidden)
}

// judgeAuth applies RuleAuth to one request of c. It returns the finding, if the request broke
// the rule, and whether the rule has judged the request whole: then no other rule reads it (a
// refusal carries no token, and is not one of the strategy's errors). A 2xx to a request that
// should have been refused is a finding but is not judged whole: its token is still judged. An
// unknown outcome says nothing about the key. Any other answer to a request that should have
// been refused is a finding, a 503 too: the service checks the key before its load and its
// database (service/README.md, "Status codes"), so neither excuses another answer.
func judgeAuth(api *API, c history.Customer, op *history.Op) (f *findingOps, judged bool) {
	if op.Unknown() {
		return nil, false
	}
	finding := func(line, format string, args ...any) *findingOps {
		return &findingOps{Finding{Kind: KindAuthBreach, Request: op.ID(), Line: line,
			Detail: op.ID() + ": " + fmt.Sprintf(format, args...)}, []*history.Op{op}}
	}
	kind := op.SentKey()
	if kind == history.KeyOwn {
		if refusedByAuth(op) {
			return finding(AuthOwnKeyServed, "%d %s to a request with its own tenant %s's key", op.Status, errorCode(api, op), c.Tenant), true
		}
		return nil, false
	}
	want := refusals[kind]
	if want.line == "" { // a kind this checker does not know: judged as no key, the strictest
		want = refusals[history.KeyNone]
	}
	sent := want.sent
	if kind == history.KeyForeign {
		sent = fmt.Sprintf("tenant %s's key", op.KeyTenant)
	}
	switch {
	case op.Succeeded() && kind == history.KeyForeign:
		return finding(want.line, "%d to a request with %s for %s of %s: a cross-tenant %s was issued", op.Status, sent, api.Nouns().AnEntity(), c.Tenant, api.Nouns().Credential), false
	case op.Succeeded():
		return finding(want.line, "%d to a request with %s: a %s was issued unauthenticated", op.Status, sent, api.Nouns().Credential), false
	case op.Status != want.status || !api.isClass(errorCode(api, op), op.Status, want.class):
		return finding(want.line, "%d %s to a request with %s, want %d %s", op.Status, errorCode(api, op), sent, want.status, api.codesOfClass(want.class, want.status)), true
	}
	return nil, true
}

// refusal is the answer RuleAuth wants to a kind of key that may not register the customer.
type refusal struct {
	// class is the API's error class of the answer: any of its codes at status will do (a
	// service may tell why it refuses, as the orders API's tenant_mismatch and insufficient_scope).
	line, class, sent string
	status            int
}

// refusals are RuleAuth's answers by the kind of key sent: 403 to another tenant's valid key,
// 401 to every key that names no tenant (service/README.md, "Status codes").
var refusals = map[history.KeyKind]refusal{
	history.KeyForeign:   {AuthForeignForbidden, "forbidden", "another tenant's key", http.StatusForbidden},
	history.KeyNone:      {AuthNoKeyUnauthenticated, "unauthenticated", "no key", http.StatusUnauthorized},
	history.KeyMalformed: {AuthMalformedKeyUnauthenticated, "unauthenticated", "a malformed key", http.StatusUnauthorized},
	history.KeyUnknown:   {AuthUnknownKeyUnauthenticated, "unauthenticated", "an unknown key", http.StatusUnauthorized},
}

// errorCode returns the error code of an error body, or a short note of what the body is.
func errorCode(api *API, op *history.Op) string {
	var buf [8]member
	o, err := readObject(op.Body, buf[:0])
	if err != nil {
		return fmt.Sprintf("(body not JSON: %q)", excerpt(op.Body))
	}
	code, _, _ := o.stringAt(op.Body, api.ErrorCode)
	if code == "" {
		return "(no error code)"
	}
	return code
}
