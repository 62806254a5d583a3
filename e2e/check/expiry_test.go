package check

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// judge checks ops against rows with p and fails the test unless the counts are want; it
// returns the result for more.
func judge(t *testing.T, ops []history.Op, rows []Row, p Params, want map[Rule]int) Result {
	t.Helper()
	res, err := Check(ops, rows, p)
	if err != nil {
		t.Fatal(err)
	}
	if want == nil {
		want = map[Rule]int{}
	}
	if !maps.Equal(res.Counts, want) {
		var b strings.Builder
		_ = res.WriteText(&b)
		t.Errorf("counts %v, want %v\n%s", res.Counts, want, b.String())
	}
	return res
}

// TestAudienceAndExpiry makes the valid-token rule fail by each of the claims the service
// added with API keys: aud, and exp exactly iat plus the TTL.
func TestAudienceAndExpiry(t *testing.T) {
	good, rows := goodHistory(t)
	iat := jwt.NewNumericDate(rowA.CreatedAt.Truncate(time.Second))
	for _, tc := range []struct {
		name  string
		edit  func(*claims)
		valid bool
	}{
		{"aud as a list of one", func(c *claims) { c.Aud = []string{audience} }, true},
		{"wrong aud", func(c *claims) { c.Aud = "stampede-admin-api" }, false},
		{"no aud", func(c *claims) { c.Aud = nil }, false},
		{"aud among others", func(c *claims) { c.Aud = []string{audience, "stampede-admin-api"} }, false},
		{"aud not a string", func(c *claims) { c.Aud = 42 }, false},
		{"exp 1 s late", func(c *claims) { c.ExpiresAt = jwt.NewNumericDate(iat.Add(tokenTTL + time.Second)) }, false},
		{"exp 1 s early", func(c *claims) { c.ExpiresAt = jwt.NewNumericDate(iat.Add(tokenTTL - time.Second)) }, false},
		{"no exp", func(c *claims) { c.ExpiresAt = nil }, false},
		{"no iat to count exp from", func(c *claims) { c.IssuedAt = nil }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tokenFor(t, rowA, tc.edit)
			want := map[Rule]int{RuleValidToken: 1, RuleOneToken: 1}
			if tc.valid {
				want = map[Rule]int{RuleOneToken: 1} // a valid token, but not byte for byte alice's other one
			}
			res := judge(t, replace(good, ok(t, alice, 1, 0, "pod-b", 1, 9, tok)), rows, params(), want)
			if !tc.valid && !res.Violations[0].HasKind(KindInvalidToken) {
				t.Errorf("violations %+v: want an invalid token", res.Violations)
			}
		})
	}
}

// TestExpiredOnArrival: a token is judged at the instant its response arrived, on the run's
// time base, not when the checker runs: with a 1 s TTL, alice's token (iat 12:00:00, exp
// 12:00:01) is valid in a response that returned before 12:00:01 and invalid in one that
// returned at or after it.
func TestExpiredOnArrival(t *testing.T) {
	p := params()
	p.TokenTTL = time.Second
	p.Contract = contract(t, modeAtomic)
	tok := sign(t, jwt.SigningMethodEdDSA, suiteKey, serviceClaims(rowA, func(c *claims) {
		c.ExpiresAt = jwt.NewNumericDate(c.IssuedAt.Add(time.Second))
	}))
	// base is 11:59:59.5: returns at 1499 ms and 1500 ms are 12:00:00.999 and 12:00:01.
	for _, tc := range []struct {
		ret  int
		want map[Rule]int
	}{
		{1499, nil},
		{1500, map[Rule]int{RuleValidToken: 1}},
		{90_000_000, map[Rule]int{RuleValidToken: 1}}, // a day later
	} {
		ops := []history.Op{okCreated(t, alice, 0, 0, "pod-a", 0, 10, tok), ok(t, alice, 1, 0, "pod-b", 1, tc.ret, tok)}
		res := judge(t, ops, []Row{rowA}, p, tc.want)
		if tc.want != nil && !strings.Contains(strings.Join(res.Violations[0].Details, ";"), "expired on arrival") {
			t.Errorf("return at %d ms: details %q, want expired on arrival", tc.ret, res.Violations[0].Details)
		}
	}
}

func TestCheckRefusesParamsWithoutAudienceTTLOrBase(t *testing.T) {
	ops, rows := goodHistory(t)
	for name, mutate := range map[string]func(*Params){
		"no audience":              func(p *Params) { p.Audience = "" },
		"no token TTL":             func(p *Params) { p.TokenTTL = 0 },
		"a TTL of fractions":       func(p *Params) { p.TokenTTL = 1500 * time.Millisecond },
		"no time base":             func(p *Params) { p.Base = time.Time{} },
		"neither audience nor TTL": func(p *Params) { p.Audience, p.TokenTTL = "", 0 },
	} {
		p := params()
		mutate(&p)
		if _, err := Check(ops, rows, p); err == nil {
			t.Errorf("%s: judged", name)
		}
	}
}

// TestSavedParamsBeforeAuth: params saved before the service had audiences and expiry (no
// audience and no TTL in judge.json) judge tokens without aud and exp as valid, as they were
// then; saved with them, such tokens are invalid; saved with one of the two, they are refused.
func TestSavedParamsBeforeAuth(t *testing.T) {
	old := sign(t, jwt.SigningMethodEdDSA, suiteKey, serviceClaims(rowA, func(c *claims) { c.Aud, c.ExpiresAt = nil, nil }))
	ops := []history.Op{okCreated(t, alice, 0, 0, "pod-a", 0, 10, old), ok(t, alice, 1, 0, "pod-b", 1, 9, old)}
	load := func(edit func(*SavedParams)) (Params, error) {
		p := params()
		p.Contract = contract(t, modeAtomic)
		saved := p.Save()
		if edit != nil {
			edit(&saved)
		}
		b, err := json.Marshal(saved)
		if err != nil {
			t.Fatal(err)
		}
		var back SavedParams
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		q, err := back.Params(fixtureAPI)
		q.Base = base
		return q, err
	}
	now, err := load(nil)
	if err != nil || now.Audience != audience || now.TokenTTL != tokenTTL {
		t.Fatalf("round trip: audience %q, TTL %s, err %v", now.Audience, now.TokenTTL, err)
	}
	judge(t, ops, []Row{rowA}, now, map[Rule]int{RuleValidToken: 1, RuleFinalToken: 1})
	before, err := load(func(s *SavedParams) { s.Version, s.Audience, s.TokenTTL = 0, "", 0 }) // from before versions
	if err != nil {
		t.Fatal(err)
	}
	judge(t, ops, []Row{rowA}, before, nil)
	if _, err := load(func(s *SavedParams) { s.TokenTTL = 0 }); err == nil {
		t.Error("saved params with an audience and no TTL were loaded")
	}
	if _, err := load(func(s *SavedParams) { s.Audience = "" }); err == nil {
		t.Error("saved params with a TTL and no audience were loaded")
	}
	// Built by hand, not loaded: the same missing claims are never skipped.
	p := params()
	p.Audience, p.TokenTTL = "", 0
	if _, err := Check(ops, []Row{rowA}, p); err == nil {
		t.Error("live params without audience and TTL judged")
	}
}
