package cluster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

const testConfig = `kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  extraPortMappings:
  - containerPort: 30080
    hostPort: 30080
    listenAddress: "127.0.0.1"
    protocol: tcp
  - containerPort: 30081
    hostPort: 0
  - containerPort: 30053
    hostPort: 30053
    protocol: UDP
- role: worker
- role: worker
`

func TestRepoKindConfigParses(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("..", "..", "kind-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(cfg.Nodes); got != 3 {
		t.Errorf("nodes = %d, want 3 (1 control plane, 2 workers)", got)
	}
	// Parallel runs must not fight over host ports: docker allocates every one (-1).
	if cfg.Networking.APIServerPort != -1 {
		t.Errorf("apiServerPort = %d, want -1 (docker allocates it)", cfg.Networking.APIServerPort)
	}
	mapped := false
	for _, n := range cfg.Nodes {
		for _, m := range n.ExtraPortMappings {
			if m.HostPort != -1 {
				t.Errorf("hostPort of %d = %d, want -1 (docker allocates it)", m.ContainerPort, m.HostPort)
			}
			mapped = mapped || m.ContainerPort == ServiceNodePort
		}
	}
	if !mapped {
		t.Errorf("the token service's NodePort %d is not mapped to the host", ServiceNodePort)
	}
	moves, err := RelocateBusyPorts(cfg, func(string, int32) bool { t.Error("a port was probed"); return false }, nil)
	if err != nil || len(moves) != 0 {
		t.Errorf("RelocateBusyPorts = %+v, %v; want nothing to relocate", moves, err)
	}
}

func TestParseConfigRejects(t *testing.T) {
	for name, raw := range map[string]string{
		"unknown field": "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodez: []\n",
		"wrong version": "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\n",
		"wrong kind":    "kind: Node\napiVersion: kind.x-k8s.io/v1alpha4\n",
		"bad protocol":  "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - {containerPort: 1, hostPort: 1, protocol: ICMP}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseConfig([]byte(raw)); err == nil {
				t.Fatal("parsed without error")
			}
		})
	}
}

func TestRelocateBusyPortsMovesOnlyTakenTCPPorts(t *testing.T) {
	cfg, err := ParseConfig([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	busy := func(addr string, port int32) bool {
		asked = append(asked, addr+":"+strconv.Itoa(int(port)))
		return false
	}
	next := int32(40000)
	free := func(string) (int32, error) { next++; return next, nil }
	moves, err := RelocateBusyPorts(cfg, busy, free)
	if err != nil {
		t.Fatal(err)
	}
	if len(moves) != 1 || moves[0] != (PortMove{Node: 0, ContainerPort: 30080, From: 30080, To: 40001}) {
		t.Fatalf("moves = %+v, want 30080 -> 40001 only", moves)
	}
	if strings.Join(asked, " ") != "127.0.0.1:30080" {
		t.Errorf("checked %v, want only the TCP mapping with a fixed host port", asked)
	}
	m := cfg.Nodes[0].ExtraPortMappings
	if m[0].HostPort != 40001 || m[0].ContainerPort != 30080 || m[0].ListenAddress != "127.0.0.1" {
		t.Errorf("mapping = %+v, want hostPort 40001, the rest unchanged", m[0])
	}
	if m[1].HostPort != 0 || m[2].HostPort != 30053 {
		t.Errorf("untouched mappings changed: %+v %+v", m[1], m[2])
	}
	if port, _ := configHostPort(cfg, 30080); port != 40001 {
		t.Errorf("configHostPort = %d, want 40001", port)
	}
}

func TestRelocateBusyPortsKeepsFreePort(t *testing.T) {
	cfg, err := ParseConfig([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	moves, err := RelocateBusyPorts(cfg, func(string, int32) bool { return true }, nil)
	if err != nil || len(moves) != 0 || cfg.Nodes[0].ExtraPortMappings[0].HostPort != 30080 {
		t.Fatalf("moves = %+v, err = %v; want nothing moved", moves, err)
	}
}

func TestRelocateBusyPortsAvoidsOtherMappings(t *testing.T) {
	cfg, err := ParseConfig([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	// The "free" port the kernel offers first is another mapping's host port: not usable.
	offers := []int32{30053, 41000}
	free := func(string) (int32, error) { p := offers[0]; offers = offers[1:]; return p, nil }
	moves, err := RelocateBusyPorts(cfg, func(_ string, p int32) bool { return p != 30080 }, free)
	if err != nil || len(moves) != 1 || moves[0].To != 41000 {
		t.Fatalf("moves = %+v, err = %v; want 30080 -> 41000", moves, err)
	}
}

// The real host checks: a port held by a listener is reported taken and gets relocated.
func TestRelocateBusyPortsOnThisHost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback listener: %v", err)
	}
	defer l.Close()
	taken := int32(l.Addr().(*net.TCPAddr).Port)
	cfg := &v1alpha4.Cluster{Nodes: []v1alpha4.Node{{ExtraPortMappings: []v1alpha4.PortMapping{
		{ContainerPort: 30080, HostPort: taken, ListenAddress: "127.0.0.1"},
	}}}}
	moves, err := RelocateBusyPorts(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Nodes[0].ExtraPortMappings[0].HostPort
	if len(moves) != 1 || got == taken || got <= 0 {
		t.Fatalf("hostPort %d with moves %+v; want a port other than the taken %d", got, moves, taken)
	}
	if !ListenPortAvailable("127.0.0.1", got) {
		t.Errorf("relocated port %d is not free", got)
	}
}

func TestParamsValidate(t *testing.T) {
	t.Setenv(StateDirEnv, t.TempDir())
	kindOK := Params{Mode: ModeKind, ConfigPath: "kind-config.yaml", NodeImage: "stampede/node:x"}
	cases := []struct {
		name    string
		p       Params
		wantErr string // empty: valid
	}{
		{"kind ok, defaults name", kindOK, ""},
		{"empty mode means kind", Params{ConfigPath: "c", NodeImage: "i"}, ""},
		{"unknown mode", Params{Mode: "docker", ConfigPath: "c", NodeImage: "i"}, `mode "docker"`},
		{"kind needs image", Params{Mode: ModeKind, ConfigPath: "c"}, "NodeImage is required"},
		{"kind needs config", Params{Mode: ModeKind, NodeImage: "i"}, "ConfigPath is required"},
		{"bad name", Params{Mode: ModeKind, Name: "Stampede_1", ConfigPath: "c", NodeImage: "i"}, "must match"},
		{"context in kind mode", Params{Mode: ModeKind, ConfigPath: "c", NodeImage: "i", Context: "x"}, "Context is only for existing"},
		{"recreate in kind mode", Params{Mode: ModeKind, ConfigPath: "c", NodeImage: "i", Recreate: true}, "only for reuse"},
		{"reuse ok", Params{Mode: ModeReuse, ConfigPath: "c", NodeImage: "i", Recreate: true}, ""},
		{"reuse attach without image", Params{Mode: ModeReuse, ConfigPath: "c", NoCreate: true}, ""},
		{"reuse create without image", Params{Mode: ModeReuse, ConfigPath: "c"}, "NodeImage is required"},
		{"recreate and nocreate", Params{Mode: ModeReuse, ConfigPath: "c", NodeImage: "i", Recreate: true, NoCreate: true}, "contradict"},
		{"existing ok", Params{Mode: ModeExisting, Kubeconfig: "/k", Context: "prod"}, ""},
		{"existing needs kubeconfig", Params{Mode: ModeExisting}, "Kubeconfig is required"},
		{"existing with image", Params{Mode: ModeExisting, Kubeconfig: "/k", NodeImage: "i"}, "NodeImage is only for kind"},
		{"existing with keep", Params{Mode: ModeExisting, Kubeconfig: "/k", Keep: true}, ""},
		{"existing with recreate", Params{Mode: ModeExisting, Kubeconfig: "/k", Recreate: true}, "never creates or deletes"},
		{"kind into the user's kubeconfig", Params{Mode: ModeKind, ConfigPath: "c", NodeImage: "i", Kubeconfig: filepath.Join(home(t), ".kube", "config")}, "user's own"},
		{"negative wait", Params{Mode: ModeKind, ConfigPath: "c", NodeImage: "i", WaitForReady: -1}, "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			err := p.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
			want := DefaultName
			if p.Mode == ModeKind {
				want = KindName(p.RunID)
			}
			if err == nil && p.Mode != ModeExisting && p.Name != want && tc.p.Name == "" {
				t.Errorf("Name = %q, want the default %q", p.Name, want)
			}
		})
	}
}

func TestExistingModeRefusesKindOnlyOperations(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// A kubeconfig for a server that is never contacted: attaching lists nodes, so build the
	// Cluster by hand as Up would after attaching.
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{p: Params{Mode: ModeExisting, Kubeconfig: kubeconfig}}
	if ok, why := c.CanLoadImages(); ok || why == "" {
		t.Errorf("CanLoadImages() = %t, %q; want false with a reason", ok, why)
	}
	if err := c.LoadImages(context.Background(), "stampede/whoami:x"); err == nil || !strings.Contains(err.Error(), "existing mode") {
		t.Errorf("LoadImages() = %v, want an existing-mode error", err)
	}
	if _, err := c.HostPort(ServiceNodePort); err == nil {
		t.Error("HostPort() in existing mode returned no error")
	}
	if err := c.Down(context.Background()); err != nil {
		t.Errorf("Down() in existing mode = %v, want nil (nothing to do)", err)
	}
}

func TestHostPortFromBindings(t *testing.T) {
	c := &Cluster{p: Params{Mode: ModeReuse}, hostPorts: map[int32]hostBinding{30080: {address: "127.0.0.1", port: 41234}}}
	if got, err := c.HostPort(30080); err != nil || got != 41234 {
		t.Fatalf("HostPort = %d, %v; want 41234", got, err)
	}
	if url, err := c.ServiceURL(); err != nil || url != "http://127.0.0.1:41234" {
		t.Fatalf("ServiceURL = %q, %v", url, err)
	}
	if _, err := c.HostPort(30081); err == nil {
		t.Fatal("HostPort of an unmapped port returned no error")
	}
}

func TestContainerInfoHostPort(t *testing.T) {
	var ci containerInfo
	ci.NetworkSettings.Ports = map[string][]struct {
		HostIP   string `json:"HostIp"`
		HostPort string
	}{"30080/tcp": {{HostIP: "127.0.0.1", HostPort: "30081"}}}
	if addr, port, ok := ci.hostPortOf(30080); !ok || port != 30081 || addr != "127.0.0.1" {
		t.Fatalf("hostPortOf = %q %d %t", addr, port, ok)
	}
	if _, _, ok := ci.hostPortOf(6443); ok {
		t.Fatal("hostPortOf an unpublished port reported one")
	}
}

func TestParseTally(t *testing.T) {
	log := "time=x level=INFO msg=hi\n{\"url\":\"u\",\"requests\":3,\"answers\":{\"a\":2,\"b\":1}}\n"
	got, err := parseTally([]byte(log))
	if err != nil || got.Requests != 3 || got.Answers["a"] != 2 || got.Answers["b"] != 1 {
		t.Fatalf("parseTally = %+v, %v", got, err)
	}
	if _, err := parseTally([]byte("level=ERROR msg=boom\n")); err == nil {
		t.Fatal("parseTally of a log without JSON returned no error")
	}
}

func TestCrossNode(t *testing.T) {
	s := &smoke{r: &SmokeReport{Pods: map[string]string{"p1": "w1", "p2": "w2", "p3": "w2"}}}
	if err := s.crossNode("w1", Tally{Requests: 10, Answers: map[string]int{"p1": 4, "p2": 6}}); err != nil {
		t.Errorf("answers from another node: %v", err)
	}
	if err := s.crossNode("w1", Tally{Requests: 10, Answers: map[string]int{"p1": 10}}); err == nil {
		t.Error("only local answers while remote pods exist: no error")
	}
	one := &smoke{r: &SmokeReport{Pods: map[string]string{"p1": "w1"}}}
	if err := one.crossNode("w1", Tally{Requests: 10, Answers: map[string]int{"p1": 10}}); err != nil {
		t.Errorf("no remote pods to reach: %v", err)
	}
}

func home(t *testing.T) string {
	h, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	return h
}
