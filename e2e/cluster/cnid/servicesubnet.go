package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// kubeadmConfigMap and kubeadmConfigKey hold the ClusterConfiguration kubeadm init wrote; kind's
// CNI template offers only the pod subnet, so the service subnet is read from there.
const (
	kubeadmConfigMap = "kubeadm-config"
	kubeadmConfigKey = "ClusterConfiguration"
)

// parseServiceSubnets reads networking.serviceSubnet of a kubeadm ClusterConfiguration (YAML):
// one CIDR, or two comma-separated ones on a dual-stack cluster.
func parseServiceSubnets(clusterConfiguration string) ([]netip.Prefix, error) {
	var cc struct {
		Networking struct {
			ServiceSubnet string `json:"serviceSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(clusterConfiguration), &cc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", kubeadmConfigKey, err)
	}
	if cc.Networking.ServiceSubnet == "" {
		return nil, fmt.Errorf("%s has no networking.serviceSubnet", kubeadmConfigKey)
	}
	return parseSubnets(cc.Networking.ServiceSubnet)
}

// serviceSubnetsFrom reads the service subnets from kube-system/kubeadm-config.
func serviceSubnetsFrom(cm *corev1.ConfigMap) ([]netip.Prefix, error) {
	cc, ok := cm.Data[kubeadmConfigKey]
	if !ok {
		return nil, fmt.Errorf("configmap %s/%s has no key %s", cm.Namespace, cm.Name, kubeadmConfigKey)
	}
	return parseServiceSubnets(cc)
}

// parseSubnets parses a comma-separated list of CIDRs, each masked to its network address.
func parseSubnets(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("service subnet %q: %w", part, err)
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no service subnet in %q", s)
	}
	return out, nil
}

// rejectComment marks cnid's rules, so that they can be told apart from kube-proxy's.
const rejectComment = "stampede cnid: pod traffic to a Service IP that kube-proxy did not translate"

// rule is one iptables or ip6tables rule of the filter table's FORWARD chain, without the -I/-C/-A.
type rule struct {
	// Cmd is iptables or ip6tables.
	Cmd string
	// Spec is the rule's match and target.
	Spec []string
}

func (r rule) String() string { return r.Cmd + " " + strings.Join(r.Spec, " ") }

// rejectRules are the FORWARD rules that refuse, on the node, pod traffic to subnet that is still
// addressed to a Service IP. kube-proxy DNATs a Service's traffic in PREROUTING, so a packet that
// reaches FORWARD with a Service address was not translated: its Service had no rules yet (a SYN
// that fell between kube-proxy's filter and nat updates, or one sent before its first sync). The
// node's default route would take it to the host and out of the uplink, and conntrack would keep
// the flow untranslated for all its retransmits. A rejected packet is never confirmed in
// conntrack, so the client's next attempt is translated; TCP gets a reset, so that it fails at
// once instead of retransmitting.
func rejectRules(subnet netip.Prefix) []rule {
	cmd, unreachable := "iptables", "icmp-port-unreachable"
	if subnet.Addr().Is6() {
		cmd, unreachable = "ip6tables", "icmp6-port-unreachable"
	}
	base := []string{"-d", subnet.String(), "-m", "comment", "--comment", rejectComment}
	return []rule{
		{Cmd: cmd, Spec: append(append([]string{"-p", "tcp"}, base...), "-j", "REJECT", "--reject-with", "tcp-reset")},
		{Cmd: cmd, Spec: append(append([]string{}, base...), "-j", "REJECT", "--reject-with", unreachable)},
	}
}

// runner runs a command and returns its combined output; tests replace execRunner.
type runner func(ctx context.Context, name string, args ...string) ([]byte, error)

func execRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// errRuleAbsent is what `iptables -C` reports, by its exit status 1, for a rule that is not there.
var errRuleAbsent = errors.New("rule absent")

// check reports whether r is in the FORWARD chain: nil if it is, errRuleAbsent if not, another
// error when iptables itself failed.
func (r rule) check(ctx context.Context, run runner) error {
	out, err := run(ctx, r.Cmd, append([]string{"-w", "-t", "filter", "-C", "FORWARD"}, r.Spec...)...)
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return errRuleAbsent
	}
	return fmt.Errorf("%s -C FORWARD: %w: %s", r.Cmd, err, strings.TrimSpace(string(out)))
}

// ensureRules inserts every rule that is missing from the FORWARD chain, in order, at its top
// (before any ACCEPT), and returns the rules it inserted. Rules already there are left alone, so
// calling it again is harmless.
func ensureRules(ctx context.Context, run runner, rules []rule) ([]rule, error) {
	var added []rule
	// Inserted last to first at position 1, so that they end up in the given order.
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		err := r.check(ctx, run)
		if err == nil {
			continue
		}
		if !errors.Is(err, errRuleAbsent) {
			return added, err
		}
		if out, err := run(ctx, r.Cmd, append([]string{"-w", "-t", "filter", "-I", "FORWARD", "1"}, r.Spec...)...); err != nil {
			return added, fmt.Errorf("%s -I FORWARD: %w: %s", r.Cmd, err, strings.TrimSpace(string(out)))
		}
		added = append(added, r)
	}
	return added, nil
}

// iptablesBackend is what `iptables --version` says about the backend, e.g. "nf_tables" or
// "legacy": cnid's rules must go where kube-proxy's are (the slim image's iptables-wrapper picks
// the backend the node already uses).
func iptablesBackend(ctx context.Context, run runner) string {
	out, err := run(ctx, "iptables", "--version")
	if err != nil {
		return "unknown: " + err.Error()
	}
	s := strings.TrimSpace(string(out))
	if i, j := strings.LastIndex(s, "("), strings.LastIndex(s, ")"); i >= 0 && j > i {
		return s[i+1 : j]
	}
	return s
}
