package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fixedKey is a deterministic test key; tests never use a key from a file.
func fixedKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// params are the signer settings of the tests; TTL is a day, as by default.
func params(issuer, keyID string) SignerParams {
	return SignerParams{Issuer: issuer, Audience: "test-audience", TTL: 24 * time.Hour, KeyID: keyID}
}

// signedAt is an instant at which testSubject's tokens are valid.
var signedAt = testSubject().CreatedAt.Add(time.Hour)

func testSubject() Subject {
	return Subject{
		CustomerID: "0b4e7a0e-5d2b-4b9a-9a41-0c6a3f3a8f10",
		MerchantID: "m-1",
		ExternalID: "ext-1",
		CreatedAt:  time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC),
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s, err := NewSigner(fixedKey(t), params("stampede-tokensvc", ""))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Sign(testSubject())
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier("stampede-tokensvc", "test-audience", s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.VerifyAt(raw, signedAt)
	if err != nil {
		t.Fatal(err)
	}
	iat := testSubject().CreatedAt.Unix()
	want := Claims{
		Issuer: "stampede-tokensvc", Subject: testSubject().CustomerID, Audience: "test-audience", MerchantID: "m-1",
		ExternalID: "ext-1", IssuedAt: iat, ExpiresAt: iat + 24*3600, KeyID: s.KeyID(),
	}
	if c != want {
		t.Fatalf("claims = %+v, want %+v", c, want)
	}
}

// TestClaimOrder pins the JSON encoding of the claims: replicas must sign the same bytes,
// and consumers read the claim set as documented in service/README.md.
func TestClaimOrder(t *testing.T) {
	s, err := NewSigner(fixedKey(t), params("iss", "kid-1"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Sign(testSubject())
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"iss":"iss","sub":"0b4e7a0e-5d2b-4b9a-9a41-0c6a3f3a8f10","aud":"test-audience","mid":"m-1","ext":"ext-1",` +
		`"iat":1735787045,"exp":1735873445,"kid":"kid-1"}`
	if string(payload) != want {
		t.Fatalf("claims JSON\n%s\nwant\n%s", payload, want)
	}
}

func TestNewSignerRefuses(t *testing.T) {
	for name, p := range map[string]SignerParams{
		"no issuer":    {Audience: "a", TTL: time.Hour},
		"no audience":  {Issuer: "i", TTL: time.Hour},
		"no ttl":       {Issuer: "i", Audience: "a"},
		"ttl below 1s": {Issuer: "i", Audience: "a", TTL: 999 * time.Millisecond},
	} {
		if _, err := NewSigner(fixedKey(t), p); err == nil {
			t.Errorf("%s: NewSigner succeeded", name)
		}
	}
}

func TestSignIsDeterministicAcrossSigners(t *testing.T) {
	// Two replicas load the same key; sub-second precision of created_at must not leak.
	a, _ := NewSigner(fixedKey(t), params("iss", ""))
	b, _ := NewSigner(fixedKey(t), params("iss", ""))
	subj := testSubject()
	ta, err := a.Sign(subj)
	if err != nil {
		t.Fatal(err)
	}
	subj.CreatedAt = subj.CreatedAt.Truncate(time.Second).Add(999 * time.Millisecond)
	tb, err := b.Sign(subj)
	if err != nil {
		t.Fatal(err)
	}
	if ta != tb {
		t.Fatalf("tokens differ:\n%s\n%s", ta, tb)
	}
}

func TestSignRefusesEmptySubject(t *testing.T) {
	s, _ := NewSigner(fixedKey(t), params("iss", "kid-1"))
	subj := testSubject()
	subj.CustomerID = ""
	if _, err := s.Sign(subj); !errors.Is(err, ErrEmptySubject) {
		t.Fatalf("Sign(empty subject) error = %v, want ErrEmptySubject", err)
	}
	raw, err := s.SignUnchecked(subj)
	if err != nil {
		t.Fatal(err)
	}
	c, err := UnmarshalClaims(raw)
	if err != nil {
		t.Fatal(err)
	}
	// The legacy bug's token carries the full claim set, only its subject is empty.
	if c.Subject != "" || c.KeyID != "kid-1" || c.Audience != "test-audience" || c.ExpiresAt != c.IssuedAt+24*3600 {
		t.Fatalf("unchecked claims = %+v", c)
	}
}

func TestVerifyRejects(t *testing.T) {
	s, _ := NewSigner(fixedKey(t), params("iss", ""))
	raw, _ := s.Sign(testSubject())
	other, _ := NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), params("iss", s.KeyID()))
	// Signed by the right key, each without one of the claims Verify requires.
	unsigned := func(edit func(*Claims)) string {
		c := s.Claims(testSubject())
		edit(&c)
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = s.KeyID()
		signed, err := tok.SignedString(fixedKey(t))
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	parts := strings.Split(raw, ".")
	for name, tc := range map[string]struct {
		issuer, audience string
		set              JWKS
		raw              string
		at               time.Time
		want             string
	}{
		"valid":            {"iss", "test-audience", s.JWKS(), raw, signedAt, ""},
		"wrong issuer":     {"other", "test-audience", s.JWKS(), raw, signedAt, "issuer"},
		"wrong audience":   {"iss", "other-api", s.JWKS(), raw, signedAt, "audience"},
		"no audience":      {"iss", "test-audience", s.JWKS(), unsigned(func(c *Claims) { c.Audience = "" }), signedAt, "aud"},
		"expired":          {"iss", "test-audience", s.JWKS(), raw, testSubject().CreatedAt.Add(24 * time.Hour), "expired"},
		"no exp":           {"iss", "test-audience", s.JWKS(), unsigned(func(c *Claims) { c.ExpiresAt = 0 }), signedAt, "exp"},
		"wrong key":        {"iss", "test-audience", other.JWKS(), raw, signedAt, "signature"},
		"tampered payload": {"iss", "test-audience", s.JWKS(), parts[0] + "." + parts[1] + "x." + parts[2], signedAt, ""},
		"alg none":         {"iss", "test-audience", s.JWKS(), "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".", signedAt, "signing method"},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := NewVerifier(tc.issuer, tc.audience, tc.set)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.VerifyAt(tc.raw, tc.at)
			switch {
			case name == "valid" && err != nil:
				t.Fatalf("VerifyAt = %v, want a valid token", err)
			case name != "valid" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("VerifyAt = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestThumbprintRFC8037Vector(t *testing.T) {
	// RFC 8037 appendix A.3: thumbprint of the A.2 public key.
	x := []byte{
		0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
		0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
	}
	if got, want := Thumbprint(x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	// Written by `openssl genpkey -algorithm ed25519` (RFC 8410 example key).
	const opensslPEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
`
	k, err := ParsePrivateKeyPEM([]byte(opensslPEM))
	if err != nil {
		t.Fatal(err)
	}
	if len(k) != ed25519.PrivateKeySize {
		t.Fatalf("key size %d", len(k))
	}
	round, err := MarshalPrivateKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	if string(round) != opensslPEM {
		t.Fatalf("round trip differs:\n%s", round)
	}
	for name, in := range map[string]string{
		"empty":     "",
		"not pem":   "hello",
		"wrong typ": strings.ReplaceAll(opensslPEM, "PRIVATE KEY", "EC PRIVATE KEY"),
		"bad der":   "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		if _, err := ParsePrivateKeyPEM([]byte(in)); err == nil {
			t.Errorf("%s: ParsePrivateKeyPEM succeeded, want error", name)
		}
	}
}
