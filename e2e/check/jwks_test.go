package check

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// keyJSON is one published key as the service writes it.
func keyJSON(kid string, pub ed25519.PublicKey) string {
	return strings.TrimSuffix(strings.TrimPrefix(jwksBody(map[string]ed25519.PublicKey{kid: pub}), `{"keys":[`), "]}")
}

// lines lists the (kind, line) of every finding of vs.
func lines(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		for _, f := range v.Findings {
			out = append(out, string(f.Kind)+"/"+f.Line)
		}
	}
	return out
}

// TestJudgeJWKS: each way a published key set can fail a client is its own finding, and the
// keys tokens are verified with are those every parsed fetch publishes alike.
func TestJudgeJWKS(t *testing.T) {
	suite := suiteKey.Public().(ed25519.PublicKey)
	other := otherKey.Public().(ed25519.PublicKey)
	good := jwksBody(map[string]ed25519.PublicKey{testKid: suite})
	onPodB := func(body string) []JWKSFetch {
		f := suiteJWKS()
		f[2].Body = body
		return f
	}
	for _, tc := range []struct {
		name    string
		fetches []JWKSFetch
		want    []string
		kids    []string
	}{
		{name: "the same key set everywhere", fetches: suiteJWKS(), kids: []string{testKid}},
		{name: "spacing and key order are not a difference", kids: []string{"a", testKid},
			fetches: append(fetched(jwksBody(map[string]ed25519.PublicKey{testKid: suite, "a": other}))[:2],
				JWKSFetch{Via: "pod/pod-b", Pod: "pod-b", Status: 200, Body: "{ \"keys\": [ " + keyJSON(testKid, suite) + ",\n " + keyJSON("a", other) + " ] }"}),
		},
		{name: "one replica publishes another key", fetches: onPodB(jwksBody(map[string]ed25519.PublicKey{testKid: other})),
			want: []string{"jwks-differ/differ", "jwks-wrong-key/configured-key"}},
		{name: "one replica publishes one more key", fetches: onPodB(jwksBody(map[string]ed25519.PublicKey{testKid: suite, "extra": other})),
			want: []string{"jwks-differ/differ"}, kids: []string{testKid}},
		{name: "one replica's JWKS is not JSON", fetches: onPodB(`{"keys":[`),
			want: []string{"jwks-unusable/not-parsed"}, kids: []string{testKid}},
		{name: "no keys", fetches: fetched(`{"keys":[]}`), want: []string{"jwks-unusable/not-parsed", "jwks-unusable/not-parsed", "jwks-unusable/not-parsed"}},
		{name: "not a key set", fetches: fetched(`{"kty":"OKP"}`), want: []string{"jwks-unusable/not-parsed", "jwks-unusable/not-parsed", "jwks-unusable/not-parsed"}},
		{name: "an RSA key", fetches: onPodB(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"test"}]}`),
			want: []string{"jwks-unusable/key-type", "jwks-differ/differ", "jwks-wrong-key/configured-key"}},
		{name: "an X25519 key", fetches: onPodB(strings.Replace(good, "Ed25519", "X25519", 1)),
			want: []string{"jwks-unusable/key-type", "jwks-differ/differ", "jwks-wrong-key/configured-key"}},
		{name: "alg HS256", fetches: onPodB(strings.Replace(good, `"EdDSA"`, `"HS256"`, 1)),
			want: []string{"jwks-unusable/key-type", "jwks-differ/differ", "jwks-wrong-key/configured-key"}},
		{name: "x cut short", fetches: onPodB(strings.Replace(good, `","kid"`, `AA","kid"`, 1)),
			want: []string{"jwks-unusable/key-type", "jwks-differ/differ", "jwks-wrong-key/configured-key"}},
		{name: "no kid anywhere", fetches: fetched(strings.Replace(good, `"kid":"test",`, "", 1)),
			want: []string{"jwks-unusable/no-kid", "jwks-unusable/no-kid", "jwks-unusable/no-kid", "jwks-wrong-key/configured-key"}},
		{name: "one kid for two keys", fetches: fetched(strings.Replace(good, `[`, `[`+keyJSON(testKid, other)+",", 1)),
			want: []string{"jwks-unusable/duplicate-kid", "jwks-unusable/duplicate-kid", "jwks-unusable/duplicate-kid", "jwks-wrong-key/configured-key"}},
		{name: "the configured key is not published", fetches: fetched(jwksBody(map[string]ed25519.PublicKey{testKid: other})),
			want: []string{"jwks-wrong-key/configured-key"}, kids: []string{testKid}},
		{name: "a pod answers 404", fetches: append(suiteJWKS(), JWKSFetch{Via: "pod/pod-c", Pod: "pod-c", Status: 404, Body: `{"error":"not_found"}`}),
			want: []string{"jwks-unusable/unanswered"}, kids: []string{testKid}},
		{name: "no answer", fetches: append(suiteJWKS(), JWKSFetch{Via: "service", Error: "connection reset by peer"}),
			want: []string{"jwks-unusable/unanswered"}, kids: []string{testKid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, keys := judgeJWKS(tc.fetches, suite)
			if got := lines(vs); !slices.Equal(got, tc.want) {
				t.Errorf("findings %q, want %q", got, tc.want)
			}
			for _, v := range vs {
				if v.Rule != RuleJWKS || len(v.Details) != len(v.Findings) || len(v.Pods) == 0 && !strings.Contains(tc.name, "no answer") {
					t.Errorf("violation %+v", v)
				}
			}
			if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, tc.kids) {
				t.Errorf("verifying kids %q, want %q", got, tc.kids)
			}
		})
	}
}

// rekey re-signs the token of every 2xx of ops with key, its header edited by header (kid
// testKid unless it changes it): the history of a service that signs so.
func rekey(t *testing.T, ops []history.Op, key ed25519.PrivateKey, header func(map[string]any)) []history.Op {
	t.Helper()
	out := append([]history.Op(nil), ops...)
	for i, op := range out {
		if !op.Succeeded() {
			continue
		}
		var resp tokenResponse
		if err := json.Unmarshal([]byte(op.Body), &resp); err != nil {
			t.Fatal(err)
		}
		cl := &claims{}
		if _, _, err := jwt.NewParser().ParseUnverified(resp.Token, cl); err != nil {
			t.Fatal(err)
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, cl)
		tok.Header["kid"] = testKid
		if header != nil {
			header(tok.Header)
		}
		signed, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		resp.Token = signed
		body, _ := json.Marshal(resp)
		out[i].Body = string(body)
	}
	return out
}

// TestCheckVerifiesAsAClient: tokens are verified with the key of the fetched JWKS that their
// kid names, not with the suite's key; each shape of a service that a client could not verify
// fails by its rule and finding, and one that a client could verify passes.
func TestCheckVerifiesAsAClient(t *testing.T) {
	good, rows := goodHistory(t)
	suite := suiteKey.Public().(ed25519.PublicKey)
	other := otherKey.Public().(ed25519.PublicKey)
	third := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	kid := func(k string) func(map[string]any) { return func(h map[string]any) { h["kid"] = k } }
	noKid := func(h map[string]any) { delete(h, "kid") }
	onPodB := func(body string) []JWKSFetch {
		f := suiteJWKS()
		f[2].Body = body
		return f
	}
	// bobByOther is good with bob's tokens signed by the other key, under kid "b".
	bobByOther := append(rekey(t, without(good, bob), suiteKey, nil), rekey(t, without(good, alice), otherKey, kid("b"))...)
	for _, tc := range []struct {
		name    string
		ops     []history.Op
		jwks    []JWKSFetch
		verdict Verdict
		counts  map[Rule]int
		want    []string
	}{
		{name: "kid selects the published key", ops: good, jwks: suiteJWKS(), verdict: VerdictPass},
		{name: "two published keys, each token by its kid", ops: bobByOther, verdict: VerdictPass,
			jwks: fetched(jwksBody(map[string]ed25519.PublicKey{testKid: suite, "b": other}))},
		{name: "a kid that names the other published key", ops: rekey(t, good, suiteKey, kid("b")), verdict: VerdictFail,
			jwks:   fetched(jwksBody(map[string]ed25519.PublicKey{testKid: suite, "b": other})),
			counts: map[Rule]int{RuleValidToken: 2, RuleFinalToken: 2}, want: []string{"invalid-credential/"}},
		{name: "unknown-kid: a kid that names no published key", ops: rekey(t, good, suiteKey, kid("rotated")), jwks: suiteJWKS(), verdict: VerdictFail,
			counts: map[Rule]int{RuleValidToken: 2, RuleFinalToken: 2}, want: []string{"unknown-kid/kid-unknown"}},
		{name: "no kid in the tokens", ops: rekey(t, good, suiteKey, noKid), jwks: suiteJWKS(), verdict: VerdictFail,
			counts: map[Rule]int{RuleValidToken: 2, RuleFinalToken: 2}, want: []string{"unknown-kid/kid-missing"}},
		{name: "no-kid: no kid in the tokens nor in the JWKS", ops: rekey(t, good, suiteKey, noKid), verdict: VerdictFail,
			jwks:   fetched(strings.Replace(jwksBody(map[string]ed25519.PublicKey{testKid: suite}), `"kid":"test",`, "", 1)),
			counts: map[Rule]int{RuleJWKS: 1, RuleValidToken: 2, RuleFinalToken: 2}, want: []string{"jwks-unusable/no-kid", "jwks-wrong-key/configured-key", "unknown-kid/kid-missing"}},
		{name: "one replica publishes another key under the kid", ops: good, verdict: VerdictFail,
			jwks:   onPodB(jwksBody(map[string]ed25519.PublicKey{testKid: other})),
			counts: map[Rule]int{RuleJWKS: 1, RuleValidToken: 2, RuleFinalToken: 2}, want: []string{"jwks-differ/differ", "jwks-wrong-key/configured-key", "unknown-kid/kid-unknown"}},
		{name: "replica-jwks: each replica publishes a stray key of its own besides the configured one", ops: good, verdict: VerdictFail,
			jwks: []JWKSFetch{
				{Via: "service", Pod: "pod-a", Status: 200, Body: jwksBody(map[string]ed25519.PublicKey{testKid: suite, "stray-a": other})},
				{Via: "pod/pod-a", Pod: "pod-a", Status: 200, Body: jwksBody(map[string]ed25519.PublicKey{testKid: suite, "stray-a": other})},
				{Via: "pod/pod-b", Pod: "pod-b", Status: 200, Body: jwksBody(map[string]ed25519.PublicKey{testKid: suite, "stray-b": third})},
			},
			counts: map[Rule]int{RuleJWKS: 1}, want: []string{"jwks-differ/differ"}},
		{name: "one replica publishes a malformed JWKS", ops: good, jwks: onPodB(`{"keys":[{"kty":"OKP"`), verdict: VerdictFail,
			counts: map[Rule]int{RuleJWKS: 1}, want: []string{"jwks-unusable/not-parsed"}},
		{name: "the service publishes a key other than its configured one", ops: rekey(t, good, otherKey, nil), verdict: VerdictFail,
			jwks:   fetched(jwksBody(map[string]ed25519.PublicKey{testKid: other})),
			counts: map[Rule]int{RuleJWKS: 1}, want: []string{"jwks-wrong-key/configured-key"}},
		{name: "foreign-key: signed with a key the JWKS does not publish", ops: rekey(t, good, otherKey, nil), jwks: suiteJWKS(), verdict: VerdictFail,
			counts: map[Rule]int{RuleValidToken: 2, RuleFinalToken: 2}, want: []string{"invalid-credential/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.JWKS = tc.jwks
			res, err := Check(tc.ops, rows, p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict || !maps.Equal(res.Counts, tc.counts) && len(tc.counts)+len(res.Counts) > 0 {
				t.Fatalf("%s %v, want %s %v\n%v", res.Verdict, res.Counts, tc.verdict, tc.counts, res.Violations)
			}
			got := map[string]bool{}
			for _, v := range res.Violations {
				if v.Rule == RuleJWKS || v.Rule == RuleValidToken {
					for _, f := range v.Findings {
						got[string(f.Kind)+"/"+f.Line] = true
					}
				}
			}
			if w := slices.Sorted(maps.Keys(got)); !slices.Equal(w, tc.want) {
				t.Errorf("findings of jwks and valid-token %q, want %q", w, tc.want)
			}
		})
	}
}

// TestJWKSSaved: the fetches are saved with the params and judge alike offline; params saved
// before the suite fetched the JWKS verify with the configured key whatever the kid, as they
// did then; live params without a fetch are refused.
func TestJWKSSaved(t *testing.T) {
	good, rows := goodHistory(t)
	ops := rekey(t, good, suiteKey, func(h map[string]any) { h["kid"] = "rotated" })
	p := params()
	saved := p.Save()
	back, err := saved.Params(fixtureAPI)
	if err != nil || !slices.Equal(back.JWKS, p.JWKS) || back.savedBeforeJWKS {
		t.Fatalf("saved params lost the JWKS: %+v, %v", back.JWKS, err)
	}
	back.Base = p.Base
	if res, err := Check(ops, rows, back); err != nil || res.Counts[RuleValidToken] != 2 {
		t.Errorf("re-judged: %v %v; want valid-token for both customers", res.Counts, err)
	}
	js, err := json.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	var old SavedParams
	if err := json.Unmarshal([]byte(strings.Replace(string(js), `"jwks":`, `"ignored":`, 1)), &old); err != nil || len(old.JWKS) != 0 {
		t.Fatalf("a judge.json from before the JWKS: %+v, %v", old.JWKS, err)
	}
	if back, err = old.Params(fixtureAPI); err != nil || !back.savedBeforeJWKS {
		t.Fatalf("params saved before the JWKS: %v, savedBeforeJWKS %v", err, back.savedBeforeJWKS)
	}
	back.Base = p.Base
	if res, err := Check(ops, rows, back); err != nil || res.Verdict != VerdictPass || res.Counts[RuleJWKS] != 0 {
		t.Errorf("judged as before the JWKS: %s %v %v; want a pass, kid unread", res.Verdict, res.Counts, err)
	}
	p.JWKS = nil
	if _, err := Check(good, rows, p); err == nil || !strings.Contains(err.Error(), "JWKS") {
		t.Errorf("live params without a JWKS fetch: %v, want a refusal", err)
	}
}

// TestTokenCacheByKid: with keys selected by kid, the batch groups its tokens by key and agrees
// with verifying each alone, whatever comes first; the header read once does not let a token of
// another kid through.
func TestTokenCacheByKid(t *testing.T) {
	suite := suiteKey.Public().(ed25519.PublicKey)
	other := otherKey.Public().(ed25519.PublicKey)
	toks := cacheTokens(t)
	signWith := func(key ed25519.PrivateKey, header func(map[string]any)) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, serviceClaims(rowA, nil))
		tok.Header["kid"] = testKid
		header(tok.Header)
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	toks["other key, its kid"] = signWith(otherKey, func(h map[string]any) { h["kid"] = "b" })
	toks["suite key, other key's kid"] = signWith(suiteKey, func(h map[string]any) { h["kid"] = "b" })
	toks["unknown kid"] = signWith(suiteKey, func(h map[string]any) { h["kid"] = "rotated" })
	toks["no kid"] = signWith(suiteKey, func(h map[string]any) { delete(h, "kid") })
	toks["kid not a string"] = signWith(suiteKey, func(h map[string]any) { h["kid"] = 7 })
	r := tokenRules{credential: fixtureAPI.Credential, key: suite, ed: edKeyFor(suite), byKid: map[string]*edKey{testKid: edKeyFor(suite), "b": edKeyFor(other)},
		issuer: issuer, audience: audience, ttl: tokenTTL}
	names := slices.Sorted(maps.Keys(toks))
	for rot := range names {
		order := append(append([]string(nil), names[rot:]...), names[:rot]...)
		for name, err := range batchJudged(t, toks, order, r, nil) {
			_, want := verifyToken(toks[name], r)
			if fmt.Sprint(err) != fmt.Sprint(want) {
				t.Errorf("%s first, %s: batched says %v, alone %v", order[0], name, err, want)
			}
		}
	}
	got := batchJudged(t, toks, names, r, nil)
	for name, ok := range map[string]bool{"good": true, "other key, its kid": true, "suite key, other key's kid": false,
		"unknown kid": false, "no kid": false, "kid not a string": false, "another key": false} {
		if (got[name] == nil) != ok {
			t.Errorf("%s: %v, want valid %v", name, got[name], ok)
		}
	}
	if l := kidLine(got["unknown kid"]); l != KidUnknown {
		t.Errorf("unknown kid: line %q", l)
	}
	if l := kidLine(got["no kid"]); l != KidMissing {
		t.Errorf("no kid: line %q", l)
	}
}
