package netpol

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeNft records what is applied, and tells each call to Present (a sync that found the
// ruleset unchanged) and each failed Apply; the table is present once something was applied.
type fakeNft struct {
	mu       sync.Mutex
	fail     error // returned by Apply while set
	present  bool
	applies  chan string
	checks   chan struct{}
	failures chan struct{}
}

func newFakeNft() *fakeNft {
	return &fakeNft{applies: make(chan string, 100), checks: make(chan struct{}, 100), failures: make(chan struct{}, 100)}
}

func (f *fakeNft) Apply(_ context.Context, ruleset string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		f.failures <- struct{}{}
		return f.fail
	}
	f.present = true
	f.applies <- ruleset
	return nil
}

func (f *fakeNft) Present(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks <- struct{}{}
	return f.present, nil
}

func (f *fakeNft) set(fn func(f *fakeNft)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// next is the next ruleset applied, failing the test if none comes within a while.
func (f *fakeNft) next(t *testing.T) string {
	t.Helper()
	return receive(t, f.applies, "ruleset applied")
}

func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s within 30s", what)
		var zero T
		return zero
	}
}

// drain empties c, so that what comes next is caused by what the test does next.
func drain[T any](c <-chan T) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// startController runs a controller on a fake API server holding objs and waits for its first
// ruleset, and for its watches: the fake API server does not replay to a watch what was
// created between the listing and the watch.
func startController(t *testing.T, nft *fakeNft, p Params, objs ...runtime.Object) (*fake.Clientset, string, <-chan error) {
	t.Helper()
	client := fake.NewClientset(objs...)
	watching := make(chan string, 3)
	client.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		watching <- a.GetResource().Resource
		return false, nil, nil
	})
	p.Client, p.Node, p.Nft = client, "n1", nft
	p.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	c := NewController(p)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	first := nft.next(t)
	select {
	case <-c.Applied():
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	}
	for range 3 {
		<-watching
	}
	return client, first, errc
}

func TestControllerFollowsChanges(t *testing.T) {
	nft := newFakeNft()
	db := testPods[0].DeepCopy()
	client, first, _ := startController(t, nft, Params{Recheck: time.Hour}, namespace("app"), db)
	if strings.Contains(first, "jump") {
		t.Fatalf("first ruleset isolates a pod without policies:\n%s", first)
	}
	ctx := context.Background()

	pol := policy("app", "db", sel("app", "postgres"), ingressOnly, nil, nil)
	if _, err := client.NetworkingV1().NetworkPolicies("app").Create(ctx, pol, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rs := nft.next(t); !strings.Contains(rs, "ip daddr 10.244.1.10 jump ingress-10.244.1.10") {
		t.Fatalf("after a policy selecting app/db, ruleset:\n%s", rs)
	}

	// A change that leaves the ruleset as it is (a pod of another node) is synced, but nothing
	// is applied: the table is only checked to be there.
	drain(nft.checks)
	other := testPods[3].DeepCopy()
	if _, err := client.CoreV1().Pods("client").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	receive(t, nft.checks, "sync after an unrelated change")
	select {
	case rs := <-nft.applies:
		t.Fatalf("an unrelated change applied the ruleset again:\n%s", rs)
	default:
	}
	db.Labels = map[string]string{"app": "moved"}
	if _, err := client.CoreV1().Pods("app").Update(ctx, db, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rs := nft.next(t); strings.Contains(rs, "jump") {
		t.Fatalf("after app/db's labels changed, ruleset still isolates it:\n%s", rs)
	}

	if err := client.NetworkingV1().NetworkPolicies("app").Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	db.Labels = map[string]string{"app": "postgres"}
	if _, err := client.CoreV1().Pods("app").Update(ctx, db, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Both changes give the ruleset of no policies, the one in place: nothing is applied.
	if _, err := client.NetworkingV1().NetworkPolicies("app").Create(ctx, policy("app", "deny", sel(), egressOnly, nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rs := nft.next(t); !strings.Contains(rs, "ip saddr 10.244.1.10 jump egress-10.244.1.10") {
		t.Fatalf("after an egress deny, ruleset:\n%s", rs)
	}
}

func TestControllerRestoresTable(t *testing.T) {
	nft := newFakeNft()
	_, first, _ := startController(t, nft, Params{Recheck: 10 * time.Millisecond}, namespace("app"), testPods[0].DeepCopy())
	nft.set(func(f *fakeNft) { f.present = false })
	if rs := nft.next(t); rs != first {
		t.Errorf("restored ruleset:\n%s\nwant the one in place:\n%s", rs, first)
	}
}

func TestControllerRetries(t *testing.T) {
	nft := newFakeNft()
	client, _, _ := startController(t, nft, Params{Recheck: time.Hour}, namespace("app"), testPods[0].DeepCopy())
	nft.set(func(f *fakeNft) { f.fail = errors.New("nft -f: exit status 1: Error: Could not process rule") })
	if _, err := client.NetworkingV1().NetworkPolicies("app").Create(context.Background(),
		policy("app", "db", sel("app", "postgres"), ingressOnly, nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Retried with backoff until nft works again.
	receive(t, nft.failures, "failed apply")
	receive(t, nft.failures, "second failed apply")
	nft.set(func(f *fakeNft) { f.fail = nil })
	if rs := nft.next(t); !strings.Contains(rs, "jump ingress-10.244.1.10") {
		t.Fatalf("ruleset applied after nft recovered:\n%s", rs)
	}
}

func TestControllerFirstApplyFails(t *testing.T) {
	nft := newFakeNft()
	nft.fail = errors.New("exec: \"nft\": executable file not found in $PATH")
	c := NewController(Params{Client: fake.NewClientset(), Node: "n1", Nft: nft, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	err := c.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "apply the first ruleset") || !strings.Contains(err.Error(), "executable file not found") {
		t.Fatalf("Run = %v, want the first apply's error", err)
	}
	select {
	case <-c.Applied():
		t.Error("Applied closed though nothing was applied")
	default:
	}
}

func TestControllerCannotList(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "networkpolicies", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New(`networkpolicies.networking.k8s.io is forbidden: User "system:serviceaccount:kube-system:cnid" cannot list resource "networkpolicies"`)
	})
	c := NewController(Params{Client: client, Node: "n1", Nft: newFakeNft(), SyncTimeout: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	err := c.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not listed within 300ms") {
		t.Fatalf("Run = %v, want a sync timeout", err)
	}
}
