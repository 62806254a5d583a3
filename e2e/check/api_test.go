package check

import (
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// tokensvcAPI is the bundled token service's API, read from its target file as the suite reads
// it: the tests build its bodies and hold them to it.
var tokensvcAPI = mustAPI("../../targets/tokensvc/target.yaml")

func mustAPI(file string) API {
	t, err := target.Load(file)
	if err != nil {
		panic(err)
	}
	api, err := APIFromTarget(t)
	if err != nil {
		panic(err)
	}
	return api
}

// TestAPIFromTokensvc holds what the token service's target file says to what its service
// answers: the pointers, the promises of its outcomes and of a few errors.
func TestAPIFromTokensvc(t *testing.T) {
	a := tokensvcAPI
	if a.ID != "/customer_id" || a.Created != "/created" || a.Credential != "/token" || a.ErrorCode != "/error" || a.Verifier != VerifierJWT {
		t.Errorf("pointers %+v", a)
	}
	if a.New.Status != 200 || a.New.CacheControl != "no-store" || memberNames(a.New.Members) != "token, customer_id, created" || a.New.Members[2].Type != MemberBoolean {
		t.Errorf("new %+v", a.New)
	}
	for code, want := range map[string]struct {
		status    int
		clean     bool
		members   string
		retry     bool
		challenge string
	}{
		"unauthenticated": {401, false, "error, message", false, "Bearer"},
		"unknown_field":   {400, false, "error, message, field", false, ""},
		"conflict":        {409, true, "error, message", true, ""},
		"empty_subject":   {500, true, "error, message", false, ""},
		"internal":        {500, false, "error, message", false, ""},
		"unavailable":     {503, true, "error, message", true, ""},
		"not_found":       {404, false, "error, message", false, ""},
	} {
		p := a.errorPromise(code, want.status)
		if p == nil || p.Status != want.status || p.Clean != want.clean || memberNames(p.Members) != want.members || p.RetryAfter != want.retry ||
			p.WWWAuthenticate != want.challenge || p.ContentType != "application/json" {
			t.Errorf("%s: %+v, want %+v", code, p, want)
		}
	}
	if c := a.Counter; c == nil || c.New != "created" || c.NoID != "null_subject" || c.Errors["empty_subject"] != "empty_subject_refused" || c.InvalidInput != "invalid_input" {
		t.Errorf("counter %+v", a.Counter)
	}
	if a.Issuer != "stampede-tokensvc" || a.Audience != "stampede-merchant-api" || a.TTL != 24*time.Hour || a.JWKSPath == "" {
		t.Errorf("jwt settings %q %q %s %q", a.Issuer, a.Audience, a.TTL, a.JWKSPath)
	}
	if len(a.Claims) != 2 || a.Agree[0] != "email" {
		t.Errorf("claims %+v agree %v", a.Claims, a.Agree)
	}
}

// The token service's bodies, outcomes and media type, as its tests write and expect them.
type tokenResponse struct {
	Token      string `json:"token"`
	CustomerID string `json:"customer_id"`
	Created    *bool  `json:"created"`
}

type errorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// parseTokenResponse reads a token body as the checker does, by the token service's API.
func parseTokenResponse(body string) (tokenResponse, error) {
	var buf [8]member
	o, err := readObject(body, buf[:0])
	if err != nil {
		return tokenResponse{}, err
	}
	var r tokenResponse
	r.Token, _, _ = o.stringAt(body, tokensvcAPI.Credential)
	r.CustomerID, _, _ = o.stringAt(body, tokensvcAPI.ID)
	if raw, found := o.get("created"); found && raw != "null" {
		b, _ := boolValue(raw)
		r.Created = &b
	}
	return r, nil
}

const ContentTypeJSON = "application/json"

const (
	OutcomeCreated         = "created"
	OutcomeExisting        = "existing"
	OutcomeNullSubject     = "null_subject"
	OutcomeEmptySubject    = "empty_subject_refused"
	OutcomeConflict        = "conflict"
	OutcomeUnavailable     = "unavailable"
	OutcomeOverloaded      = "overloaded"
	OutcomeUnauthenticated = "unauthenticated"
	OutcomeForbidden       = "forbidden"
	OutcomeError           = "error"
	OutcomeInvalidInput    = "invalid_input"
)

// TestSuccessLabel: findings name the token service's one success promise "token answer", as
// they did before the API was read from its target file, and an API whose outcomes differ by
// their outcome.
func TestSuccessLabel(t *testing.T) {
	if tokensvcAPI.New.Outcome != "token" || tokensvcAPI.Existing.Outcome != "token" {
		t.Errorf("token service's success labels %q, %q", tokensvcAPI.New.Outcome, tokensvcAPI.Existing.Outcome)
	}
	if a := ordersAPI(t); a.New.Outcome != "new" || a.Replayed.Outcome != "replayed" {
		t.Errorf("orders' success labels %q, %q", a.New.Outcome, a.Replayed.Outcome)
	}
}
