package framework

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/stampede-e2e/stampede/manifests"
)

func endpoint(pod string, ready *bool) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	if pod != "" {
		ep.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: pod}
	}
	return ep
}

func slice(namespace, name, service string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}
}

// TestReadyPodsFromSlices lists the token service's ready replicas: not the unready or
// terminating ones, not another Service's or another namespace's, each pod once however many
// slices name it.
func TestReadyPodsFromSlices(t *testing.T) {
	yes, no := new(bool), new(bool)
	*yes = true
	node := endpoint("", yes)
	node.TargetRef = &corev1.ObjectReference{Kind: "Node", Name: "kind-worker"}
	cs := fake.NewClientset(
		slice("ns", "tokensvc-v4", manifests.TokensvcName, endpoint("tokensvc-a", yes), endpoint("tokensvc-b", nil), endpoint("tokensvc-c", no), endpoint("", yes), node),
		slice("ns", "tokensvc-v6", manifests.TokensvcName, endpoint("tokensvc-a", yes), endpoint("tokensvc-d", yes)),
		slice("ns", "postgres-x", manifests.PostgresName, endpoint("postgres-0", yes)),
		slice("other", "tokensvc-o", manifests.TokensvcName, endpoint("tokensvc-z", yes)),
	)
	got, err := readyPodsFromSlices(context.Background(), cs, "ns", manifests.TokensvcName)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tokensvc-a", "tokensvc-b", "tokensvc-d"}; !slices.Equal(got, want) {
		t.Errorf("ready pods %v, want %v", got, want)
	}
	if got, err := readyPodsFromSlices(context.Background(), cs, "empty", manifests.TokensvcName); err != nil || len(got) != 0 {
		t.Errorf("no slices: %v, %v", got, err)
	}
}
