package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// The docker network that stampede's kind nodes join, instead of kind's shared "kind" network.
// The host's egress guard (scripts/egress-guard.sh, scripts/host-setup.sh) matches its bridge
// interface by name, `-i stampede0`: TestBridgeNameMatchesHostScripts checks that the scripts
// and BridgeName agree. `stampede-cluster network-name` and `stampede-cluster bridge-name`
// print them for other scripts.
const (
	// NetworkName is the docker network of stampede's kind nodes.
	NetworkName = "stampede"
	// BridgeName is the Linux bridge interface of NetworkName on the host.
	BridgeName = "stampede0"
	// NetworkLabel marks the network as stampede's (docker network ls --filter label=...).
	NetworkLabel = "io.stampede.network"
	// kindNetworkEnv is how kind v0.33 is told to use another network than "kind"; kind reads
	// it in Provision, at create time.
	kindNetworkEnv = "KIND_EXPERIMENTAL_DOCKER_NETWORK"
	// kindClusterLabel is the label kind puts on every node container: the cluster's name.
	kindClusterLabel = "io.x-k8s.kind.cluster"
)

// networkCreateArgs is the `docker network create` of NetworkName. Masquerade is off: nothing
// a node sends is meant to leave the host. No IPv6: kind-config.yaml is ipFamily ipv4, and kind
// accepts an existing network as it is (pkg/cluster/internal/providers/docker/network.go only
// checks that it exists). mtu is the default bridge's, as kind would use; empty leaves docker's.
func networkCreateArgs(mtu string) []string {
	args := []string{"network", "create", "--driver", "bridge",
		"-o", "com.docker.network.bridge.name=" + BridgeName,
		"-o", "com.docker.network.bridge.enable_ip_masquerade=false",
		"--label", NetworkLabel + "=true",
	}
	if mtu != "" {
		args = append(args, "-o", "com.docker.network.driver.mtu="+mtu)
	}
	return append(args, NetworkName)
}

// networkInfo is the part of `docker network inspect` that ensureNetwork checks.
type networkInfo struct {
	Name    string
	Driver  string
	Options map[string]string
	Labels  map[string]string
}

// checkNetwork says what is wrong with an existing network of NetworkName, nil if it is ours.
func checkNetwork(n networkInfo) error {
	if n.Driver != "bridge" {
		return fmt.Errorf("docker network %s has driver %q, want bridge", NetworkName, n.Driver)
	}
	if got := n.Options["com.docker.network.bridge.name"]; got != BridgeName {
		return fmt.Errorf("docker network %s has bridge interface %q, want %s (the egress guard matches it): remove the network (docker network rm %s) when no container uses it", NetworkName, got, BridgeName, NetworkName)
	}
	return nil
}

// ensureNetwork creates NetworkName when it is absent, checks it when present, and points kind
// at it for this process.
func ensureNetwork(ctx context.Context) error {
	if err := os.Setenv(kindNetworkEnv, NetworkName); err != nil {
		return fmt.Errorf("docker network: %w", err)
	}
	n, found, err := inspectNetwork(ctx)
	if err != nil {
		return err
	}
	if !found {
		mtu := ""
		if out, err := Docker(ctx, "network", "inspect", "bridge", "-f", `{{index .Options "com.docker.network.driver.mtu"}}`); err == nil {
			mtu = strings.TrimSpace(string(out))
			if mtu == "<no value>" {
				mtu = ""
			}
		}
		if _, err := Docker(ctx, networkCreateArgs(mtu)...); err != nil {
			// A parallel run may have created it first.
			if n, found, err2 := inspectNetwork(ctx); err2 != nil || !found {
				return fmt.Errorf("create docker network %s: %w", NetworkName, err)
			} else {
				return checkNetwork(n)
			}
		}
		return nil
	}
	return checkNetwork(n)
}

func inspectNetwork(ctx context.Context) (networkInfo, bool, error) {
	out, err := Docker(ctx, "network", "ls", "--filter", "name=^"+NetworkName+"$", "-q")
	if err != nil {
		return networkInfo{}, false, err
	}
	if strings.TrimSpace(string(out)) == "" {
		return networkInfo{}, false, nil
	}
	out, err = Docker(ctx, "network", "inspect", NetworkName)
	if err != nil {
		return networkInfo{}, false, err
	}
	var ns []networkInfo
	if err := json.Unmarshal(out, &ns); err != nil || len(ns) != 1 {
		return networkInfo{}, false, fmt.Errorf("decode docker network inspect %s: %v", NetworkName, err)
	}
	return ns[0], true, nil
}
