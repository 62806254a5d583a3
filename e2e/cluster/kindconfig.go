package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// LoadConfig reads a kind v1alpha4 cluster config from path, decoding it strictly as kind does
// (an unknown field is an error).
func LoadConfig(path string) (*v1alpha4.Cluster, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kind config: %w", err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("kind config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes a kind v1alpha4 cluster config from raw YAML.
func ParseConfig(raw []byte) (*v1alpha4.Cluster, error) {
	var tm struct {
		Kind       string `yaml:"kind"`
		APIVersion string `yaml:"apiVersion"`
	}
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		return nil, fmt.Errorf("parse kind config: %w", err)
	}
	if tm.APIVersion != "kind.x-k8s.io/v1alpha4" || tm.Kind != "Cluster" {
		return nil, fmt.Errorf("parse kind config: want kind.x-k8s.io/v1alpha4 Cluster, got %q %q", tm.APIVersion, tm.Kind)
	}
	cfg := &v1alpha4.Cluster{}
	d := yaml.NewDecoder(bytes.NewReader(raw))
	d.KnownFields(true)
	if err := d.Decode(cfg); err != nil {
		return nil, fmt.Errorf("parse kind config: %w", err)
	}
	return cfg, nil
}

// PortMove records a host port of the config that was taken and the free port used instead.
type PortMove struct {
	// Node is the index of the node in the config.
	Node int
	// ContainerPort is the port inside the node container.
	ContainerPort int32
	// From is the host port the config asked for, To the one used.
	From, To int32
}

// PortAvailable reports whether a TCP port can be listened on at address on this host.
type PortAvailable func(address string, port int32) bool

// FreePort returns a TCP port that is free on address at the time of the call.
type FreePort func(address string) (int32, error)

// RelocateBusyPorts rewrites, in place, every extraPortMappings hostPort of cfg that is taken on
// this host to a free port, and returns the moves it made. Mappings with hostPort 0 or -1 (chosen
// by kind or docker) and non-TCP mappings are left alone. The checks are injected so that tests
// stay hermetic; nil means the real host (ListenPortAvailable, ListenFreePort).
func RelocateBusyPorts(cfg *v1alpha4.Cluster, available PortAvailable, free FreePort) ([]PortMove, error) {
	if available == nil {
		available = ListenPortAvailable
	}
	if free == nil {
		free = ListenFreePort
	}
	var moves []PortMove
	used := map[int32]bool{}
	for i := range cfg.Nodes {
		for _, m := range cfg.Nodes[i].ExtraPortMappings {
			used[m.HostPort] = true
		}
	}
	for i := range cfg.Nodes {
		for j := range cfg.Nodes[i].ExtraPortMappings {
			m := &cfg.Nodes[i].ExtraPortMappings[j]
			if m.HostPort <= 0 || (m.Protocol != "" && m.Protocol != v1alpha4.PortMappingProtocolTCP) {
				continue
			}
			addr := listenAddress(m.ListenAddress)
			if available(addr, m.HostPort) {
				continue
			}
			port, err := pickFree(addr, free, used)
			if err != nil {
				return moves, fmt.Errorf("relocate host port %d: %w", m.HostPort, err)
			}
			moves = append(moves, PortMove{Node: i, ContainerPort: m.ContainerPort, From: m.HostPort, To: port})
			used[port] = true
			m.HostPort = port
		}
	}
	return moves, nil
}

func pickFree(addr string, free FreePort, used map[int32]bool) (int32, error) {
	// A few tries: the free port must not collide with another mapping of the same config.
	for range 10 {
		p, err := free(addr)
		if err != nil {
			return 0, err
		}
		if !used[p] {
			return p, nil
		}
	}
	return 0, errors.New("no free port distinct from the config's other mappings")
}

func listenAddress(a string) string {
	if a == "" {
		return "0.0.0.0"
	}
	return a
}

// ListenPortAvailable reports whether a TCP listener can be opened on address:port.
func ListenPortAvailable(address string, port int32) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(int(port))))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// ListenFreePort asks the kernel for a free TCP port on address.
func ListenFreePort(address string) (int32, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", address, err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port), nil
}

// configHostPort returns the hostPort that cfg maps containerPort to, and whether there is one.
func configHostPort(cfg *v1alpha4.Cluster, containerPort int32) (int32, bool) {
	for _, n := range cfg.Nodes {
		for _, m := range n.ExtraPortMappings {
			if m.ContainerPort == containerPort && m.HostPort > 0 {
				return m.HostPort, true
			}
		}
	}
	return 0, false
}
