// Package toxiproxy holds the manifests of toxiproxy in front of PostgreSQL, for the chaos
// specs, and renders them into a run's namespace with the locally built image.
package toxiproxy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Names the manifests declare.
const (
	// Name is the Deployment, the Service and the pods' app.kubernetes.io/name.
	Name = "toxiproxy"
	// ProxyName is the proxy to PostgreSQL.
	ProxyName = "postgres"
	// ProxyPort is where the proxy listens: point TOKENSVC_DATABASE_HOST at Name and
	// TOKENSVC_DATABASE_PORT at it.
	ProxyPort = 5432
	// APIPort is toxiproxy's HTTP API.
	APIPort = 8474
	// PlaceholderImage is the image in the YAML, which Render replaces.
	PlaceholderImage = "stampede/toxiproxy:dev"
)

//go:embed toxiproxy.yaml
var manifest []byte

// Render returns the objects of toxiproxy.yaml in namespace, running image, in apply order.
func Render(namespace, image string) ([]*unstructured.Unstructured, error) {
	var errs []error
	for _, msg := range validation.IsDNS1123Label(namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: %s", namespace, msg))
	}
	if image == "" || strings.ContainsAny(image, " \t\n") || !strings.Contains(image, ":") || strings.HasSuffix(image, ":latest") {
		errs = append(errs, fmt.Errorf("image %q: want a tagged reference (scripts/build-image.sh toxiproxy prints it)", image))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("render toxiproxy: %w", err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("render toxiproxy: decode: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		o := &unstructured.Unstructured{Object: m}
		o.SetNamespace(namespace)
		if o.GetKind() == "Deployment" {
			if err := setImage(o, image); err != nil {
				return nil, fmt.Errorf("render toxiproxy: %w", err)
			}
		}
		objs = append(objs, o)
	}
	return objs, nil
}

func setImage(o *unstructured.Unstructured, image string) error {
	containers, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return fmt.Errorf("containers of %s: %w", o.GetName(), err)
	}
	replaced := 0
	for _, c := range containers {
		cm, ok := c.(map[string]any)
		if ok && cm["image"] == PlaceholderImage {
			cm["image"] = image
			replaced++
		}
	}
	if replaced != 1 {
		return fmt.Errorf("%s: %d containers with image %s, want 1", o.GetName(), replaced, PlaceholderImage)
	}
	return unstructured.SetNestedSlice(o.Object, containers, "spec", "template", "spec", "containers")
}
