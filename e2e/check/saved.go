package check

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// SavedParams are Params as a run's artifacts keep them (judge.json): everything an offline
// re-check needs besides the history, the database rows and the time base (which judge.json
// keeps beside them). The public key is a JWK (RFC 8037, OKP/Ed25519), as the token service
// publishes it. Params saved before the service had API keys have no audience and no token
// TTL: they judge as they did then (no aud, exp or auth checks).
type SavedParams struct {
	Issuer     string             `json:"issuer"`
	Audience   string             `json:"audience,omitempty"`
	TokenTTL   time.Duration      `json:"token_ttl_ns,omitempty"`
	PublicKey  JWK                `json:"public_key"`
	Contract   Contract           `json:"contract"`
	Faults     []history.Event    `json:"faults"`
	Registered []history.Customer `json:"registered"`
	Customers  []history.Customer `json:"customers"`
	Coverage   CoverageParams     `json:"coverage"`
	// Metrics is what the pods counted (RuleMetrics); absent in runs saved before the suite
	// scraped them, which are then judged without that rule, as they were live.
	Metrics *MetricsWitness `json:"metrics,omitempty"`
	// JWKS are the fetches of the service's JWKS (RuleJWKS); absent in runs saved before the
	// suite fetched it, which are then judged as they were live: tokens by PublicKey, kid unread.
	JWKS []JWKSFetch `json:"jwks,omitempty"`
	// Restarts are the pods' restarts and replacements the suite saw (RuleContract); absent in
	// runs saved before it looked, and when there were none.
	Restarts []Restart `json:"restarts,omitempty"`
}

// JWK is an Ed25519 public key as a JSON Web Key.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
}

// Save returns p as SavedParams.
func (p Params) Save() SavedParams {
	return SavedParams{
		Issuer:     p.Issuer,
		Audience:   p.Audience,
		TokenTTL:   p.TokenTTL,
		PublicKey:  JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(p.PublicKey)},
		Contract:   p.Contract,
		Faults:     p.Faults,
		Registered: p.Registered,
		Customers:  p.Customers,
		Coverage:   p.Coverage,
		Metrics:    p.Metrics,
		JWKS:       p.JWKS,
		Restarts:   p.Restarts,
	}
}

// Params returns the Params s saved, or why they cannot judge anything; the caller sets Base
// from where the artifacts keep it.
func (s SavedParams) Params() (Params, error) {
	if s.PublicKey.Kty != "OKP" || s.PublicKey.Crv != "Ed25519" {
		return Params{}, fmt.Errorf("saved params: public key is %s/%s, want OKP/Ed25519", s.PublicKey.Kty, s.PublicKey.Crv)
	}
	x, err := base64.RawURLEncoding.DecodeString(s.PublicKey.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return Params{}, fmt.Errorf("saved params: public key x is not %d bytes of base64url", ed25519.PublicKeySize)
	}
	if s.Issuer == "" || s.Contract.Strategy == "" {
		return Params{}, errors.New("saved params: no issuer or no contract")
	}
	// Both or neither: one alone is a damaged file, not one from before API keys.
	if (s.Audience == "") != (s.TokenTTL == 0) {
		return Params{}, fmt.Errorf("saved params: audience %q and token TTL %s: want both or, saved before the service had them, neither", s.Audience, s.TokenTTL)
	}
	return Params{
		PublicKey:       ed25519.PublicKey(x),
		Issuer:          s.Issuer,
		Audience:        s.Audience,
		TokenTTL:        s.TokenTTL,
		savedBeforeAuth: s.Audience == "" && s.TokenTTL == 0,
		Contract:        s.Contract,
		Faults:          s.Faults,
		Registered:      s.Registered,
		Customers:       s.Customers,
		Coverage:        s.Coverage,
		Metrics:         s.Metrics,
		JWKS:            s.JWKS,
		savedBeforeJWKS: len(s.JWKS) == 0,
		Restarts:        s.Restarts,
	}, nil
}
