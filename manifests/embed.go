// Package manifests holds the suite's own Kubernetes manifests (a kustomize base: the namespace,
// the bundled PostgreSQL, the shared policies; and components that layer onto it) and renders
// them with a target's kustomize directory for one run of the suite. The token service's own
// directory, manifests/tokensvc, is its target file's (targets/tokensvc/target.yaml).
package manifests

import "embed"

// FS is the suite's tree: base/ and the kustomize components
// (components/<name>/kustomization.yaml), as on disk.
//
//go:embed base components/*/kustomization.yaml
var FS embed.FS
