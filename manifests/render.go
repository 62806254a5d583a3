package manifests

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// The names the suite's base uses, which a render overrides or relies on.
const (
	// PostgresPlaceholderImage is PostgreSQL's image in the base.
	PostgresPlaceholderImage = "stampede/postgres:dev"
	// NodePort is the target Service's port on every node (a kind cluster maps it to the host).
	NodePort = 30080
	// NameLabel is the label that selects the pods of each of the suite's workloads, and names it.
	NameLabel = "app.kubernetes.io/name"
	// PostgresName is PostgreSQL's StatefulSet, Service and pods' NameLabel.
	PostgresName = "postgres"
	// PostgresPod is the StatefulSet's one pod.
	PostgresPod = PostgresName + "-0"
	// PostgresPort is PostgreSQL's port.
	PostgresPort = 5432
	// ModeLabel labels every object of a render with the target's mode.
	ModeLabel = "stampede.dev/strategy"
)

// ClusterURL is a Service as clients inside the cluster reach it: its DNS name in namespace
// (resolved through the pods' search path, whatever the cluster's domain) and port.
func ClusterURL(service, namespace string, port int) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", service, namespace, port)
}

// Selector is the label selector of the pods of the suite's workload called name.
func Selector(name string) string { return NameLabel + "=" + name }

// Params says what Render renders. Every field but Replicas, Config, DatabaseHost/Port,
// Components, Kustomize, DatabaseStorage and DNS is required.
type Params struct {
	// Target is the service deployed: its kustomize directory, workload, Service, images,
	// generated Secrets and database (the deploy section of its target file).
	Target *target.Target
	// Mode names one of the target's modes: its ConfigMap entries or environment are merged in,
	// and every object is labelled with it (ModeLabel).
	Mode string
	// Namespace receives every object; the Namespace object is renamed to it.
	Namespace string
	// Images maps each of the target's images (deploy.images[].name) to the reference deployed,
	// as the build printed it, e.g. "stampede/tokensvc:0123456789ab".
	Images map[string]string
	// PostgresImage is the bundled PostgreSQL's image reference.
	PostgresImage string
	// Replicas of the target's workload; 0 keeps its manifests'.
	Replicas int
	// Secrets holds the content of each generated Secret (deploy.secrets), by Secret name.
	Secrets map[string][]byte
	// PostgresPassword is PostgreSQL's superuser password; only PostgreSQL's pod gets it.
	PostgresPassword string
	// DatabasePassword is the password of the target's own role. Both passwords reach their
	// pods as files of Secret volumes (the target's manifests decide how it reads its own); neither
	// may contain a quote, a backslash or a control character (the first line of a file is the
	// password, and a team's manifests may still put it in a key=value connection string).
	DatabasePassword string
	// DatabaseTLS is the certificate PostgreSQL serves and the CA the target verifies it with
	// (NewDatabaseTLS makes both).
	DatabaseTLS DatabaseTLS
	// Config holds extra settings merged over the mode's: into its ConfigMap, or into the
	// workload container's environment for a mode that sets env. Keys any mode sets are
	// refused (choose the mode instead), and so are the database endpoint's (DatabaseHost).
	Config map[string]string
	// DatabaseHost and DatabasePort, when set, repoint the target at another database endpoint
	// (toxiproxy) through deploy.database.bundled.endpoint.
	DatabaseHost string
	DatabasePort int
	// Components are kustomize components layered onto the render, by name: see Components().
	Components []string
	// Kustomize, when set, is a kustomize directory on disk deployed instead of the target's own
	// (deploy.kustomize): a team verifies the manifests it ships. Contract says what it must
	// provide; Render checks the rendered result against it.
	Kustomize string
	// NodePort makes the target's Service a NodePort Service on NodePort, which a kind cluster's
	// port mapping needs. False makes it a ClusterIP Service: no port opens on any node, and no
	// other Service's node port can collide with it.
	NodePort bool
	// DatabaseStorage is where PostgreSQL keeps its data: StoragePVC or StorageEmptyDir. Empty
	// means StoragePVC.
	DatabaseStorage string
	// DNS replaces the peers every pod may send DNS queries to; nil keeps the base's
	// (DefaultDNS).
	DNS *DNSEgress
}

// Where PostgreSQL keeps its data (Params.DatabaseStorage).
const (
	// StoragePVC is a PersistentVolumeClaim per spec from the cluster's default StorageClass:
	// the data outlives the pod (the db-restart fault needs it), and the volume outlives the
	// spec where the StorageClass reclaims with Retain.
	StoragePVC = "pvc"
	// StorageEmptyDir is the pod's own emptyDir: nothing outlives the spec, and the data is
	// gone when the pod is deleted.
	StorageEmptyDir = "emptydir"
)

// DNSEgress says where pods may send DNS queries (UDP and TCP port 53): the cluster DNS's pods,
// selected by namespace and labels, and address blocks such as NodeLocal DNSCache's link-local
// listener, which runs on the node's network and so matches no pod selector.
type DNSEgress struct {
	// Namespace holds the DNS pods (kubernetes.io/metadata.name); empty with empty PodLabels
	// means no pod peer.
	Namespace string
	// PodLabels select the DNS pods in Namespace.
	PodLabels map[string]string
	// CIDRs are address blocks queries may go to, e.g. "169.254.20.10/32".
	CIDRs []string
}

// DefaultDNS is the base's DNS egress: CoreDNS as kubeadm and most distributions label it
// (k8s-app=kube-dns in kube-system), and NodeLocal DNSCache's default listener.
var DefaultDNS = DNSEgress{
	Namespace: "kube-system",
	PodLabels: map[string]string{"k8s-app": "kube-dns"},
	CIDRs:     []string{"169.254.20.10/32"},
}

// ComponentPostgresAsyncCommit runs PostgreSQL with synchronous_commit=off.
const ComponentPostgresAsyncCommit = "postgres-async-commit"

// Components lists the kustomize components a render may layer onto its overlay, sorted.
func Components() []string {
	entries, err := fs.Glob(FS, "components/*/kustomization.yaml")
	if err != nil {
		panic(fmt.Sprintf("manifests: embedded components: %v", err)) // the pattern is valid
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = path.Base(path.Dir(e))
	}
	return names
}

// Render renders the suite's base and p.Target's manifests for p.Mode with p's namespace,
// images, replicas, secrets and settings, as objects ready to apply in their order.
func Render(p Params) ([]*unstructured.Unstructured, error) {
	rm, err := render(p)
	if err != nil {
		return nil, err
	}
	objs, err := objects(rm)
	if err != nil {
		return nil, fmt.Errorf("render manifests: %w", err)
	}
	if err := finish(objs, p); err != nil {
		return nil, fmt.Errorf("render manifests: %w", err)
	}
	return objs, nil
}

// RenderYAML is Render as one multi-document YAML stream, e.g. to keep as an artifact or to
// feed `kubectl apply -f -`.
func RenderYAML(p Params) ([]byte, error) {
	objs, err := Render(p)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for i, o := range objs {
		doc, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("render manifests: %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(doc)
	}
	return []byte(b.String()), nil
}

// finish applies what p asks of the rendered objects beyond kustomize: the target Service's
// type, the suite's policies' peers (the target's pods), the database's storage, the DNS peers.
func finish(objs []*unstructured.Unstructured, p Params) error {
	d := p.Target.Deploy
	svc := find(objs, "Service", d.Service.Name)
	if svc == nil {
		return fmt.Errorf("no Service %s", d.Service.Name)
	}
	selector, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	port, err := targetPort(svc, find(objs, d.Workload.Kind, d.Workload.Name), d.Service.Port)
	if err != nil {
		return fmt.Errorf("Service %s: %w", d.Service.Name, err)
	}
	for _, o := range objs {
		var err error
		switch {
		case o == svc && p.NodePort:
			err = nodePortOnly(o, d.Service.Port)
		case o == svc:
			clusterIPOnly(o)
		case o.GetKind() == "NetworkPolicy" && o.GetName() == DNSPolicyName && p.DNS != nil:
			spec, ok := o.Object["spec"].(map[string]any)
			if !ok {
				err = errors.New("no spec")
				break
			}
			spec["egress"] = dnsEgressRules(*p.DNS)
		case o.GetKind() == "NetworkPolicy":
			fillTargetPeers(o, selector, port)
		case o.GetKind() == "StatefulSet" && o.GetName() == PostgresName && p.DatabaseStorage == StorageEmptyDir:
			err = dataOnEmptyDir(o)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// find is the object of kind named name among objs, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// targetPeer is the placeholder peer of the base's policies that stands for the target's pods,
// and targetPortName the placeholder port beside it.
const (
	targetPeerLabel = "stampede.dev/target-pods"
	targetPortName  = "target"
)

// FillTargetPeers replaces the placeholder peer (stampede.dev/target-pods) of every
// NetworkPolicy in objs with the target's pods, selector (the Service's selector): for the
// suite's objects rendered apart from Render, such as the toxiproxy component's.
func FillTargetPeers(objs []*unstructured.Unstructured, selector map[string]string) {
	for _, o := range objs {
		if o.GetKind() == "NetworkPolicy" {
			fillTargetPeers(o, selector, 0)
		}
	}
}

// fillTargetPeers replaces, in a policy of the base, each placeholder peer with the target's
// pods (the Service's selector) and the placeholder port of its rules with the container port
// the Service sends to.
func fillTargetPeers(np *unstructured.Unstructured, selector map[string]string, port int64) {
	spec, _ := np.Object["spec"].(map[string]any)
	for _, dir := range []struct{ rules, peers string }{{"ingress", "from"}, {"egress", "to"}} {
		rules, _ := spec[dir.rules].([]any)
		for _, r := range rules {
			rule, _ := r.(map[string]any)
			peers, _ := rule[dir.peers].([]any)
			found := false
			for _, peer := range peers {
				ps, _ := peer.(map[string]any)
				sel, _ := ps["podSelector"].(map[string]any)
				labels, _ := sel["matchLabels"].(map[string]any)
				if _, ok := labels[targetPeerLabel]; ok && len(labels) == 1 {
					m := map[string]any{}
					for k, v := range selector {
						m[k] = v
					}
					sel["matchLabels"] = m
					found = true
				}
			}
			ports, _ := rule["ports"].([]any)
			for _, pp := range ports {
				if m, ok := pp.(map[string]any); ok && found && m["port"] == targetPortName {
					m["port"] = port
				}
			}
		}
	}
}

// targetPort is the container port the Service's port number sends to: its targetPort, by
// number or by the name of a port of the workload's containers (the port itself when unset).
func targetPort(svc, workload *unstructured.Unstructured, number int) (int64, error) {
	ports, _, _ := nestedSlice(svc.Object, "spec", "ports")
	for _, p := range ports {
		m, _ := p.(map[string]any)
		if asInt(m["port"]) != int64(number) {
			continue
		}
		switch tp := m["targetPort"].(type) {
		case nil:
			return int64(number), nil
		case string:
			if workload == nil {
				return 0, fmt.Errorf("targetPort %q: no workload to look the name up in", tp)
			}
			containers, _, _ := nestedSlice(workload.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				cports, _ := c.(map[string]any)["ports"].([]any)
				for _, cp := range cports {
					if cm, _ := cp.(map[string]any); cm["name"] == tp {
						return asInt(cm["containerPort"]), nil
					}
				}
			}
			return 0, fmt.Errorf("targetPort %q is no container port of %s %s", tp, workload.GetKind(), workload.GetName())
		default:
			return asInt(tp), nil
		}
	}
	return 0, fmt.Errorf("no port %d", number)
}

// asInt reads a number of a rendered object, which holds plain ints or, from JSON, float64.
func asInt(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return -1
}

// nodePortOnly makes a Service NodePort, with NodePort on its port number.
func nodePortOnly(svc *unstructured.Unstructured, number int) error {
	spec, _ := svc.Object["spec"].(map[string]any)
	if spec == nil {
		return errors.New("no spec")
	}
	spec["type"] = "NodePort"
	ports, _ := spec["ports"].([]any)
	for _, port := range ports {
		if m, ok := port.(map[string]any); ok && asInt(m["port"]) == int64(number) {
			m["nodePort"] = NodePort
			return nil
		}
	}
	return fmt.Errorf("no port %d", number)
}

// clusterIPOnly makes a Service ClusterIP, whatever type it had, with no node port left.
// (Maps are read directly: kustomize's output holds plain ints, which the unstructured helpers'
// deep copies refuse.)
func clusterIPOnly(svc *unstructured.Unstructured) {
	spec, _ := svc.Object["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		svc.Object["spec"] = spec
	}
	spec["type"] = "ClusterIP"
	for _, f := range []string{"externalTrafficPolicy", "healthCheckNodePort", "allocateLoadBalancerNodePorts", "loadBalancerIP", "loadBalancerSourceRanges", "loadBalancerClass"} {
		delete(spec, f)
	}
	ports, _ := spec["ports"].([]any)
	for _, port := range ports {
		if m, ok := port.(map[string]any); ok {
			delete(m, "nodePort")
		}
	}
}

// dataVolume is the name of PostgreSQL's data volume: a claim template or an emptyDir.
const dataVolume = "data"

// dataOnEmptyDir replaces the StatefulSet's data claim template with an emptyDir of the
// claim's size.
func dataOnEmptyDir(sts *unstructured.Unstructured) error {
	spec, _ := sts.Object["spec"].(map[string]any)
	templates, _ := spec["volumeClaimTemplates"].([]any)
	var kept []any
	size := ""
	for _, t := range templates {
		m, _ := t.(map[string]any)
		if name, _, _ := unstructured.NestedString(m, "metadata", "name"); name == dataVolume {
			size, _, _ = unstructured.NestedString(m, "spec", "resources", "requests", "storage")
			continue
		}
		kept = append(kept, t)
	}
	if size == "" {
		return fmt.Errorf("no volume claim template %q with a storage request to replace", dataVolume)
	}
	if len(kept) == 0 {
		delete(spec, "volumeClaimTemplates")
	} else {
		spec["volumeClaimTemplates"] = kept
	}
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	if pod == nil {
		return errors.New("no pod template")
	}
	volumes, _ := pod["volumes"].([]any)
	pod["volumes"] = append(volumes, map[string]any{"name": dataVolume, "emptyDir": map[string]any{"sizeLimit": size}})
	return nil
}

// DNSPolicyName is the NetworkPolicy that lets every pod of the namespace query the DNS.
const DNSPolicyName = "allow-dns"

// dnsEgressRules is the DNS policy's egress for d: one rule, port 53 over UDP and TCP, to d's
// pods and address blocks.
func dnsEgressRules(d DNSEgress) []any {
	var to []any
	if d.Namespace != "" || len(d.PodLabels) > 0 {
		peer := map[string]any{}
		if d.Namespace != "" {
			peer["namespaceSelector"] = map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": d.Namespace}}
		}
		if len(d.PodLabels) > 0 {
			labels := map[string]any{}
			for k, v := range d.PodLabels {
				labels[k] = v
			}
			peer["podSelector"] = map[string]any{"matchLabels": labels}
		}
		to = append(to, peer)
	}
	for _, c := range d.CIDRs {
		to = append(to, map[string]any{"ipBlock": map[string]any{"cidr": c}})
	}
	ports := []any{
		map[string]any{"protocol": "UDP", "port": int64(53)},
		map[string]any{"protocol": "TCP", "port": int64(53)},
	}
	return []any{map[string]any{"to": to, "ports": ports}}
}

// ParseDNSEgress reads a DNS egress setting: peers separated by spaces, each an address block
// ("169.254.20.10/32") or the DNS pods as NAMESPACE/KEY=VALUE[,KEY=VALUE...]
// ("kube-system/k8s-app=kube-dns"), at most one such. String writes it back.
func ParseDNSEgress(s string) (*DNSEgress, error) {
	d := &DNSEgress{}
	for _, peer := range strings.Fields(s) {
		ns, sel, ok := strings.Cut(peer, "/")
		if !ok || !strings.Contains(sel, "=") {
			d.CIDRs = append(d.CIDRs, peer)
			continue
		}
		if d.Namespace != "" || len(d.PodLabels) > 0 {
			return nil, fmt.Errorf("dns egress %q: more than one NAMESPACE/KEY=VALUE peer", s)
		}
		d.Namespace, d.PodLabels = ns, map[string]string{}
		for _, kv := range strings.Split(sel, ",") {
			k, v, _ := strings.Cut(kv, "=")
			d.PodLabels[k] = v
		}
	}
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("%w (setting %q: peers separated by spaces, each NAMESPACE/KEY=VALUE or a CIDR)", err, s)
	}
	return d, nil
}

// String writes d as ParseDNSEgress reads it.
func (d DNSEgress) String() string {
	var peers []string
	if d.Namespace != "" || len(d.PodLabels) > 0 {
		var sel []string
		for _, k := range slices.Sorted(maps.Keys(d.PodLabels)) {
			sel = append(sel, k+"="+d.PodLabels[k])
		}
		peers = append(peers, d.Namespace+"/"+strings.Join(sel, ","))
	}
	return strings.Join(append(peers, d.CIDRs...), " ")
}

// check says in one line what is wrong with d.
func (d DNSEgress) check() error {
	if d.Namespace == "" && len(d.PodLabels) == 0 && len(d.CIDRs) == 0 {
		return errors.New("dns egress: no peer (name the DNS pods' namespace and labels, or address blocks)")
	}
	for k, v := range d.PodLabels {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			return fmt.Errorf("dns egress: label key %q: %s", k, msgs[0])
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			return fmt.Errorf("dns egress: label %s=%q: %s", k, v, msgs[0])
		}
	}
	for _, c := range d.CIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			return fmt.Errorf("dns egress: address block %q: want a CIDR such as 169.254.20.10/32", c)
		}
	}
	return nil
}

// checkEd25519PEM checks a generated Secret of kind ed25519-pem: an Ed25519 private key, PEM
// PKCS#8.
func checkEd25519PEM(pemText []byte) error {
	block, _ := pem.Decode(pemText)
	if block == nil || block.Type != "PRIVATE KEY" {
		return errors.New("want a PEM block \"PRIVATE KEY\" (PKCS#8)")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return err
	}
	if _, ok := key.(ed25519.PrivateKey); !ok {
		return fmt.Errorf("%T, want Ed25519", key)
	}
	return nil
}

func checkPassword(pw string) error {
	if pw == "" {
		return errors.New("postgres password: empty")
	}
	if strings.ContainsFunc(pw, func(r rune) bool { return r == '\'' || r == '\\' || r < 0x20 || r == 0x7f }) {
		return errors.New("postgres password: must not contain a quote, a backslash or a control character")
	}
	return nil
}

// nestedSlice is unstructured.NestedSlice without its deep copy, which refuses the plain ints
// of kustomize's output.
func nestedSlice(obj map[string]any, fields ...string) ([]any, bool, error) {
	v, found, err := unstructured.NestedFieldNoCopy(obj, fields...)
	s, _ := v.([]any)
	return s, found && s != nil, err
}
