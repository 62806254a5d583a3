package token

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
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

func testSubject() Subject {
	return Subject{
		CustomerID: "0b4e7a0e-5d2b-4b9a-9a41-0c6a3f3a8f10",
		MerchantID: "m-1",
		ExternalID: "ext-1",
		CreatedAt:  time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC),
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	s, err := NewSigner(fixedKey(t), "stampede-tokensvc", "")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Sign(testSubject())
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier("stampede-tokensvc", s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{
		Issuer: "stampede-tokensvc", Subject: testSubject().CustomerID, MerchantID: "m-1",
		ExternalID: "ext-1", IssuedAt: testSubject().CreatedAt.Unix(), KeyID: s.KeyID(),
	}
	if c != want {
		t.Fatalf("claims = %+v, want %+v", c, want)
	}
}

func TestSignIsDeterministicAcrossSigners(t *testing.T) {
	// Two replicas load the same key; sub-second precision of created_at must not leak.
	a, _ := NewSigner(fixedKey(t), "iss", "")
	b, _ := NewSigner(fixedKey(t), "iss", "")
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
	s, _ := NewSigner(fixedKey(t), "iss", "kid-1")
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
	if c.Subject != "" || c.KeyID != "kid-1" {
		t.Fatalf("unchecked claims = %+v", c)
	}
}

func TestVerifyRejects(t *testing.T) {
	s, _ := NewSigner(fixedKey(t), "iss", "")
	raw, _ := s.Sign(testSubject())
	other, _ := NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), "iss", s.KeyID())
	parts := strings.Split(raw, ".")
	for name, tc := range map[string]struct {
		issuer string
		set    JWKS
		raw    string
	}{
		"wrong issuer":     {"other", s.JWKS(), raw},
		"wrong key":        {"iss", other.JWKS(), raw},
		"tampered payload": {"iss", s.JWKS(), parts[0] + "." + parts[1] + "x." + parts[2]},
		"alg none":         {"iss", s.JWKS(), "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := NewVerifier(tc.issuer, tc.set)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(tc.raw); err == nil {
				t.Fatal("Verify succeeded, want error")
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
