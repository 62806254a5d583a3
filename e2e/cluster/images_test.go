package cluster

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// fakeNode is a kind node by name only: podNodes reads nothing else.
type fakeNode struct {
	nodes.Node
	name string
}

func (n fakeNode) String() string { return n.name }

func kindNode(name string) nodes.Node { return fakeNode{name: name} }

func node(name string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints}}
}

// The images go only where the suite's pods can run: not into a control plane that keeps its
// NoSchedule taint, but into a worker whose not-ready taint is still being lifted, and into every
// node when all are tainted (a load never ends up nowhere).
func TestPodNodes(t *testing.T) {
	noSchedule := corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}
	preferNo := corev1.Taint{Key: "x", Effect: corev1.TaintEffectPreferNoSchedule}
	noExecute := corev1.Taint{Key: "y", Effect: corev1.TaintEffectNoExecute}
	notReady := corev1.Taint{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule}
	kn := []nodes.Node{kindNode("s-control-plane"), kindNode("s-worker"), kindNode("s-worker2")}
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		want  []string
	}{
		{"workers", []*corev1.Node{node("s-control-plane", noSchedule), node("s-worker"), node("s-worker2", preferNo)}, []string{"s-worker", "s-worker2"}},
		{"a worker that joined moments ago", []*corev1.Node{node("s-control-plane", noSchedule), node("s-worker", notReady), node("s-worker2")}, []string{"s-worker", "s-worker2"}},
		{"no-execute", []*corev1.Node{node("s-control-plane"), node("s-worker", noExecute), node("s-worker2")}, []string{"s-control-plane", "s-worker2"}},
		{"every node tainted", []*corev1.Node{node("s-control-plane", noSchedule), node("s-worker", noSchedule), node("s-worker2", noExecute)}, []string{"s-control-plane", "s-worker", "s-worker2"}},
	} {
		var objs []runtime.Object
		for _, n := range tc.nodes {
			objs = append(objs, n)
		}
		c := &Cluster{client: fake.NewClientset(objs...)}
		got, err := c.podNodes(context.Background(), kn)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var names []string
		for _, n := range got {
			names = append(names, n.String())
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, names, tc.want)
		}
	}
}
