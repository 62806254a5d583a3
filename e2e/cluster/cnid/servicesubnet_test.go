package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kindClusterConfiguration is the ClusterConfiguration kind v0.33.0 writes for kubeadm, as
// kube-system/kubeadm-config holds it after kubeadm init.
const kindClusterConfiguration = `apiServer:
  certSANs:
  - localhost
  - 127.0.0.1
apiVersion: kubeadm.k8s.io/v1beta4
clusterName: stampede-h2
controlPlaneEndpoint: stampede-h2-control-plane:6443
controllerManager:
  extraArgs:
  - name: enable-hostpath-provisioner
    value: "true"
kind: ClusterConfiguration
kubernetesVersion: v1.34.4
networking:
  dnsDomain: cluster.local
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/16
`

func TestParseServiceSubnets(t *testing.T) {
	for _, tc := range []struct {
		name, cc string
		want     []string
		wantErr  string
	}{
		{"kind ipv4", kindClusterConfiguration, []string{"10.96.0.0/16"}, ""},
		{"dual stack", "networking:\n  serviceSubnet: 10.96.0.0/16,fd00:10:96::/112\n", []string{"10.96.0.0/16", "fd00:10:96::/112"}, ""},
		{"spaces and host bits", "networking:\n  serviceSubnet: ' 10.96.1.7/16 , '\n", []string{"10.96.0.0/16"}, ""},
		{"absent", "networking:\n  podSubnet: 10.244.0.0/16\n", nil, "no networking.serviceSubnet"},
		{"not a CIDR", "networking:\n  serviceSubnet: 10.96.0.0\n", nil, `service subnet "10.96.0.0"`},
		{"not YAML", "networking: [\n", nil, "parse ClusterConfiguration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseServiceSubnets(tc.cc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, p := range got {
				gs = append(gs, p.String())
			}
			if !slices.Equal(gs, tc.want) {
				t.Errorf("subnets = %v, want %v", gs, tc.want)
			}
		})
	}
}

func TestServiceSubnetsFromConfigMap(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: kubeadmConfigMap}}
	if _, err := serviceSubnetsFrom(cm); err == nil || !strings.Contains(err.Error(), "no key ClusterConfiguration") {
		t.Errorf("empty configmap: err = %v, want no key", err)
	}
	cm.Data = map[string]string{kubeadmConfigKey: kindClusterConfiguration}
	got, err := serviceSubnetsFrom(cm)
	if err != nil || len(got) != 1 || got[0] != netip.MustParsePrefix("10.96.0.0/16") {
		t.Errorf("serviceSubnetsFrom = %v, %v; want [10.96.0.0/16]", got, err)
	}
}

func TestRejectRules(t *testing.T) {
	c := []string{"-m", "comment", "--comment", rejectComment}
	for _, tc := range []struct {
		subnet string
		want   []rule
	}{
		{"10.96.0.0/16", []rule{
			{"iptables", slices.Concat([]string{"-p", "tcp", "-d", "10.96.0.0/16"}, c, []string{"-j", "REJECT", "--reject-with", "tcp-reset"})},
			{"iptables", slices.Concat([]string{"-d", "10.96.0.0/16"}, c, []string{"-j", "REJECT", "--reject-with", "icmp-port-unreachable"})},
		}},
		{"fd00:10:96::/112", []rule{
			{"ip6tables", slices.Concat([]string{"-p", "tcp", "-d", "fd00:10:96::/112"}, c, []string{"-j", "REJECT", "--reject-with", "tcp-reset"})},
			{"ip6tables", slices.Concat([]string{"-d", "fd00:10:96::/112"}, c, []string{"-j", "REJECT", "--reject-with", "icmp6-port-unreachable"})},
		}},
	} {
		got := rejectRules(netip.MustParsePrefix(tc.subnet))
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d rules, want %d", tc.subnet, len(got), len(tc.want))
		}
		for i := range got {
			if got[i].Cmd != tc.want[i].Cmd || !slices.Equal(got[i].Spec, tc.want[i].Spec) {
				t.Errorf("%s rule %d:\n got %s\nwant %s", tc.subnet, i, got[i], tc.want[i])
			}
		}
	}
}

// fakeIptables is a FORWARD chain that answers -C and -I as iptables does; exit status 1 of a
// real process stands for "no such rule", as iptables -C reports it.
type fakeIptables struct {
	chain []string
	calls []string
	fail  error
}

func (f *fakeIptables) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	if f.fail != nil {
		return []byte("iptables: lock held"), f.fail
	}
	if len(args) < 5 || args[0] != "-w" || args[1] != "-t" || args[2] != "filter" || args[4] != "FORWARD" {
		return nil, fmt.Errorf("unexpected call %s %v", name, args)
	}
	switch args[3] {
	case "-C":
		if slices.Contains(f.chain, name+" "+strings.Join(args[5:], " ")) {
			return nil, nil
		}
		return []byte("iptables: Bad rule (does a matching rule exist in that chain?)."), exitStatus(ctx, 1)
	case "-I":
		if args[5] != "1" {
			return nil, fmt.Errorf("insert at %s, want 1", args[5])
		}
		f.chain = slices.Insert(f.chain, 0, name+" "+strings.Join(args[6:], " "))
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected op %s", args[3])
}

// exitStatus returns the *exec.ExitError of a process that exited with code.
func exitStatus(ctx context.Context, code int) error {
	return exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("exit %d", code)).Run()
}

func TestEnsureRules(t *testing.T) {
	ctx := context.Background()
	rules := rejectRules(netip.MustParsePrefix("10.96.0.0/16"))
	f := &fakeIptables{chain: []string{"iptables -j KUBE-FORWARD"}}

	added, err := ensureRules(ctx, f.run, rules)
	if err != nil || len(added) != 2 {
		t.Fatalf("first ensure: added %d, err %v; want 2 rules", len(added), err)
	}
	want := []string{rules[0].String(), rules[1].String(), "iptables -j KUBE-FORWARD"}
	if !slices.Equal(f.chain, want) {
		t.Fatalf("chain after first ensure:\n%s\nwant (the rules first, in order):\n%s", strings.Join(f.chain, "\n"), strings.Join(want, "\n"))
	}

	added, err = ensureRules(ctx, f.run, rules)
	if err != nil || len(added) != 0 || len(f.chain) != 3 {
		t.Fatalf("second ensure: added %d, err %v, chain %d rules; want nothing added", len(added), err, len(f.chain))
	}

	// A flush removed one of them: only that one comes back.
	f.chain = slices.DeleteFunc(f.chain, func(r string) bool { return r == rules[1].String() })
	added, err = ensureRules(ctx, f.run, rules)
	if err != nil || len(added) != 1 || added[0].String() != rules[1].String() {
		t.Fatalf("after a flush: added %v, err %v; want %s", added, err, rules[1])
	}

	f.fail = errors.New("exit status 4")
	if _, err := ensureRules(ctx, f.run, rules); err == nil || !strings.Contains(err.Error(), "lock held") {
		t.Errorf("iptables failing: err = %v, want its output in the error", err)
	}
}

func TestIptablesBackend(t *testing.T) {
	for out, want := range map[string]string{
		"iptables v1.8.9 (nf_tables)\n": "nf_tables",
		"iptables v1.8.9 (legacy)\n":    "legacy",
		"iptables v1.4.21\n":            "iptables v1.4.21",
	} {
		run := func(context.Context, string, ...string) ([]byte, error) { return []byte(out), nil }
		if got := iptablesBackend(context.Background(), run); got != want {
			t.Errorf("iptablesBackend(%q) = %q, want %q", out, got, want)
		}
	}
}
