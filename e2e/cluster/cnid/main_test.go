package main

import "testing"

func TestFullSyncs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		metrics string
		want    float64
	}{
		{"absent", "kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 5\n", 0},
		{"ipv6 only", "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv6\"} 1\n", 0},
		{"none yet", "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 0\n", 0},
		{"synced", "# HELP x\nkubeproxy_sync_full_proxy_rules_duration_seconds_sum{ip_family=\"IPv4\"} 10.1\nkubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 1\n", 1},
	} {
		if got := fullSyncs(tc.metrics); got != tc.want {
			t.Errorf("%s: fullSyncs = %v, want %v", tc.name, got, tc.want)
		}
	}
}
