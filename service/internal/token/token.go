// Package token signs and verifies the customer tokens the service hands out.
//
// Tokens are JWTs signed with Ed25519 (alg EdDSA). Ed25519 signatures are
// deterministic and every claim is derived from the customer's database row and
// the configuration, so every replica produces byte-identical tokens for the same
// customer. That property is what lets the e2e suite check "exactly one token per
// customer".
package token

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/service/internal/mutant"
)

// ErrEmptySubject is returned by Signer.Sign when the claims carry no subject.
var ErrEmptySubject = errors.New("refusing to sign a token with an empty subject")

// Claims are the claims of a customer token. Field order is the JSON order, which
// keeps the encoding (and therefore the signature) stable across replicas.
type Claims struct {
	Issuer     string `json:"iss"`
	Subject    string `json:"sub"`
	Audience   string `json:"aud"`
	MerchantID string `json:"mid"`
	ExternalID string `json:"ext"`
	IssuedAt   int64  `json:"iat"`
	ExpiresAt  int64  `json:"exp"`
	KeyID      string `json:"kid"`
}

// GetExpirationTime implements jwt.Claims; a token without exp (0) has none, which
// Verifier refuses.
func (c Claims) GetExpirationTime() (*jwt.NumericDate, error) {
	if c.ExpiresAt == 0 {
		return nil, nil
	}
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}

// GetIssuedAt implements jwt.Claims.
func (c Claims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}

// GetNotBefore implements jwt.Claims.
func (c Claims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims.
func (c Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c Claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c Claims) GetAudience() (jwt.ClaimStrings, error) {
	if c.Audience == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{c.Audience}, nil
}

// Subject is what a token is issued for: one customer row.
type Subject struct {
	CustomerID string
	MerchantID string
	ExternalID string
	CreatedAt  time.Time
}

// SignerParams configure a Signer.
type SignerParams struct {
	// Issuer is the iss claim; required.
	Issuer string
	// Audience is the aud claim, who the tokens are for; required.
	Audience string
	// TTL is exp minus iat; it must be positive.
	TTL time.Duration
	// KeyID is the kid; empty means the RFC 7638 thumbprint of the public key.
	KeyID string
}

// Signer signs customer tokens with one Ed25519 key.
type Signer struct {
	key      ed25519.PrivateKey
	keyID    string
	issuer   string
	audience string
	ttl      time.Duration
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey, p SignerParams) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("new signer: ed25519 private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	switch {
	case p.Issuer == "":
		return nil, errors.New("new signer: empty issuer")
	case p.Audience == "":
		return nil, errors.New("new signer: empty audience")
	case p.TTL < time.Second:
		// exp is in whole seconds: a shorter TTL would make exp equal iat.
		return nil, fmt.Errorf("new signer: token TTL %s, want at least 1s", p.TTL)
	}
	if p.KeyID == "" {
		p.KeyID = Thumbprint(key.Public().(ed25519.PublicKey))
	}
	return &Signer{key: key, keyID: p.KeyID, issuer: p.Issuer, audience: p.Audience, ttl: p.TTL}, nil
}

// KeyID returns the key id put in the header and the kid claim.
func (s *Signer) KeyID() string { return s.keyID }

// Issuer returns the iss claim of every token.
func (s *Signer) Issuer() string { return s.issuer }

// Audience returns the aud claim of every token.
func (s *Signer) Audience() string { return s.audience }

// PublicKey returns the public half of the signing key.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Claims returns the claims of the token for subj. iat is the row's creation
// time in whole seconds, so replicas agree on it whatever the database precision,
// and exp is iat plus the TTL, so they agree on it too: a token never depends on
// when or where it was signed.
func (s *Signer) Claims(subj Subject) Claims {
	c := Claims{
		Issuer:     s.issuer,
		Subject:    subj.CustomerID,
		Audience:   s.audience,
		MerchantID: subj.MerchantID,
		ExternalID: subj.ExternalID,
		KeyID:      s.keyID,
	}
	if !subj.CreatedAt.IsZero() {
		c.IssuedAt = subj.CreatedAt.Unix()
	}
	// The self-test build's broken variants (service/mutants); compiled away in production.
	switch {
	case mutant.Is(mutant.IatNow):
		c.IssuedAt = time.Now().Unix()
	case mutant.Is(mutant.IatRounded):
		c.IssuedAt = subj.CreatedAt.Round(time.Second).Unix()
	case mutant.Is(mutant.WrongIssuer):
		c.Issuer = "tokensvc-staging"
	case mutant.Is(mutant.SubExternalID):
		c.Subject = subj.ExternalID
	}
	// After the mutants: exp follows whatever iat is, so that a mutant's token stays
	// well-formed (exp after iat) and only its iat gives it away.
	c.ExpiresAt = c.IssuedAt + int64(s.ttl/time.Second)
	return c
}

// Sign returns the compact JWT for subj. It refuses an empty subject.
func (s *Signer) Sign(subj Subject) (string, error) {
	if subj.CustomerID == "" {
		return "", ErrEmptySubject
	}
	return s.SignUnchecked(subj)
}

// SignUnchecked signs subj even when its subject is empty. Only the legacy create
// strategy uses it, to reproduce the bug the e2e suite exists to catch.
func (s *Signer) SignUnchecked(subj Subject) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, s.Claims(subj))
	t.Header["kid"] = s.keyID
	switch {
	case mutant.Is(mutant.UnknownKid):
		t.Header["kid"] = s.keyID + "-next" // a key the JWKS never publishes
	case mutant.Is(mutant.NoKid):
		delete(t.Header, "kid")
	}
	signingKey := s.key
	if mutant.Is(mutant.ForeignKey) {
		signingKey = mutant.StartupKey() // while the JWKS still publishes s.key
	}
	signed, err := t.SignedString(signingKey)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// JWK is one public key in a JSON Web Key Set. Its kid is never empty in production (NewSigner
// defaults it); an empty one is left out.
type JWK struct {
	KeyType   string `json:"kty"`
	Curve     string `json:"crv"`
	X         string `json:"x"`
	KeyID     string `json:"kid,omitempty"`
	Use       string `json:"use"`
	Algorithm string `json:"alg"`
}

// JWKS is a JSON Web Key Set (RFC 7517) as served at /.well-known/jwks.json.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the key set that verifies this signer's tokens.
func (s *Signer) JWKS() JWKS {
	set := JWKS{Keys: []JWK{publicJWK(s.PublicKey(), s.keyID)}}
	// The self-test build's broken variants (service/mutants); compiled away in production.
	switch {
	case mutant.Is(mutant.NoKid):
		set.Keys[0].KeyID = ""
	case mutant.Is(mutant.ReplicaJWKS):
		stray := mutant.StartupKey().Public().(ed25519.PublicKey) // this process's own
		set.Keys = append(set.Keys, publicJWK(stray, Thumbprint(stray)))
	}
	return set
}

// publicJWK is pub as a JWK of kid.
func publicJWK(pub ed25519.PublicKey, kid string) JWK {
	return JWK{KeyType: "OKP", Curve: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), KeyID: kid, Use: "sig", Algorithm: "EdDSA"}
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of pub.
func Thumbprint(pub ed25519.PublicKey) string {
	// RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Verifier checks tokens against the keys of a key set.
type Verifier struct {
	issuer   string
	audience string
	keys     map[string]ed25519.PublicKey
}

// NewVerifier returns a Verifier for tokens from issuer to audience signed by a key in set.
func NewVerifier(issuer, audience string, set JWKS) (*Verifier, error) {
	v := &Verifier{issuer: issuer, audience: audience, keys: make(map[string]ed25519.PublicKey)}
	for _, k := range set.Keys {
		if k.KeyType != "OKP" || k.Curve != "Ed25519" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("new verifier: key %q: bad x", k.KeyID)
		}
		v.keys[k.KeyID] = ed25519.PublicKey(x)
	}
	if len(v.keys) == 0 {
		return nil, errors.New("new verifier: no Ed25519 key in set")
	}
	return v, nil
}

// Verify checks the signature, algorithm, key id, issuer, audience and expiry of raw
// now and returns its claims. It does not reject an empty subject: callers that look
// for the legacy bug need to see such tokens.
func (v *Verifier) Verify(raw string) (Claims, error) {
	return v.VerifyAt(raw, time.Now())
}

// VerifyAt is Verify as if the time were now, for tokens of rows created long ago.
func (v *Verifier) VerifyAt(raw string, now time.Time) (Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := v.keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience), jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return Claims{}, fmt.Errorf("verify token: %w", err)
	}
	return c, nil
}

// UnmarshalClaims decodes the claims of raw without verifying it, for reports.
func UnmarshalClaims(raw string) (Claims, error) {
	var c Claims
	_, _, err := jwt.NewParser().ParseUnverified(raw, &c)
	if err != nil {
		return Claims{}, fmt.Errorf("parse token: %w", err)
	}
	return c, nil
}

// ParsePrivateKeyPEM parses an Ed25519 private key in PEM-encoded PKCS#8, the
// format `openssl genpkey -algorithm ed25519` writes ("BEGIN PRIVATE KEY").
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("parse signing key: no PEM block found")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("parse signing key: PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	ed, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse signing key: key is %T, want Ed25519", k)
	}
	return ed, nil
}

// MarshalPrivateKeyPEM encodes key as PEM PKCS#8, for tests and key generation.
func MarshalPrivateKeyPEM(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalJWKS encodes a key set, for the JWKS endpoint.
func MarshalJWKS(set JWKS) ([]byte, error) {
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("marshal jwks: %w", err)
	}
	return b, nil
}
