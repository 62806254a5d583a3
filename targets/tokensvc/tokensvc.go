// Package tokensvc embeds the bundled token service's target file, so that wherever stampede
// runs it can judge by the token service's API a run saved before judge.json kept the API (the
// token service was then the only target).
package tokensvc

import (
	_ "embed"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/target"
)

// File is target.yaml's bytes.
//
//go:embed target.yaml
var File []byte

// API is the token service's API as its target file describes it. The file is decoded without
// target.Load's validation, whose checks of the deploy section read files relative to the
// repository: TestAPI holds it to what target.Load reads from the same bytes in the repository.
func API() (check.API, error) {
	t, err := Target()
	if err != nil {
		return check.API{}, err
	}
	return check.APIFromTarget(t)
}

// Target is the token service's target file decoded, without target.Load's validation (API).
func Target() (*target.Target, error) {
	var t target.Target
	if err := yaml.Unmarshal(File, &t); err != nil {
		return nil, fmt.Errorf("the token service's target file: %w", err)
	}
	return &t, nil
}

// Name is the token service's target name, which a trend gives the runs saved before
// results.json named their target.
func Name() (string, error) {
	var t struct {
		Name string `yaml:"name"`
	}
	if err := yaml.Unmarshal(File, &t); err != nil {
		return "", fmt.Errorf("the token service's target file: %w", err)
	}
	if t.Name == "" {
		return "", fmt.Errorf("the token service's target file names no target")
	}
	return t.Name, nil
}
