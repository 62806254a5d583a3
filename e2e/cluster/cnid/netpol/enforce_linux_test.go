package netpol

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// These tests load rulesets into a real kernel, inside network namespaces of their own (named
// stampede-npt-*, deleted when the test ends): the host's own network namespace, its links and
// its nftables ruleset are never touched. They need root, ip and nft, and skip without them.

// requireNetns skips the test unless it can create network namespaces and run nft.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
}

// newNetns creates a network namespace for the test and deletes it when the test ends.
func newNetns(t *testing.T, role string) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "stampede-npt-" + hex.EncodeToString(b) + "-" + role
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		// Root in a container without CAP_SYS_ADMIN, as CI runners can be.
		if strings.Contains(string(out), "Operation not permitted") || strings.Contains(string(out), "Permission denied") {
			t.Skipf("cannot create network namespaces here: %s", bytes.TrimSpace(out))
		}
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs f on an OS thread that has joined network namespace ns: the sockets f opens
// belong to ns. It runs on a goroutine of its own whose thread is never handed back to the
// scheduler, so that a thread left in ns (if returning failed) ends with it.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = f()
		if rerr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); rerr == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// TestRulesetsLoad loads every ruleset of TestBuild's cases into nft, twice (the second time
// replacing the table that the first created): the text must be nft's syntax, not only look it.
func TestRulesetsLoad(t *testing.T) {
	requireNetns(t)
	nft := NftCommand{Prefix: []string{"ip", "netns", "exec", newNetns(t, "load")}}
	ctx := context.Background()
	for _, tc := range buildCases {
		rs := Build("n1", Cluster{Pods: testPods, Namespaces: testNamespaces, Policies: tc.policies})
		for range 2 {
			if err := nft.Apply(ctx, rs.Text); err != nil {
				t.Fatalf("%s: %v\nruleset:\n%s", tc.name, err, rs.Text)
			}
		}
	}
	if ok, err := nft.Present(ctx); !ok || err != nil {
		t.Fatalf("Present after applying = %v, %v; want true", ok, err)
	}
	for range 2 {
		if err := nft.Delete(ctx); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if ok, err := nft.Present(ctx); ok || err != nil {
		t.Fatalf("Present after deleting the table = %v, %v; want false", ok, err)
	}
}

// lab is a node network namespace routing between two pod network namespaces through veths, as
// ptp does, so that pod-to-pod traffic passes the node's forward hook. Addresses are in
// 10.250.0.0/16, which exists only inside these namespaces.
type lab struct {
	node, a, b string
	nft        NftCommand
}

const (
	labA = "10.250.1.2"
	labB = "10.250.2.2"
)

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{node: newNetns(t, "node"), a: newNetns(t, "a"), b: newNetns(t, "b")}
	l.nft = NftCommand{Prefix: []string{"ip", "netns", "exec", l.node}}
	for i, pod := range []struct{ ns, ip string }{{l.a, labA}, {l.b, labB}} {
		gw := fmt.Sprintf("10.250.%d.1", i+1)
		veth := fmt.Sprintf("veth%d", i+1)
		sh(t, "ip", "-n", l.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod.ns)
		sh(t, "ip", "-n", l.node, "addr", "add", gw+"/24", "dev", veth)
		sh(t, "ip", "-n", l.node, "link", "set", veth, "up")
		sh(t, "ip", "-n", pod.ns, "addr", "add", pod.ip+"/24", "dev", "eth0")
		sh(t, "ip", "-n", pod.ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", pod.ns, "link", "set", "lo", "up")
		sh(t, "ip", "-n", pod.ns, "route", "add", "default", "via", gw)
	}
	sh(t, "ip", "netns", "exec", l.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return l
}

// serve echoes every TCP connection and UDP datagram to addr (host:port) in network namespace
// ns until the test ends.
func serve(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := inNetns(ns, func() (err error) {
		if ln, err = net.Listen("tcp4", addr); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// dial connects from network namespace ns to addr over TCP.
func dial(ns, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	return c, err
}

// allowedWithin is how long a connection that policies allow may take: long, because a loaded
// host must not fail the test. deniedAfter is how long a denied one is given to get through: a
// denied SYN is dropped, so the dial times out, while an allowed one completes in microseconds.
const (
	allowedWithin = 10 * time.Second
	deniedAfter   = time.Second
)

func (l *lab) expectTCP(t *testing.T, from, to string, allowed bool) {
	t.Helper()
	c, err := dial(from, to, map[bool]time.Duration{true: allowedWithin, false: deniedAfter}[allowed])
	switch {
	case allowed && err != nil:
		t.Errorf("tcp to %s: %v, want a connection", to, err)
	case allowed:
		if err := echo(c, allowedWithin); err != nil {
			t.Errorf("tcp to %s: %v", to, err)
		}
		c.Close()
	case err == nil:
		c.Close()
		t.Errorf("tcp to %s connected, want it dropped", to)
	case !isTimeout(err):
		t.Errorf("tcp to %s: %v, want a timeout (a dropped SYN, not a reset)", to, err)
	}
}

func (l *lab) expectUDP(t *testing.T, from, to string, allowed bool) {
	t.Helper()
	var err error
	ierr := inNetns(from, func() error {
		c, derr := net.Dial("udp4", to)
		if derr != nil {
			return derr
		}
		defer c.Close()
		err = echo(c, map[bool]time.Duration{true: allowedWithin, false: deniedAfter}[allowed])
		return nil
	})
	switch {
	case ierr != nil:
		t.Fatalf("udp socket: %v", ierr)
	case allowed && err != nil:
		t.Errorf("udp to %s: %v, want an answer", to, err)
	case !allowed && err == nil:
		t.Errorf("udp to %s answered, want it dropped", to)
	case !allowed && !isTimeout(err):
		t.Errorf("udp to %s: %v, want a timeout", to, err)
	}
}

// echo writes a byte to c and reads it back within timeout.
func echo(c net.Conn, timeout time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestEnforcement loads rulesets into the lab's node and checks what gets through.
func TestEnforcement(t *testing.T) {
	requireNetns(t)
	l := newLab(t)
	for _, addr := range []string{labB + ":5432", labB + ":8080", labB + ":53"} {
		serve(t, l.b, addr)
	}
	serve(t, l.a, labA+":7000")
	ctx := context.Background()

	ns := namespace("app")
	tokensvc := testPod("app", "tokensvc", "lab", labA, map[string]string{"app": "tokensvc"})
	db := testPod("app", "db", "lab", labB, map[string]string{"app": "postgres"}, port("postgres", 5432, TCP))
	apply := func(t *testing.T, policies ...*networkingv1.NetworkPolicy) {
		t.Helper()
		rs := Build("lab", Cluster{Pods: []*corev1.Pod{tokensvc, db}, Namespaces: []*corev1.Namespace{ns}, Policies: policies})
		if err := l.nft.Apply(ctx, rs.Text); err != nil {
			t.Fatalf("apply: %v\n%s", err, rs.Text)
		}
	}

	// Without a ruleset everything gets through: what the cases below see dropped is theirs.
	t.Run("no policies", func(t *testing.T) {
		apply(t)
		l.expectTCP(t, l.a, labB+":5432", true)
		l.expectTCP(t, l.a, labB+":8080", true)
		l.expectTCP(t, l.b, labA+":7000", true)
		l.expectUDP(t, l.a, labB+":53", true)
	})

	// An existing connection outlives a policy that would refuse it: only new ones are judged.
	before, err := dial(l.a, labB+":8080", allowedWithin)
	if err != nil {
		t.Fatalf("connection before the policies: %v", err)
	}
	defer before.Close()

	t.Run("ingress by named port", func(t *testing.T) {
		apply(t, policy("app", "db", sel("app", "postgres"), ingressOnly,
			from(ports(named(TCP, "postgres")), pods(sel("app", "tokensvc"))), nil))
		l.expectTCP(t, l.a, labB+":5432", true)
		l.expectTCP(t, l.a, labB+":8080", false)
		l.expectUDP(t, l.a, labB+":53", false)
		// db's egress is open, and tokensvc is not isolated.
		l.expectTCP(t, l.b, labA+":7000", true)
		if err := echo(before, allowedWithin); err != nil {
			t.Errorf("connection established before the policy: %v, want it kept", err)
		}
	})

	t.Run("default deny and egress", func(t *testing.T) {
		apply(t,
			policy("app", "deny", sel(), bothTypes, nil, nil),
			policy("app", "db", sel("app", "postgres"), ingressOnly, from(ports(num(TCP, 5432)), pods(sel("app", "tokensvc"))), nil),
			policy("app", "tokensvc", sel("app", "tokensvc"), egressOnly, nil, []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{pods(sel("app", "postgres"))}, Ports: ports(num(TCP, 5432), num(TCP, 8080))},
				{Ports: ports(num(UDP, 53))},
			}),
		)
		l.expectTCP(t, l.a, labB+":5432", true)
		l.expectTCP(t, l.a, labB+":8080", false) // tokensvc's egress allows it, db's ingress does not
		l.expectUDP(t, l.a, labB+":53", false)   // the same, for UDP
		l.expectTCP(t, l.b, labA+":7000", false) // db's egress: nothing
	})

	t.Run("egress only, ingress left open", func(t *testing.T) {
		apply(t, policy("app", "tokensvc", sel("app", "tokensvc"), egressOnly, nil, to(ports(num(UDP, 53)), block("10.250.2.0/24"))))
		l.expectUDP(t, l.a, labB+":53", true)
		l.expectTCP(t, l.a, labB+":5432", false)
		l.expectTCP(t, l.b, labA+":7000", true)
	})

	t.Run("ipBlock except", func(t *testing.T) {
		apply(t, policy("app", "db", sel("app", "postgres"), ingressOnly, from(nil, block("10.250.0.0/16", "10.250.1.0/24")), nil))
		l.expectTCP(t, l.a, labB+":5432", false)
		apply(t, policy("app", "db", sel("app", "postgres"), ingressOnly, from(nil, block("10.250.0.0/16", "10.250.3.0/24")), nil))
		l.expectTCP(t, l.a, labB+":5432", true)
	})

	// kube-proxy translates a Service IP in prerouting, so the forward hook sees the pod behind
	// it: egress to CoreDNS's pods allows queries to the kube-dns Service IP. A DNAT in the lab's
	// node stands in for kube-proxy.
	t.Run("egress to a Service's pods by namespace and pod selector", func(t *testing.T) {
		const svc = "10.250.96.10"
		if err := l.nft.Apply(ctx, `table ip stampede-npt-nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr `+svc+` dnat to `+labB+`
	}
}
`); err != nil {
			t.Fatal(err)
		}
		dns := testPod("kube-system", "coredns", "lab", labB, map[string]string{"k8s-app": "kube-dns"}, port("dns", 53, UDP))
		cl := Cluster{Pods: []*corev1.Pod{tokensvc, dns}, Namespaces: []*corev1.Namespace{ns, namespace("kube-system")}}
		for _, tc := range []struct {
			policies []*networkingv1.NetworkPolicy
			dns, tcp bool
		}{
			{nil, true, true}, // the DNAT works
			{[]*networkingv1.NetworkPolicy{policy("app", "dns", sel(), egressOnly, nil, to(ports(named(UDP, "dns")),
				both(sel("kubernetes.io/metadata.name", "kube-system"), sel("k8s-app", "kube-dns"))))}, true, false},
		} {
			cl.Policies = tc.policies
			if err := l.nft.Apply(ctx, Build("lab", cl).Text); err != nil {
				t.Fatal(err)
			}
			l.expectUDP(t, l.a, svc+":53", tc.dns)
			l.expectTCP(t, l.a, svc+":5432", tc.tcp)
		}
	})

	t.Run("deleting the table lifts enforcement", func(t *testing.T) {
		apply(t, policy("app", "deny", sel(), bothTypes, nil, nil))
		l.expectTCP(t, l.a, labB+":8080", false)
		if err := l.nft.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		l.expectTCP(t, l.a, labB+":8080", true)
	})
}
