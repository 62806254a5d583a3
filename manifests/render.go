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
	"os"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The names the base uses, which a render overrides.
const (
	// TokensvcPlaceholderImage is the token service's image in the base.
	TokensvcPlaceholderImage = "stampede/tokensvc:dev"
	// PostgresPlaceholderImage is PostgreSQL's image in the base.
	PostgresPlaceholderImage = "stampede/postgres:dev"
	// NodePort is the token service's port on every node.
	NodePort = 30080
	// NameLabel is the label that selects the pods of each workload, and names it.
	NameLabel = "app.kubernetes.io/name"
	// TokensvcName is the token service's Deployment, Service and pods' NameLabel.
	TokensvcName = "tokensvc"
	// TokensvcPort is the token service's container port (its Service's target).
	TokensvcPort = 8080
	// TokensvcMetricsPort is the token service's metrics port: not in its Service, reached
	// through a port-forward.
	TokensvcMetricsPort = 9090
	// TokensvcServicePort is the port of the token service's Service, on its ClusterIP.
	TokensvcServicePort = 8080
	// PostgresName is PostgreSQL's StatefulSet, Service and pods' NameLabel.
	PostgresName = "postgres"
	// PostgresPod is the StatefulSet's one pod.
	PostgresPod = PostgresName + "-0"
	// PostgresPort is PostgreSQL's port.
	PostgresPort = 5432
)

// TokensvcClusterURL is the token service as clients inside the cluster reach it: its
// Service's DNS name in namespace (resolved through the pods' search path, whatever the
// cluster's domain) and port.
func TokensvcClusterURL(namespace string) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", TokensvcName, namespace, TokensvcServicePort)
}

// Selector is the label selector of the pods of the workload called name.
func Selector(name string) string { return NameLabel + "=" + name }

// Params says what Render renders. Every field but Replicas and Config is required.
type Params struct {
	// Strategy names the overlay: one of Strategies().
	Strategy string
	// Namespace receives every object; the Namespace object is renamed to it.
	Namespace string
	// TokensvcImage and PostgresImage are image references as scripts/build-image.sh prints
	// them, e.g. "stampede/tokensvc:0123456789ab".
	TokensvcImage string
	PostgresImage string
	// Replicas of the token service; 0 keeps the base's 3.
	Replicas int
	// SigningKeyPEM is the Ed25519 private key, PEM PKCS#8, that every replica signs with.
	SigningKeyPEM []byte
	// PostgresPassword is PostgreSQL's superuser password; only PostgreSQL's pod gets it.
	PostgresPassword string
	// DatabasePassword is the password of the token service's own role. Both passwords reach
	// their pods as files of Secret volumes; neither may contain a quote, a backslash or a
	// control character (the first line of a file is the password, and a team's manifests may
	// still put it in a key=value connection string).
	DatabasePassword string
	// DatabaseTLS is the certificate PostgreSQL serves and the CA the service verifies it with
	// (NewDatabaseTLS makes both).
	DatabaseTLS DatabaseTLS
	// APIKeys is the token service's API-key file: one "<merchant_id> sha256:<hex>" line per
	// key (service/apikey writes and reads it).
	APIKeys []byte
	// Config holds extra TOKENSVC_* settings for the token service, merged into its ConfigMap
	// over the base's (e.g. TOKENSVC_DATABASE_HOST to repoint it at a proxy, or
	// TOKENSVC_LEGACY_RECHECK_DELAY). The strategy is set with Strategy, not here.
	Config map[string]string
	// Components are kustomize components layered onto the overlay, by name: see Components().
	Components []string
	// TokensvcDir, when set, is a kustomize directory on disk that replaces the bundled token
	// service (base/tokensvc.yaml): a team verifies the manifests it ships. What it must provide
	// is TokensvcContract; Render checks the rendered result against it.
	TokensvcDir string
	// NodePort keeps the token service's Service of type NodePort on NodePort, which a kind
	// cluster's port mapping needs. False makes it a ClusterIP Service: no port opens on any
	// node, and no other Service's node port can collide with it.
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

// TokensvcContract says what a team's token-service kustomize directory (Params.TokensvcDir)
// must provide, so that the suite can deploy, reach and judge it.
const TokensvcContract = `a kustomization.yaml whose resources render:
  - a Deployment and a Service, both named tokensvc; the pods labelled app.kubernetes.io/name=tokensvc
    (the Service's selector); the image stampede/tokensvc:dev (the suite or its flags set the tag);
  - a container port 8080 (the Service's target), serving /v1/tokens, /readyz and /livez;
  - env: envFrom the ConfigMap tokensvc-config (TOKENSVC_* settings, the strategy included); the
    Secret tokensvc-database holds the service's own role (keys TOKENSVC_DB_USER, TOKENSVC_DB_NAME,
    TOKENSVC_DB_PASSWORD): the password mounted as a file, its path in TOKENSVC_DATABASE_PASSWORD_FILE,
    never an environment variable; the database host is TOKENSVC_DATABASE_HOST/PORT; connect with
    sslmode=verify-full and the CA of the Secret tokensvc-database-ca, key ca.crt); POD_NAME from metadata.name
    (X-Served-By); the Secret tokensvc-signing-key (key signing.pem) mounted, its path in
    TOKENSVC_SIGNING_KEY_FILE; the Secret tokensvc-api-keys (key api-keys) mounted, its path in
    TOKENSVC_API_KEYS_FILE; metrics on container port 9090 (TOKENSVC_METRICS_ADDR), not in the Service;
  - pods that meet the restricted Pod Security Standard (the namespace enforces it).
The suite generates the ConfigMap and the Secrets per run; the directory must not define them.`

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

// Strategies lists the overlays, one per create strategy, sorted.
func Strategies() []string {
	entries, err := fs.ReadDir(FS, "overlays")
	if err != nil {
		panic(fmt.Sprintf("manifests: embedded overlays: %v", err)) // the embed directive guarantees it
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// Render renders the overlay for p.Strategy with p's namespace, images, replicas, secrets and
// settings, as objects ready to apply in their order.
func Render(p Params) ([]*unstructured.Unstructured, error) {
	rm, err := render(p)
	if err != nil {
		return nil, err
	}
	objs := make([]*unstructured.Unstructured, 0, rm.Size())
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("render manifests: %s: %w", r.CurId(), err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
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

// finish applies what p asks of the rendered objects beyond kustomize: the token service's
// Service type, the database's storage, the DNS peers.
func finish(objs []*unstructured.Unstructured, p Params) error {
	for _, o := range objs {
		var err error
		switch {
		case o.GetKind() == "Service" && o.GetName() == TokensvcName && !p.NodePort:
			clusterIPOnly(o)
		case o.GetKind() == "StatefulSet" && o.GetName() == PostgresName && p.DatabaseStorage == StorageEmptyDir:
			err = dataOnEmptyDir(o)
		case o.GetKind() == "NetworkPolicy" && o.GetName() == DNSPolicyName && p.DNS != nil:
			spec, ok := o.Object["spec"].(map[string]any)
			if !ok {
				err = errors.New("no spec")
				break
			}
			spec["egress"] = dnsEgressRules(*p.DNS)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
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

// The in-memory layout: the embedded tree under root, the generated kustomization in top.
const (
	root = "/stampede"
	top  = root + "/run"
)

func render(p Params) (resmap.ResMap, error) {
	k, files, err := topKustomization(p)
	if err != nil {
		return nil, err
	}
	fsys := filesys.MakeFsInMemory()
	err = fs.WalkDir(FS, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := FS.ReadFile(name)
		if err != nil {
			return err
		}
		return fsys.WriteFile(path.Join(root, name), data)
	})
	if err != nil {
		return nil, fmt.Errorf("copy manifests: %w", err)
	}
	kyml, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("write kustomization: %w", err)
	}
	files["kustomization.yaml"] = kyml
	if p.TokensvcDir != "" {
		if err := useTokensvcDir(fsys, p.TokensvcDir); err != nil {
			return nil, err
		}
		// The team's directory alone, before the run's namespace is set on everything.
		team, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, teamDir)
		if err != nil {
			return nil, fmt.Errorf("render manifests: %s: %w", p.TokensvcDir, err)
		}
		if err := checkNamespaced(team); err != nil {
			return nil, fmt.Errorf("render manifests: %s: %w", p.TokensvcDir, err)
		}
	}
	for name, data := range files {
		if err := fsys.WriteFile(path.Join(top, name), data); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	opts := krusty.MakeDefaultOptions()
	// Namespace first, then ConfigMaps and Secrets, then workloads: applied in this order, no
	// pod waits for a Secret that is not there yet.
	opts.Reorder = krusty.ReorderOptionLegacy
	rm, err := krusty.MakeKustomizer(opts).Run(fsys, top)
	if err != nil {
		return nil, fmt.Errorf("render manifests (strategy %s): %w", p.Strategy, err)
	}
	if p.TokensvcDir != "" {
		if err := checkTokensvc(rm); err != nil {
			return nil, fmt.Errorf("render manifests: %s: %w\nthe directory must provide %s", p.TokensvcDir, err, TokensvcContract)
		}
	}
	return rm, nil
}

// teamDir is where a team's token-service directory goes in the in-memory tree.
const teamDir = root + "/base/tokensvc-team"

// useTokensvcDir copies the kustomize directory dir from disk into the tree and makes the base
// use it instead of the bundled tokensvc.yaml.
func useTokensvcDir(fsys filesys.FileSystem, dir string) error {
	disk := os.DirFS(dir)
	if _, err := fs.Stat(disk, "kustomization.yaml"); err != nil {
		return fmt.Errorf("render manifests: %s has no kustomization.yaml: it must be a kustomize directory providing %s", dir, TokensvcContract)
	}
	err := fs.WalkDir(disk, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(disk, name)
		if err != nil {
			return err
		}
		return fsys.WriteFile(path.Join(teamDir, name), data)
	})
	if err != nil {
		return fmt.Errorf("render manifests: copy %s: %w", dir, err)
	}
	kpath := path.Join(root, "base", "kustomization.yaml")
	k, err := fsys.ReadFile(kpath)
	if err != nil {
		return fmt.Errorf("render manifests: %w", err)
	}
	replaced := strings.Replace(string(k), "\n  - tokensvc.yaml\n", "\n  - tokensvc-team\n", 1)
	if replaced == string(k) {
		return errors.New("render manifests: the base no longer lists tokensvc.yaml as a resource")
	}
	return fsys.WriteFile(kpath, []byte(replaced))
}

// checkNamespaced refuses a team's render with a Namespace or a cluster-scoped object: it could
// otherwise bring a ClusterRole, a webhook or a StorageClass that the run would apply over a
// cluster-wide object it does not own and never remove. kustomize knows the built-in
// cluster-scoped kinds; the applier refuses any other kind the API server maps to the cluster
// scope.
func checkNamespaced(rm resmap.ResMap) error {
	for _, r := range rm.Resources() {
		switch {
		case r.GetKind() == "Namespace":
			return fmt.Errorf("Namespace %s: stampede creates the run's namespace itself; remove it from the directory", r.GetName())
		case r.GetGvk().IsClusterScoped():
			return fmt.Errorf("%s %s is cluster-scoped: stampede deploys only into the namespace it creates; remove it from the directory", r.GetKind(), r.GetName())
		}
	}
	return nil
}

// checkTokensvc checks a render for what the suite needs of the token service.
func checkTokensvc(rm resmap.ResMap) error {
	var errs []error
	found := map[string]bool{}
	for _, r := range rm.Resources() {
		if r.GetName() != TokensvcName || (r.GetKind() != "Deployment" && r.GetKind() != "Service") {
			continue
		}
		found[r.GetKind()] = true
		m, err := r.Map()
		if err != nil {
			return err
		}
		u := unstructured.Unstructured{Object: m}
		switch r.GetKind() {
		case "Deployment":
			labels, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
			if labels[NameLabel] != TokensvcName {
				errs = append(errs, fmt.Errorf("Deployment %s: pods not labelled %s=%s", TokensvcName, NameLabel, TokensvcName))
			}
		case "Service":
			sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector")
			if sel[NameLabel] != TokensvcName {
				errs = append(errs, fmt.Errorf("Service %s: selector is not %s=%s", TokensvcName, NameLabel, TokensvcName))
			}
		}
	}
	for _, kind := range []string{"Deployment", "Service"} {
		if !found[kind] {
			errs = append(errs, fmt.Errorf("no %s named %s", kind, TokensvcName))
		}
	}
	return errors.Join(errs...)
}

// topKustomization is the kustomization that turns the overlay into one run's manifests, and
// the files it reads (secret contents go in files: a literal would be unquoted by kustomize).
func topKustomization(p Params) (*types.Kustomization, map[string][]byte, error) {
	var errs []error
	if !slices.Contains(Strategies(), p.Strategy) {
		errs = append(errs, fmt.Errorf("strategy %q: want one of %s", p.Strategy, strings.Join(Strategies(), ", ")))
	}
	for _, msg := range validation.IsDNS1123Label(p.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: %s", p.Namespace, msg))
	}
	tokensvc, err := imageOverride(TokensvcPlaceholderImage, p.TokensvcImage)
	errs = append(errs, err)
	postgres, err := imageOverride(PostgresPlaceholderImage, p.PostgresImage)
	errs = append(errs, err)
	if p.Replicas < 0 {
		errs = append(errs, fmt.Errorf("replicas %d: must not be negative", p.Replicas))
	}
	var components []string
	for _, c := range p.Components {
		if !slices.Contains(Components(), c) {
			errs = append(errs, fmt.Errorf("component %q: want one of %s", c, strings.Join(Components(), ", ")))
			continue
		}
		components = append(components, "../components/"+c)
	}
	switch p.DatabaseStorage {
	case "", StoragePVC, StorageEmptyDir:
	default:
		errs = append(errs, fmt.Errorf("database storage %q: want %s or %s", p.DatabaseStorage, StoragePVC, StorageEmptyDir))
	}
	if p.DNS != nil {
		errs = append(errs, p.DNS.check())
	}
	errs = append(errs, checkSigningKey(p.SigningKeyPEM), checkPassword(p.PostgresPassword),
		checkPassword(p.DatabasePassword), p.DatabaseTLS.check())
	if len(p.APIKeys) == 0 {
		errs = append(errs, errors.New("api keys: empty (one \"<merchant_id> sha256:<hex>\" line per key)"))
	}
	var config []string
	for _, key := range slices.Sorted(maps.Keys(p.Config)) {
		value := p.Config[key]
		switch {
		case !strings.HasPrefix(key, "TOKENSVC_"):
			errs = append(errs, fmt.Errorf("config %s: only TOKENSVC_* settings go there", key))
		case key == "TOKENSVC_CREATE_STRATEGY":
			errs = append(errs, errors.New("config TOKENSVC_CREATE_STRATEGY: set Params.Strategy instead"))
		case key == "TOKENSVC_ALLOW_BROKEN_STRATEGIES":
			errs = append(errs, errors.New("config TOKENSVC_ALLOW_BROKEN_STRATEGIES: the overlays of the broken strategies set it, and only they may"))
		case strings.ContainsAny(value, "\n\r"):
			errs = append(errs, fmt.Errorf("config %s: the value has a line break", key))
		default:
			config = append(config, key+"="+value)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("render manifests: %w", err)
	}

	k := &types.Kustomization{
		TypeMeta:   types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources:  []string{"../overlays/" + p.Strategy},
		Components: components,
		Namespace:  p.Namespace,
		Images:     []types.Image{tokensvc, postgres},
		SecretGenerator: []types.SecretArgs{
			{GeneratorArgs: types.GeneratorArgs{Name: "tokensvc-signing-key", Behavior: "replace",
				KvPairSources: types.KvPairSources{FileSources: []string{"signing.pem=signing.pem"}}}},
			{GeneratorArgs: types.GeneratorArgs{Name: "postgres-credentials", Behavior: "merge",
				KvPairSources: types.KvPairSources{FileSources: []string{"POSTGRES_PASSWORD=postgres-password"}}}},
			{GeneratorArgs: types.GeneratorArgs{Name: "tokensvc-database", Behavior: "merge",
				KvPairSources: types.KvPairSources{FileSources: []string{"TOKENSVC_DB_PASSWORD=database-password"}}}},
			{GeneratorArgs: types.GeneratorArgs{Name: "postgres-tls", Behavior: "replace",
				KvPairSources: types.KvPairSources{FileSources: []string{"tls.crt=tls.crt", "tls.key=tls.key"}}}},
			{GeneratorArgs: types.GeneratorArgs{Name: "tokensvc-database-ca", Behavior: "replace",
				KvPairSources: types.KvPairSources{FileSources: []string{"ca.crt=ca.crt"}}}},
			{GeneratorArgs: types.GeneratorArgs{Name: "tokensvc-api-keys", Behavior: "replace",
				KvPairSources: types.KvPairSources{FileSources: []string{"api-keys=api-keys"}}}},
		},
	}
	if len(config) > 0 {
		k.ConfigMapGenerator = []types.ConfigMapArgs{{GeneratorArgs: types.GeneratorArgs{
			Name: "tokensvc-config", Behavior: "merge", KvPairSources: types.KvPairSources{LiteralSources: config}}}}
	}
	if p.Replicas > 0 {
		k.Replicas = []types.Replica{{Name: "tokensvc", Count: int64(p.Replicas)}}
	}
	files := map[string][]byte{
		"signing.pem":       p.SigningKeyPEM,
		"postgres-password": []byte(p.PostgresPassword),
		"database-password": []byte(p.DatabasePassword),
		"tls.crt":           p.DatabaseTLS.CertPEM,
		"tls.key":           p.DatabaseTLS.KeyPEM,
		"ca.crt":            p.DatabaseTLS.CACertPEM,
		"api-keys":          p.APIKeys,
	}
	return k, files, nil
}

// imageOverride replaces the placeholder's name and tag (or digest) with those of ref.
func imageOverride(placeholder, ref string) (types.Image, error) {
	name, _, _ := strings.Cut(placeholder, ":")
	img := types.Image{Name: name}
	if ref == "" {
		return img, fmt.Errorf("image for %s: empty (scripts/build-image.sh prints it)", name)
	}
	rest := ref
	if before, digest, ok := strings.Cut(ref, "@"); ok {
		rest, img.Digest = before, digest
	}
	// A colon after the last slash starts the tag; one before it belongs to a registry's port.
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, img.NewTag = rest[:i], rest[i+1:]
	}
	img.NewName = rest
	switch {
	case rest == "" || strings.ContainsAny(ref, " \t\n"):
		return img, fmt.Errorf("image for %s: %q is not an image reference", name, ref)
	case img.NewTag == "" && img.Digest == "":
		// Without a tag the kubelet would use :latest and, with it, imagePullPolicy Always.
		return img, fmt.Errorf("image for %s: %q has no tag or digest", name, ref)
	case img.NewTag == "latest":
		return img, fmt.Errorf("image for %s: %q: :latest is always pulled, and there is no registry", name, ref)
	}
	return img, nil
}

func checkSigningKey(pemText []byte) error {
	block, _ := pem.Decode(pemText)
	if block == nil || block.Type != "PRIVATE KEY" {
		return errors.New("signing key: want a PEM block \"PRIVATE KEY\" (PKCS#8)")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if _, ok := key.(ed25519.PrivateKey); !ok {
		return fmt.Errorf("signing key: %T, want Ed25519", key)
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
