package framework

import (
	"context"
	"fmt"
	"slices"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// readyPodsFromSlices returns the names of the pods behind the target's ready endpoints in
// namespace, as its EndpointSlices list them: the replicas kube-proxy sends the suite's traffic
// to, which the coverage guard compares with the pod header of every answer.
func readyPodsFromSlices(ctx context.Context, cs kubernetes.Interface, namespace, service string) ([]string, error) {
	list, err := cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + service,
	})
	if err != nil {
		return nil, fmt.Errorf("list endpoint slices of %s/%s: %w", namespace, service, err)
	}
	return readyPods(list.Items), nil
}

// readyPods returns the sorted, distinct names of the pods behind the ready endpoints of slices
// (one pod appears in an IPv4 and an IPv6 slice on a dual-stack cluster). A nil ready condition
// counts as ready, as the EndpointSlice API asks of consumers.
func readyPods(items []discoveryv1.EndpointSlice) []string {
	pods := []string{}
	for _, s := range items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || ep.TargetRef.Name == "" {
				continue
			}
			if !slices.Contains(pods, ep.TargetRef.Name) {
				pods = append(pods, ep.TargetRef.Name)
			}
		}
	}
	slices.Sort(pods)
	return pods
}
