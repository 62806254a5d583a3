package manifests

import "time"

// The bundled token service's names and defaults (manifests/tokensvc, service/README.md), which
// its target file (targets/tokensvc/target.yaml) states and e2e/target's tests hold it to. The
// render reads none of them: they serve the packages that do not read the target yet (e2e/chaos,
// the specs) and those tests, which compile without client-go and kind.
const (
	// TokensvcName is the token service's Deployment, Service and pods' NameLabel.
	TokensvcName = "tokensvc"
	// TokensvcPlaceholderImage is the token service's image in its manifests.
	TokensvcPlaceholderImage = "stampede/tokensvc:dev"
	// TokensvcPort is the token service's container port (its Service's target).
	TokensvcPort = 8080
	// TokensvcMetricsPort is the token service's metrics port: not in its Service, reached
	// through a port-forward.
	TokensvcMetricsPort = 9090
	// TokensvcServicePort is the port of the token service's Service, on its ClusterIP.
	TokensvcServicePort = 8080
	// TokensvcIssuer is the iss claim of the token service's tokens.
	TokensvcIssuer = "stampede-tokensvc"
	// TokensvcAudience is the aud claim of the token service's tokens.
	TokensvcAudience = "stampede-merchant-api"
	// TokensvcTokenTTL is exp - iat of the token service's tokens.
	TokensvcTokenTTL = 24 * time.Hour
	// TokensvcJWKSPath is where the token service publishes the keys that verify its tokens.
	TokensvcJWKSPath = "/.well-known/jwks.json"
)
