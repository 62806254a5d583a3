package check

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifyTokenAgreesWithJWT: the checker's own EdDSA verification, with its validity judged
// now, accepts and refuses the tokens that golang-jwt, configured as the checker used it,
// accepts and refuses. The claims are those of a service from before audiences and expiry, held
// to exp and nbf only when a token carries them; TestAudienceAndExpiry has the rest.
func TestVerifyTokenAgreesWithJWT(t *testing.T) {
	pub := suiteKey.Public().(ed25519.PublicKey)
	legacy := func(edit func(*claims)) *claims {
		cl := &claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: rowA.ID}, Tenant: alice.Tenant, EntityKey: alice.EntityKey}
		if edit != nil {
			edit(cl)
		}
		return cl
	}
	good := sign(t, jwt.SigningMethodEdDSA, suiteKey, legacy(nil))
	other := sign(t, jwt.SigningMethodEdDSA, suiteKey, legacy(func(c *claims) { c.Subject, c.EntityKey = rowB.ID, bob.EntityKey }))
	seg := strings.Split(good, ".")
	otherSeg := strings.Split(other, ".")
	enc := base64.RawURLEncoding.EncodeToString
	for name, tok := range map[string]string{
		"the service's token":          good,
		"another customer's payload":   seg[0] + "." + otherSeg[1] + "." + seg[2],
		"signature cut short":          seg[0] + "." + seg[1] + "." + seg[2][:len(seg[2])-4],
		"signature with a byte more":   good + "A",
		"signature padded":             good + "==",
		"two segments":                 seg[0] + "." + seg[1],
		"four segments":                good + ".x",
		"header not JSON":              enc([]byte("xx")) + "." + seg[1] + "." + seg[2],
		"header not base64":            "!!." + seg[1] + "." + seg[2],
		"alg none":                     sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, legacy(nil)),
		"HS256 keyed with the pub key": sign(t, jwt.SigningMethodHS256, []byte(pub), legacy(nil)),
		"another key":                  sign(t, jwt.SigningMethodEdDSA, otherKey, legacy(nil)),
		"another issuer":               sign(t, jwt.SigningMethodEdDSA, suiteKey, legacy(func(c *claims) { c.Issuer = "x" })),
		"no issuer":                    sign(t, jwt.SigningMethodEdDSA, suiteKey, legacy(func(c *claims) { c.Issuer = "" })),
		"expired":                      sign(t, jwt.SigningMethodEdDSA, suiteKey, legacy(func(c *claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) })),
		"expires later":                sign(t, jwt.SigningMethodEdDSA, suiteKey, legacy(func(c *claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour)) })),
		"not valid yet":                sign(t, jwt.SigningMethodEdDSA, suiteKey, legacy(func(c *claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)) })),
		"valid since an hour":          sign(t, jwt.SigningMethodEdDSA, suiteKey, legacy(func(c *claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(-time.Hour)) })),
		"payload not JSON":             seg[0] + "." + enc([]byte("[")) + "." + seg[2],
		"empty":                        "",
	} {
		cl, err := verifyToken(tok, tokenRules{credential: fixtureAPI.Credential, key: pub, issuer: issuer})
		if err == nil {
			err = cl.validAt(time.Now())
		}
		_, want := jwt.ParseWithClaims(tok, &claims{}, func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithIssuer(issuer))
		if (err == nil) != (want == nil) {
			t.Errorf("%s: verifyToken says %v, golang-jwt says %v", name, err, want)
		}
	}
}
