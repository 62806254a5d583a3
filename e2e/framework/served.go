package framework

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stampede-e2e/stampede/e2e/cluster/whoami/client"
)

// Vantage is a place this host sends requests to the target's Service from: a node's
// NodePort, or the suite's service URL.
type Vantage struct {
	// Name says where, e.g. the node's name.
	Name string
	// URL is the target's readiness path (deploy.readiness) reached through there.
	URL string
}

// ServedRound is what one round of requests from one vantage point saw.
type ServedRound struct {
	Vantage string
	// Answers counts the 200 answers per pod (the pod header).
	Answers map[string]int
	// Errors are the requests that failed: transport errors, other statuses, no pod header.
	Errors []string
}

// ServedGaps compares what each vantage point saw with the pods the Service has ready endpoints
// for, and says for each one what is wrong: ready pods that did not answer from there, pods that
// answered but are not ready endpoints (a stale rule on that node), failed requests. None means
// every ready pod answers from everywhere and nothing else does: traffic can start.
func ServedGaps(rounds []ServedRound, ready []string) []string {
	if len(ready) == 0 {
		return []string{"the Service has no ready endpoints"}
	}
	if len(rounds) == 0 {
		return []string{"no vantage point to check the Service from"}
	}
	var gaps []string
	for _, r := range rounds {
		var missing, extra []string
		for _, p := range ready {
			if r.Answers[p] == 0 {
				missing = append(missing, p)
			}
		}
		for p := range r.Answers {
			if !slices.Contains(ready, p) {
				extra = append(extra, p)
			}
		}
		slices.Sort(missing)
		slices.Sort(extra)
		var what []string
		if len(missing) > 0 {
			what = append(what, "ready pods that did not answer: "+strings.Join(missing, ", "))
		}
		if len(extra) > 0 {
			what = append(what, "pods that answered but are not ready endpoints: "+strings.Join(extra, ", "))
		}
		if len(r.Errors) > 0 {
			what = append(what, fmt.Sprintf("%d failed requests, first: %s", len(r.Errors), r.Errors[0]))
		}
		if len(what) > 0 {
			gaps = append(gaps, r.Vantage+": "+strings.Join(what, "; "))
		}
	}
	return gaps
}

// servedTimeout bounds WaitServedEverywhere.
const servedTimeout = time.Minute

// WaitServedEverywhere waits until, through the Service, every ready pod of the target
// answers from every node (its NodePort at the node's InternalIP, which this host reaches on the
// kind network) and from the suite's service URL, and no other pod does. The Endpoints being
// ready is not enough: each node's kube-proxy applies them on its own schedule, and a burst that
// starts before one has met transport errors (EOF, connection reset) in its first milliseconds.
// In existing mode the nodes may not be reachable from here: only the service URL is checked.
func (d *Deployment) WaitServedEverywhere(ctx context.Context) {
	GinkgoHelper()
	start := time.Now()
	vantages := d.vantages(ctx)
	if len(vantages) == 0 {
		// Existing mode with traffic from inside the cluster only: nothing here reaches the
		// Service. The ready endpoints are all that was checked.
		d.Env.Logger.Info("no vantage point on this host to check the Service from: relying on its ready endpoints", "namespace", d.Namespace)
		return
	}
	header := d.Env.Config.podHeader()
	if header == "" {
		d.Env.Logger.Info("the target names no pod header (observability.podHeader): relying on the Service's ready endpoints", "namespace", d.Namespace)
		return
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var gaps []string
	Eventually(ctx, func(g Gomega) {
		ready, err := d.ReadyEndpoints(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		rounds := make([]ServedRound, 0, len(vantages))
		for _, v := range vantages {
			rounds = append(rounds, askServed(ctx, hc, header, v, ready))
		}
		gaps = ServedGaps(rounds, ready)
		g.Expect(gaps).To(BeEmpty(), "through the Service, from every vantage point, exactly the ready pods %v answer", ready)
	}).WithTimeout(servedTimeout).WithPolling(rolloutPoll).Should(Succeed(),
		"the target answers through its Service from every node")
	d.Env.Logger.Info("service answers from every vantage point", "namespace", d.Namespace,
		"vantages", len(vantages), "took", time.Since(start).Round(time.Millisecond))
}

// vantages lists where WaitServedEverywhere asks from: every node's NodePort (kind and reuse
// modes), and the service URL.
func (d *Deployment) vantages(ctx context.Context) []Vantage {
	GinkgoHelper()
	var vs []Vantage
	if d.Env.ServiceURL != "" {
		vs = append(vs, Vantage{Name: "service URL " + d.Env.ServiceURL, URL: strings.TrimSuffix(d.Env.ServiceURL, "/") + d.Env.Config.Target.Deploy.Readiness.Path})
	}
	if d.Env.Config.Mode == "existing" {
		d.Env.Logger.Info("existing mode: checking the Service through the service URL only, the nodes may not be reachable from here")
		return vs
	}
	svc, err := d.Env.Client.CoreV1().Services(d.Namespace).Get(ctx, d.Env.Config.serviceName(), metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred(), "the target's Service")
	var nodePort int32
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			nodePort = p.NodePort
			break
		}
	}
	Expect(nodePort).NotTo(BeZero(), "the target's Service has no NodePort")
	nodes, err := d.Env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	Expect(err).NotTo(HaveOccurred(), "list nodes")
	for _, n := range nodes.Items {
		ip := nodeInternalIP(&n)
		Expect(ip).NotTo(BeEmpty(), "node %s has no InternalIP", n.Name)
		vs = append(vs, Vantage{
			Name: n.Name,
			URL:  "http://" + net.JoinHostPort(ip, strconv.Itoa(int(nodePort))) + d.Env.Config.Target.Deploy.Readiness.Path,
		})
	}
	return vs
}

func nodeInternalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// askServed sends requests from v, each on a new connection so that kube-proxy picks a pod for
// each, until every pod of ready has answered, a request fails, or enough requests were sent
// that a missing pod is not bad luck (with 3 pods and 30 requests, 3·(2/3)^30 ≈ 2e-5).
func askServed(ctx context.Context, hc *http.Client, header string, v Vantage, ready []string) ServedRound {
	r := ServedRound{Vantage: v.Name + " (" + v.URL + ")", Answers: map[string]int{}}
	limit := max(10, 10*len(ready))
	for range limit {
		pod, err := servedBy(ctx, hc, header, v.URL)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			return r
		}
		r.Answers[pod]++
		if len(r.Answers) >= len(ready) && len(ServedGaps([]ServedRound{r}, ready)) == 0 {
			return r
		}
	}
	return r
}

// servedBy sends one GET and returns the pod header of a 200 answer.
func servedBy(ctx context.Context, hc *http.Client, header, url string) (string, error) {
	status, h, _, err := client.Get(ctx, hc, url, 4096)
	if err != nil {
		return "", err
	}
	pod := h.Get(header)
	if status != http.StatusOK {
		return "", fmt.Errorf("status %d from %q", status, pod)
	}
	if pod == "" {
		return "", fmt.Errorf("no %s in the answer", header)
	}
	return pod, nil
}
