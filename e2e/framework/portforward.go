package framework

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// PortForward forwards a free port on 127.0.0.1 to remotePort of a running pod matching selector
// in namespace, through the API server. It returns the local port and a stop function.
func PortForward(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, namespace, selector string, remotePort int) (int, func(), error) {
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return 0, nil, fmt.Errorf("list pods %q: %w", selector, err)
	}
	var pod string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			pod = p.Name
			break
		}
	}
	if pod == "" {
		return 0, nil, fmt.Errorf("no running pod for %q in %s", selector, namespace)
	}
	return PortForwardPod(ctx, cfg, namespace, pod, remotePort)
}

// PortForwardPod forwards a free local port on 127.0.0.1 to remotePort of the pod named pod in
// namespace, through the API server. It returns the local port and a stop function.
func PortForwardPod(ctx context.Context, cfg *rest.Config, namespace, pod string, remotePort int) (int, func(), error) {
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return 0, nil, fmt.Errorf("spdy round tripper: %w", err)
	}
	host := strings.TrimSuffix(cfg.Host, "/")
	u, err := url.Parse(fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/portforward", host, namespace, pod))
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward url: %w", err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", remotePort)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return 0, nil, fmt.Errorf("port-forward %s/%s: %w", namespace, pod, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		return 0, nil, fmt.Errorf("port-forward %s/%s: %w", namespace, pod, err)
	case <-ctx.Done():
		close(stop)
		return 0, nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stop)
		return 0, nil, fmt.Errorf("port-forward %s/%s: no local port: %w", namespace, pod, err)
	}
	var once bool
	return int(ports[0].Local), func() {
		if !once {
			once = true
			close(stop)
		}
	}, nil
}
