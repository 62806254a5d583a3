package check

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// withCredentials is ops with the token of every 2xx replaced by cred(customer), as a service
// whose credential is opaque answers.
func withCredentials(t *testing.T, ops []history.Op, cred func(history.Op) string) []history.Op {
	t.Helper()
	out := append([]history.Op(nil), ops...)
	for i := range out {
		if !out[i].Succeeded() {
			continue
		}
		var resp tokenResponse
		if err := json.Unmarshal([]byte(out[i].Body), &resp); err != nil {
			t.Fatalf("fixture body: %v", err)
		}
		resp.Token = cred(out[i])
		b, _ := json.Marshal(resp)
		out[i].Body = string(b)
	}
	return out
}

// equalParams are params() judging with the equal verifier, without any of the JWT verifier's.
func equalParams() Params {
	p := params()
	p.Verifier = VerifierEqual
	p.PublicKey, p.JWKS, p.Issuer, p.Audience, p.TokenTTL = nil, nil, "", "", 0
	return p
}

// TestEqualVerifier: an opaque credential passes when it is one per key and distinct across
// keys, and fails RuleOneToken or RuleTenants otherwise; the JWT verifier refuses the same
// credentials, so the verdict is the verifier's.
func TestEqualVerifier(t *testing.T) {
	good, rows := goodHistory(t)
	perKey := func(o history.Op) string { return "opaque-" + o.Customer.EntityKey }
	opaque := withCredentials(t, good, perKey)
	for _, tc := range []struct {
		name    string
		ops     []history.Op
		p       Params
		verdict Verdict
		counts  map[Rule]int
	}{
		{name: "one credential per key passes", ops: opaque, p: equalParams(), verdict: VerdictPass},
		{
			name: "the JWT verifier refuses opaque credentials", ops: opaque, p: params(), verdict: VerdictFail,
			counts: map[Rule]int{RuleValidToken: 2, RuleFinalToken: 2},
		},
		{
			name: "two credentials for one key",
			ops: withCredentials(t, good, func(o history.Op) string {
				if o.Customer == alice && o.Seq == 1 {
					return "opaque-other"
				}
				return perKey(o)
			}),
			p: equalParams(), verdict: VerdictFail,
			counts: map[Rule]int{RuleOneToken: 1},
		},
		{
			name: "one credential for two keys",
			ops:  withCredentials(t, good, func(history.Op) string { return "opaque-shared" }),
			p:    equalParams(), verdict: VerdictFail,
			counts: map[Rule]int{RuleTenants: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Check(tc.ops, rows, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s: %v", res.Verdict, tc.verdict, res.Violations)
			}
			for _, rule := range Rules {
				if res.Counts[rule] != tc.counts[rule] {
					t.Errorf("%s: %d violations, want %d: %v", rule, res.Counts[rule], tc.counts[rule], res.Violations)
				}
			}
		})
	}
}

// TestEqualVerifierTenantsLine: a credential two keys share is named as a shared token, since
// the equal verifier reads no subject in it.
func TestEqualVerifierTenantsLine(t *testing.T) {
	good, rows := goodHistory(t)
	res, err := Check(withCredentials(t, good, func(history.Op) string { return "opaque-shared" }), rows, equalParams())
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, v := range res.Violations {
		if v.Rule != RuleTenants {
			continue
		}
		found = true
		if len(v.Findings) != 1 || v.Findings[0].Line != TenantsToken {
			t.Errorf("tenants findings %+v, want one %s", v.Findings, TenantsToken)
		}
	}
	if !found {
		t.Errorf("no tenants violation: %v", res.Violations)
	}
}

// TestCheckRefusesUnknownVerifier: a verifier kind the checker does not know cannot judge.
func TestCheckRefusesUnknownVerifier(t *testing.T) {
	ops, rows := goodHistory(t)
	p := params()
	p.Verifier = "hmac"
	if _, err := Check(ops, rows, p); err == nil || !strings.Contains(err.Error(), `verifier "hmac"`) {
		t.Errorf("Check with verifier hmac: %v, want an error naming it", err)
	}
}

// TestClaimMapping: the claims held to request fields are the mapping's: swapped, every token
// of the service disagrees with its request; without ten, a token with another tenant's ten
// passes; a claim the checker does not read cannot judge.
func TestClaimMapping(t *testing.T) {
	good, rows := goodHistory(t)
	swapped := params()
	swapped.Claims = []ClaimField{{Claim: "ten", Field: "widget_ref"}, {Claim: "ref", Field: "tenant_ref"}}
	res, err := Check(good, rows, swapped)
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts[RuleTokenMatchesRow] != 2 {
		t.Errorf("swapped mapping: %d matches-row violations, want 2: %v", res.Counts[RuleTokenMatchesRow], res.Violations)
	}
	for _, v := range res.Violations {
		if v.Rule == RuleTokenMatchesRow && v.Customer == alice &&
			!strings.Contains(v.Details[0], `ten "m-9-0", request had "c-9-0"; ref "c-9-0", request had "m-9-0"`) {
			t.Errorf("alice's details %q", v.Details)
		}
	}

	ta := tokenFor(t, rowA, func(c *claims) { c.Tenant = "m-other" })
	otherTen := withCredentials(t, good, func(o history.Op) string {
		if o.Customer == alice {
			return ta
		}
		var resp tokenResponse
		_ = json.Unmarshal([]byte(o.Body), &resp)
		return resp.Token
	})
	for _, tc := range []struct {
		claims []ClaimField
		want   int
	}{{nil, 1}, {[]ClaimField{{Claim: "ref", Field: "widget_ref"}}, 0}} {
		p := params()
		p.Claims = tc.claims
		res, err := Check(otherTen, rows, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Counts[RuleTokenMatchesRow] != tc.want {
			t.Errorf("mapping %v, alice's ten m-other: %d matches-row violations, want %d", tc.claims, res.Counts[RuleTokenMatchesRow], tc.want)
		}
	}

	p := params()
	p.Claims = []ClaimField{{Claim: "iat", Field: "tenant_ref"}, {Claim: "ref", Field: "phone"}}
	if _, err := Check(good, rows, p); err == nil || !strings.Contains(err.Error(), `claim "iat"`) || !strings.Contains(err.Error(), `request field "phone"`) {
		t.Errorf("Check with unknown claim and field: %v, want an error naming both", err)
	}
}

// TestSavedVerifier: a run judged with the equal verifier and a claim mapping is re-judged with
// them from its judge.json, without a key; the JWT verifier with the default claims saves
// neither, so judge.json stays as it was before there was a choice.
func TestSavedVerifier(t *testing.T) {
	good, rows := goodHistory(t)
	roundTrip := func(p Params) (Params, map[string]json.RawMessage) {
		t.Helper()
		b, err := json.Marshal(p.Save())
		if err != nil {
			t.Fatal(err)
		}
		var s SavedParams
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		back, err := s.Params(fixtureAPI)
		if err != nil {
			t.Fatalf("saved %s: %v", b, err)
		}
		back.Base = p.Base
		return back, fields
	}
	if _, fields := roundTrip(params()); fields["verifier"] != nil || fields["claims"] != nil {
		t.Errorf("default params saved verifier %s, claims %s; want neither", fields["verifier"], fields["claims"])
	}

	back, _ := roundTrip(equalParams())
	shared := withCredentials(t, good, func(history.Op) string { return "opaque-shared" })
	res, err := Check(shared, rows, back)
	if err != nil {
		t.Fatal(err)
	}
	if back.Verifier != VerifierEqual || res.Counts[RuleTenants] != 1 || res.Counts[RuleValidToken] != 0 {
		t.Errorf("re-judged with verifier %q: counts %v, want one tenants violation", back.Verifier, res.Counts)
	}

	swapped := params()
	swapped.Claims = []ClaimField{{Claim: "ten", Field: "widget_ref"}}
	back, _ = roundTrip(swapped)
	if res, err := Check(good, rows, back); err != nil || res.Counts[RuleTokenMatchesRow] != 2 {
		t.Errorf("re-judged with claims %v: %v, counts %v; want two matches-row violations", back.Claims, err, res.Counts)
	}
}

// TestEqualVerifierLostWrite: with the equal verifier, an answer whose id is none of its key's
// rows while the key has another (a retry created it again after a crash lost the first) is a
// lost write, the durability canary's known bug, as a token naming such a row is; the same
// answer naming the key's row is not.
func TestEqualVerifierLostWrite(t *testing.T) {
	good, rows := goodHistory(t)
	perKey := func(o history.Op) string { return "opaque-" + o.Customer.EntityKey }
	ops := withCredentials(t, good, perKey)
	for i := range ops {
		if ops[i].Customer == alice && ops[i].Seq == 1 {
			ops[i].Body = strings.Replace(ops[i].Body, rowA.ID, "0b6c8a52-0000-4000-8000-0000000000ff", 1)
		}
	}
	res, err := Check(ops, rows, equalParams())
	if err != nil {
		t.Fatal(err)
	}
	var kinds []Kind
	for _, v := range res.Violations {
		for _, f := range v.Findings {
			kinds = append(kinds, f.Kind)
		}
	}
	if countKind(kinds, KindLostWrite) != 1 || res.Counts[RuleTokenMatchesRow] != 1 {
		t.Errorf("findings %v, counts %v: want one lost write, alice's answer naming no row of hers", kinds, res.Counts)
	}
	if got := Detect(AsyncCommit, res); got.Caught != 1 {
		t.Errorf("Detect(AsyncCommit) = %+v, want alice caught", got)
	}
	if res, err := Check(withCredentials(t, good, perKey), rows, equalParams()); err != nil || Detect(AsyncCommit, res).Caught != 0 {
		t.Errorf("every answer naming its key's row: %v, %+v", err, res.Violations)
	}
}
