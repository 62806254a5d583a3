// Package manifests holds the Kubernetes manifests of the system under test, a kustomize base
// one overlay per create strategy and components that layer onto any of them, and renders them for one run of the suite.
package manifests

import "embed"

// FS is the manifests tree: base/, overlays/<strategy>/ and the kustomize components
// (components/<name>/kustomization.yaml), as on disk.
//
//go:embed base overlays components/*/kustomization.yaml
var FS embed.FS
