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

// TestReadyPodsFromSlices lists the target's ready replicas: not the unready or terminating
// ones, not another Service's or another namespace's, each pod once however many slices name it.
func TestReadyPodsFromSlices(t *testing.T) {
	svc := loadTestTarget(t).Deploy.Service.Name
	yes, no := new(bool), new(bool)
	*yes = true
	node := endpoint("", yes)
	node.TargetRef = &corev1.ObjectReference{Kind: "Node", Name: "kind-worker"}
	cs := fake.NewClientset(
		slice("ns", svc+"-v4", svc, endpoint("web-a", yes), endpoint("web-b", nil), endpoint("web-c", no), endpoint("", yes), node),
		slice("ns", svc+"-v6", svc, endpoint("web-a", yes), endpoint("web-d", yes)),
		slice("ns", "postgres-x", manifests.PostgresName, endpoint("postgres-0", yes)),
		slice("other", svc+"-o", svc, endpoint("web-z", yes)),
	)
	got, err := readyPodsFromSlices(context.Background(), cs, "ns", svc)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"web-a", "web-b", "web-d"}; !slices.Equal(got, want) {
		t.Errorf("ready pods %v, want %v", got, want)
	}
	if got, err := readyPodsFromSlices(context.Background(), cs, "empty", svc); err != nil || len(got) != 0 {
		t.Errorf("no slices: %v, %v", got, err)
	}
}
