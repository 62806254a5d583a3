package check

import (
	"reflect"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// fixtureAPI is the API of the tests' made-up target (e2e/testdata/widgets), read from its file
// as the suite reads a target's: the tests build its bodies and hold them to it. It has the shape
// of the bundled token service's API under names of its own, so that a rule passing on it reads
// the target's names instead of knowing one service's (the token service's package holds that
// one's file to its facts).
var fixtureAPI = mustAPI("../testdata/widgets/target.yaml")

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

// TestAPIFromTarget holds what the fixture's target file says to the API the rules read: the
// pointers, the promises of its outcomes and of a few errors, the counter and the verifier.
func TestAPIFromTarget(t *testing.T) {
	a := fixtureAPI
	if a.Target != "widgets" || a.ID != "/widget_id" || a.Created != "/created" || a.Credential != "/credential" || a.ErrorCode != "/error" || a.Verifier != VerifierJWT {
		t.Errorf("pointers %+v", a)
	}
	if a.New.Status != 200 || a.New.CacheControl != "no-store" || memberNames(a.New.Members) != "credential, widget_id, created" || a.New.Members[2].Type != MemberBoolean {
		t.Errorf("new %+v", a.New)
	}
	for code, want := range map[string]struct {
		status    int
		clean     bool
		members   string
		retry     bool
		challenge string
	}{
		"unauthenticated": {401, false, "error, message", false, "WidgetKey"},
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
	if c := a.Counter; c == nil || c.Name != "widgets_created_total" || c.Label != "outcome" || c.New != "created" || c.NoID != "null_subject" ||
		c.Errors["empty_subject"] != "empty_subject_refused" || c.InvalidInput != "invalid_input" {
		t.Errorf("counter %+v", a.Counter)
	}
	if a.Issuer != "widgets-issuer" || a.Audience != "widgets-clients" || a.TTL != 24*time.Hour || a.JWKSPath != "/keys" {
		t.Errorf("jwt settings %q %q %s %q", a.Issuer, a.Audience, a.TTL, a.JWKSPath)
	}
	if !reflect.DeepEqual(a.Claims, []ClaimField{{Claim: "ref", Field: "widget_ref"}, {Claim: "ten", Field: "tenant_ref"}}) ||
		!reflect.DeepEqual(a.Agree, []string{"label", "owner_email"}) {
		t.Errorf("claims %+v agree %v", a.Claims, a.Agree)
	}
}

// The fixture's success and error bodies, as its tests write and expect them.
type tokenResponse struct {
	Token      string `json:"credential"`
	CustomerID string `json:"widget_id"`
	Created    *bool  `json:"created"`
}

type errorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// parseTokenResponse reads a success body as the checker does, by the fixture's API.
func parseTokenResponse(body string) (tokenResponse, error) {
	var buf [8]member
	o, err := readObject(body, buf[:0])
	if err != nil {
		return tokenResponse{}, err
	}
	var r tokenResponse
	r.Token, _, _ = o.stringAt(body, fixtureAPI.Credential)
	r.CustomerID, _, _ = o.stringAt(body, fixtureAPI.ID)
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

// TestSuccessLabel: findings name an API's one success promise by its credential member
// ("credential answer"; the token service's package holds its "token answer"), and an API
// whose outcomes differ by their outcome.
func TestSuccessLabel(t *testing.T) {
	if fixtureAPI.New.Outcome != "credential" || fixtureAPI.Existing.Outcome != "credential" {
		t.Errorf("fixture's success labels %q, %q", fixtureAPI.New.Outcome, fixtureAPI.Existing.Outcome)
	}
	if a := ordersAPI(t); a.New.Outcome != "new" || a.Replayed.Outcome != "replayed" {
		t.Errorf("orders' success labels %q, %q", a.New.Outcome, a.Replayed.Outcome)
	}
}
