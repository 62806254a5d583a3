package check

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// cacheTokens are tokens of every shape verifyToken tells apart, for the batch to meet in one
// tokenCache: good ones, a wrong key, a changed payload or signature, a header other than
// EdDSA, malformed signatures and segments.
func cacheTokens(t *testing.T) map[string]string {
	good := sign(t, jwt.SigningMethodEdDSA, suiteKey, serviceClaims(rowA, nil))
	seg := strings.Split(good, ".")
	other := strings.Split(sign(t, jwt.SigningMethodEdDSA, suiteKey, serviceClaims(rowB, nil)), ".")
	sig, err := base64.RawURLEncoding.DecodeString(seg[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[40] ^= 1
	enc := base64.RawURLEncoding.EncodeToString
	kid := jwt.NewWithClaims(jwt.SigningMethodEdDSA, serviceClaims(rowA, nil))
	kid.Header["kid"] = "test"
	withKid, err := kid.SignedString(suiteKey)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"good":                         good,
		"another good":                 sign(t, jwt.SigningMethodEdDSA, suiteKey, serviceClaims(rowB, nil)),
		"another key":                  sign(t, jwt.SigningMethodEdDSA, otherKey, serviceClaims(rowA, nil)),
		"another payload":              seg[0] + "." + other[1] + "." + seg[2],
		"a bit of S flipped":           seg[0] + "." + seg[1] + "." + enc(sig),
		"alg none":                     sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, serviceClaims(rowA, nil)),
		"HS256 keyed with the pub key": sign(t, jwt.SigningMethodHS256, []byte(suiteKey.Public().(ed25519.PublicKey)), serviceClaims(rowA, nil)),
		"EdDSA with a kid":             withKid,
		"signature cut short":          seg[0] + "." + seg[1] + "." + seg[2][:len(seg[2])-4],
		"signature with a line break":  seg[0] + "." + seg[1] + "." + seg[2][:40] + "\n" + seg[2][41:],
		"four segments":                good + ".x",
		"header not JSON":              enc([]byte("xx")) + "." + seg[1] + "." + seg[2],
	}
}

// batchJudged verifies every token with a tokenCache prepared over one batch holding them all,
// in the order of names, as a worker of Check does.
func batchJudged(t *testing.T, toks map[string]string, names []string, r tokenRules, edit func(*tokenCache)) map[string]error {
	var ops []history.Op
	var idx []int32
	for _, name := range names {
		body, err := json.Marshal(tokenResponse{Token: toks[name], CustomerID: rowA.ID, Created: new(true)})
		if err != nil {
			t.Fatal(err)
		}
		idx = append(idx, int32(len(ops)))
		ops = append(ops, history.Op{Status: 200, Body: string(body) + "\n", Pod: "pod-a"})
	}
	var tc tokenCache
	tc.prepare(r, ops, idx)
	if edit != nil {
		edit(&tc)
	}
	got := map[string]error{}
	for _, name := range names {
		_, got[name] = verifyTokenWith(toks[name], r, &tc)
	}
	return got
}

// TestTokenCacheAgrees: tokens judged in a batch, with the key's tables, the batch's verdicts
// and the header read once, fail or pass exactly as verifyToken alone says, with the same
// words, whichever token comes first.
func TestTokenCacheAgrees(t *testing.T) {
	pub := suiteKey.Public().(ed25519.PublicKey)
	toks := cacheTokens(t)
	alone := tokenRules{credential: fixtureAPI.Credential, key: pub, issuer: issuer, audience: audience, ttl: tokenTTL}
	batched := alone
	batched.ed = edKeyFor(pub)
	var names []string
	for name := range toks {
		names = append(names, name)
	}
	for rot := range names {
		order := append(append([]string(nil), names[rot:]...), names[:rot]...)
		for name, err := range batchJudged(t, toks, order, batched, nil) {
			_, want := verifyToken(toks[name], alone)
			if fmt.Sprint(err) != fmt.Sprint(want) {
				t.Errorf("%s first, %s: batched says %v, alone %v", order[0], name, err, want)
			}
		}
	}
}

// TestTokenCacheIsRead: the verdicts of the batch are what judging reads (a flipped one changes
// the answer), and a header read once does not let another header through.
func TestTokenCacheIsRead(t *testing.T) {
	pub := suiteKey.Public().(ed25519.PublicKey)
	toks := cacheTokens(t)
	r := tokenRules{credential: fixtureAPI.Credential, key: pub, ed: edKeyFor(pub), issuer: issuer, audience: audience, ttl: tokenTTL}
	got := batchJudged(t, toks, []string{"good", "another key"}, r, func(tc *tokenCache) {
		if len(tc.verdicts) != 2 {
			t.Fatalf("the batch holds %d verdicts, want 2", len(tc.verdicts))
		}
		tc.verdicts[toks["good"]], tc.verdicts[toks["another key"]] = false, true
	})
	if got["good"] == nil || got["another key"] != nil {
		t.Errorf("flipped verdicts: good says %v, another key %v: the batch's verdicts are not read", got["good"], got["another key"])
	}
	got = batchJudged(t, toks, []string{"good", "alg none", "HS256 keyed with the pub key", "header not JSON"}, r, nil)
	if got["good"] != nil {
		t.Fatalf("good: %v", got["good"])
	}
	for _, name := range []string{"alg none", "HS256 keyed with the pub key", "header not JSON"} {
		if got[name] == nil {
			t.Errorf("%s after a good token: verifies", name)
		}
	}
}
