package check

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// SavedFormat is the format version of the SavedParams that Save writes (judge.json's
// "version"). Version 2 names the strategy instead of carrying a contract, keeps the pods' raw
// metrics scrapes instead of the witness made of them, and the customers of earlier runs on the
// same database (RuleRows). A file without a version was written before versions: version 1.
const SavedFormat = 2

// savedRequired are the fields a version 2 file must have, null allowed where a run may have
// nothing (no fault, no registered or earlier customer, a service without counters): present,
// so that a missing field is a damaged file and never a check skipped by default.
var savedRequired = []string{"version", "issuer", "audience", "token_ttl_ns", "public_key", "strategy",
	"faults", "registered", "customers", "earlier", "coverage", "metrics_scrapes"}

// SavedParams are Params as a run's artifacts keep them (judge.json): everything an offline
// re-check needs besides the history, the database rows and the time base (which judge.json
// keeps beside them). The public key is a JWK (RFC 8037, OKP/Ed25519), as the token service
// publishes it. The contract is not saved alone but taken by Strategy from the API's contracts of
// all the target's modes (API.Contract), so that a file cannot judge a mode by a looser promise
// than the one its target file gives it.
//
// Files without a version (written before SavedFormat 2) are read with the semantics they were
// judged with: the contract's strategy names the strategy, the metrics witness is the one saved,
// stray rows are not judged (the customers of earlier runs were not saved), and params saved
// before the service had API keys (no audience and no token TTL) judge without the aud, exp and
// auth checks. A version 2 file lacking a field its version requires is refused.
type SavedParams struct {
	Version    int                `json:"version"`
	Issuer     string             `json:"issuer"`
	Audience   string             `json:"audience"`
	TokenTTL   time.Duration      `json:"token_ttl_ns"`
	PublicKey  JWK                `json:"public_key"`
	Strategy   string             `json:"strategy"`
	Faults     []history.Event    `json:"faults"`
	Registered []history.Customer `json:"registered"`
	Customers  []history.Customer `json:"customers"`
	Earlier    []history.Customer `json:"earlier"`
	Coverage   CoverageParams     `json:"coverage"`
	// Scrapes are the pods' raw metrics before and after the traffic, which a re-check parses
	// again; null for a run whose service had no counters.
	Scrapes *MetricsScrapes `json:"metrics_scrapes"`

	// Contract is version 1's: only its strategy is read.
	Contract *Contract `json:"contract,omitempty"`
	// Metrics is the witness itself: version 1's, or one given to Check without scrapes.
	Metrics *MetricsWitness `json:"metrics,omitempty"`
	// JWKS are the fetches of the service's JWKS (RuleJWKS); absent in runs saved before the
	// suite fetched it, which are then judged as they were live: tokens by PublicKey, kid unread.
	JWKS []JWKSFetch `json:"jwks,omitempty"`
	// Restarts are the pods' restarts and replacements the suite saw (RuleContract); absent in
	// runs saved before it looked, and when there were none.
	Restarts []Restart `json:"restarts,omitempty"`
	// Verifier and Claims are Params'; absent for the JWT verifier with the default claims, as
	// every run saved before there was a choice judged with them. The equal verifier reads no
	// issuer, audience, token TTL or public key.
	Verifier VerifierKind `json:"verifier,omitempty"`
	Claims   []ClaimField `json:"claims,omitempty"`
	// API is the API the run was judged by; absent in runs saved before it was saved, which are
	// judged by the API their caller gives (Params: the token service's, the only target then).
	API *API `json:"api,omitempty"`
}

// JWK is an Ed25519 public key as a JSON Web Key.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
}

// UnmarshalJSON reads s, and refuses a file of a version this checker does not know or a
// version 2 file that lacks a field its version requires, naming them in one line.
func (s *SavedParams) UnmarshalJSON(b []byte) error {
	type plain SavedParams
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	switch {
	case s.Version > SavedFormat:
		return fmt.Errorf("saved params: format version %d is newer than this checker's %d: re-check with the stampede that wrote it", s.Version, SavedFormat)
	case s.Version == SavedFormat:
		var missing []string
		for _, f := range savedRequired {
			if _, ok := fields[f]; !ok {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("saved params: format version %d lacks %s: refusing to judge with defaults", s.Version, strings.Join(missing, ", "))
		}
	case s.Version != 0:
		return fmt.Errorf("saved params: unknown format version %d (files without a version are version 1; this checker writes %d)", s.Version, SavedFormat)
	}
	return nil
}

// Save returns p as SavedParams of the current format.
func (p Params) Save() SavedParams {
	s := SavedParams{
		Version:    SavedFormat,
		Issuer:     p.Issuer,
		Audience:   p.Audience,
		TokenTTL:   p.TokenTTL,
		PublicKey:  JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(p.PublicKey)},
		Strategy:   p.Contract.Strategy,
		Faults:     p.Faults,
		Registered: p.Registered,
		Customers:  p.Customers,
		Earlier:    p.Earlier,
		Coverage:   p.Coverage,
		Metrics:    p.Metrics,
		JWKS:       p.JWKS,
		Restarts:   p.Restarts,
		Scrapes:    p.Scrapes,
		Verifier:   p.Verifier,
		Claims:     p.Claims,
		API:        &p.API,
	}
	if p.Scrapes == nil {
		s.Metrics = p.Metrics
	}
	return s
}

// Params returns the Params s saved, or why they cannot judge anything; the caller sets Base
// from where the artifacts keep it. A file saved before the API was (no "api") is judged by
// defaultAPI, which the caller reads from the token service's target file; so is the contract of
// a file whose API predates the modes' contracts.
func (s SavedParams) Params(defaultAPI API) (Params, error) {
	api := defaultAPI
	if s.API != nil {
		api = *s.API
		if api.Contracts == nil {
			// Saved before the API kept its modes' contracts, when the checker knew only the
			// token service's: defaultAPI's.
			api.Contracts = defaultAPI.Contracts
		}
		if api.Names == (Names{}) {
			// Saved before the API kept the target's words, when every report read the token
			// service's: defaultAPI's, so that its prose (coverage reasons) reads as it did.
			api.Names = defaultAPI.Names
		}
	}
	strategy := s.Strategy
	v1 := s.Version == 0
	if v1 && s.Contract != nil {
		strategy = s.Contract.Strategy
	}
	jwt := s.Verifier == VerifierJWT || s.Verifier == "" && api.Verifier != VerifierEqual
	var key ed25519.PublicKey
	if jwt {
		var err error
		if key, err = s.publicKey(); err != nil {
			return Params{}, err
		}
	}
	if (jwt && s.Issuer == "") || strategy == "" {
		return Params{}, errors.New("saved params: no issuer or no strategy")
	}
	contract, err := api.Contract(strategy)
	if err != nil {
		return Params{}, fmt.Errorf("saved params: %w", err)
	}
	if jwt {
		if err := s.tokenLifetime(v1); err != nil {
			return Params{}, err
		}
	}
	return Params{
		API:             api,
		Verifier:        s.Verifier,
		Claims:          s.Claims,
		PublicKey:       key,
		Issuer:          s.Issuer,
		Audience:        s.Audience,
		TokenTTL:        s.TokenTTL,
		savedBeforeAuth: v1 && s.Audience == "" && s.TokenTTL == 0,
		savedBeforeRows: v1,
		Contract:        contract,
		Faults:          s.Faults,
		Registered:      s.Registered,
		Customers:       s.Customers,
		Earlier:         slices.Clip(s.Earlier),
		Coverage:        s.Coverage,
		Scrapes:         s.Scrapes,
		Metrics:         s.Metrics,
		JWKS:            s.JWKS,
		savedBeforeJWKS: len(s.JWKS) == 0,
		Restarts:        s.Restarts,
	}, nil
}

// publicKey returns the public key s saved, which the JWT verifier needs.
func (s SavedParams) publicKey() (ed25519.PublicKey, error) {
	if s.PublicKey.Kty != "OKP" || s.PublicKey.Crv != "Ed25519" {
		return nil, fmt.Errorf("saved params: public key is %s/%s, want OKP/Ed25519", s.PublicKey.Kty, s.PublicKey.Crv)
	}
	x, err := base64.RawURLEncoding.DecodeString(s.PublicKey.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("saved params: public key x is not %d bytes of base64url", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(x), nil
}

// tokenLifetime says why s cannot judge tokens' audience and lifetime: the JWT verifier needs
// both, unless s was saved before the service had them (v1 without either).
func (s SavedParams) tokenLifetime(v1 bool) error {
	switch {
	case !v1 && (s.Audience == "" || s.TokenTTL <= 0):
		return fmt.Errorf("saved params: format version %d with audience %q and token TTL %s: want both", s.Version, s.Audience, s.TokenTTL)
	case (s.Audience == "") != (s.TokenTTL == 0):
		// Both or neither: one alone is a damaged file, not one from before API keys.
		return fmt.Errorf("saved params: audience %q and token TTL %s: want both or, saved before the service had them, neither", s.Audience, s.TokenTTL)
	}
	return nil
}
