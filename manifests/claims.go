package manifests

import "time"

// The token service's defaults that its clients see (service/README.md): the base deploys it
// with them. They live here, beside the base's names, rather than in e2e/framework, so that a
// package that only needs them (targets/tokensvc's tests, which hold the target file to them)
// compiles without client-go and kind.
const (
	// TokensvcIssuer is the iss claim of the token service's tokens.
	TokensvcIssuer = "stampede-tokensvc"
	// TokensvcAudience is the aud claim of the token service's tokens.
	TokensvcAudience = "stampede-merchant-api"
	// TokensvcTokenTTL is exp - iat of the token service's tokens.
	TokensvcTokenTTL = 24 * time.Hour
	// TokensvcJWKSPath is where the token service publishes the keys that verify its tokens.
	TokensvcJWKSPath = "/.well-known/jwks.json"
)
