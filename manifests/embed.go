// Package manifests holds the Kubernetes manifests of the system under test, a kustomize base
// and one overlay per create strategy, and renders them for one run of the suite.
package manifests

import "embed"

// FS is the manifests tree: base/ and overlays/<strategy>/, as on disk.
//
//go:embed base overlays
var FS embed.FS
