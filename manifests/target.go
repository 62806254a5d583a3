package manifests

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// The in-memory layout: the embedded tree under root, the target's kustomize directory in
// targetDir, the generated kustomization in top.
const (
	root      = "/stampede"
	targetDir = root + "/target"
	top       = root + "/run"
)

// hashSuffix is the content hash kustomize appends to a generated object's name.
var hashSuffix = regexp.MustCompile(`-[a-z0-9]{10}$`)

// postgresImage is PostgreSQL's image in the base, without its tag.
var postgresImage, _, _ = strings.Cut(PostgresPlaceholderImage, ":")

// render runs kustomize over the suite's base and the target's directory, as one run needs them.
func render(p Params) (resmap.ResMap, error) {
	if p.Target == nil {
		return nil, errors.New("render manifests: no target")
	}
	dir := kustomizeDir(p)
	fsys := filesys.MakeFsInMemory()
	if err := copyEmbedded(fsys); err != nil {
		return nil, err
	}
	if err := copyDir(fsys, dir, p.Target); err != nil {
		return nil, err
	}
	// The target's directory alone, before the run's namespace is set on everything: what it
	// defines (placeholders the suite replaces), and nothing it must not.
	own, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, targetDir)
	if err != nil {
		return nil, fmt.Errorf("render manifests: %s: %w", dir, err)
	}
	if err := checkNamespaced(own); err != nil {
		return nil, fmt.Errorf("render manifests: %s: %w", dir, err)
	}
	ownObjs, err := objects(own)
	if err != nil {
		return nil, fmt.Errorf("render manifests: %s: %w", dir, err)
	}
	if err := checkTarget(ownObjs, p.Target); err != nil {
		return nil, fmt.Errorf("render manifests: %s: %w\nthe directory must provide %s", dir, err, Contract(p.Target))
	}
	defined := map[string]bool{}
	for _, r := range own.Resources() {
		defined[r.GetKind()+"/"+r.GetName()] = true
		// A generated ConfigMap or Secret is named with a hash suffix by now; the run's
		// generators name it without.
		if h := hashSuffix.FindStringIndex(r.GetName()); h != nil {
			defined[r.GetKind()+"/"+r.GetName()[:h[0]]] = true
		}
	}
	k, files, err := topKustomization(p, defined)
	if err != nil {
		return nil, err
	}
	kyml, err := yaml.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("write kustomization: %w", err)
	}
	files["kustomization.yaml"] = kyml
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
		return nil, fmt.Errorf("render manifests (target %s, mode %s): %w", p.Target.Name, p.Mode, err)
	}
	return rm, nil
}

// objects are the resources of rm as unstructured objects, in rm's order.
func objects(rm resmap.ResMap) ([]*unstructured.Unstructured, error) {
	objs := make([]*unstructured.Unstructured, 0, rm.Size())
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs, nil
}

// kustomizeDir is the target's kustomize directory on disk: p.Kustomize, or its target file's.
func kustomizeDir(p Params) string {
	if p.Kustomize != "" {
		return p.Kustomize
	}
	return p.Target.Resolve(p.Target.Deploy.Kustomize)
}

// copyEmbedded copies the suite's own tree (FS) under root.
func copyEmbedded(fsys filesys.FileSystem) error {
	err := fs.WalkDir(FS, ".", func(name string, d fs.DirEntry, err error) error {
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
		return fmt.Errorf("copy manifests: %w", err)
	}
	return nil
}

// copyDir copies the kustomize directory dir from disk to targetDir. It must be self-contained:
// a resource outside it is not copied.
func copyDir(fsys filesys.FileSystem, dir string, t *target.Target) error {
	disk := os.DirFS(dir)
	if _, err := fs.Stat(disk, "kustomization.yaml"); err != nil {
		return fmt.Errorf("render manifests: %s has no kustomization.yaml: it must be a kustomize directory providing %s", dir, Contract(t))
	}
	err := fs.WalkDir(disk, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(disk, name)
		if err != nil {
			return err
		}
		return fsys.WriteFile(path.Join(targetDir, name), data)
	})
	if err != nil {
		return fmt.Errorf("render manifests: copy %s: %w", dir, err)
	}
	return nil
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

// imageOverride replaces the image name, as the manifests write it without a tag, with ref's
// name and tag (or digest).
func imageOverride(name, ref string) (types.Image, error) {
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

// topKustomization is the kustomization that turns the suite's base and the target's directory
// into one run's manifests, and the files it reads (secret contents go in files: a literal
// would be unquoted by kustomize). defined holds "Kind/name" of each object the target's
// directory defines: a generated Secret or ConfigMap replaces or merges into the directory's
// placeholder of that name, or is created where there is none.
func topKustomization(p Params, defined map[string]bool) (*types.Kustomization, map[string][]byte, error) {
	t, d := p.Target, p.Target.Deploy
	var errs []error
	mode, ok := t.ModeNamed(p.Mode)
	if !ok {
		errs = append(errs, fmt.Errorf("mode %q: want one of %s", p.Mode, strings.Join(modeNames(t), ", ")))
	}
	db := d.Database.Bundled
	if db == nil {
		errs = append(errs, fmt.Errorf("target %s: the suite deploys only the bundled PostgreSQL so far (deploy.database.bundled)", t.Name))
	}
	for _, msg := range validation.IsDNS1123Label(p.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: %s", p.Namespace, msg))
	}
	images, err := targetImages(p)
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
	errs = append(errs, checkPassword(p.PostgresPassword), checkPassword(p.DatabasePassword), p.DatabaseTLS.check(), checkSecrets(p))
	configMaps, env, err := settings(p, mode)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("render manifests: %w", err)
	}

	k := &types.Kustomization{
		TypeMeta:   types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
		Resources:  []string{"../base", "../target"},
		Components: components,
		Namespace:  p.Namespace,
		// On the objects only: selectors and a StatefulSet's volumeClaimTemplates are immutable,
		// and pod templates would restart PostgreSQL when a namespace is redeployed in another
		// mode.
		Labels: []types.Label{{Pairs: map[string]string{"app.kubernetes.io/part-of": "stampede", ModeLabel: p.Mode}}},
		Images: images,
	}
	files := map[string][]byte{
		"postgres-password": []byte(p.PostgresPassword),
		"database-password": []byte(p.DatabasePassword),
		"tls.crt":           p.DatabaseTLS.CertPEM,
		"tls.key":           p.DatabaseTLS.KeyPEM,
		"ca.crt":            p.DatabaseTLS.CACertPEM,
	}
	secret := func(name, ifDefined string, files, literals []string) types.SecretArgs {
		behavior := "create"
		if defined["Secret/"+name] {
			behavior = ifDefined
		}
		return types.SecretArgs{GeneratorArgs: types.GeneratorArgs{Name: name, Behavior: behavior,
			KvPairSources: types.KvPairSources{FileSources: files, LiteralSources: literals}}}
	}
	k.SecretGenerator = []types.SecretArgs{
		{GeneratorArgs: types.GeneratorArgs{Name: "postgres-credentials", Behavior: "merge",
			KvPairSources: types.KvPairSources{FileSources: []string{"POSTGRES_PASSWORD=postgres-password"},
				LiteralSources: []string{"POSTGRES_DB=" + db.Database}}}},
		{GeneratorArgs: types.GeneratorArgs{Name: "postgres-tls", Behavior: "replace",
			KvPairSources: types.KvPairSources{FileSources: []string{"tls.crt=tls.crt", "tls.key=tls.key"}}}},
		secret(db.Secret, "merge", []string{db.PasswordKey + "=database-password"},
			[]string{db.UserKey + "=" + db.Role, db.DatabaseKey + "=" + db.Database}),
	}
	if db.CASecret != "" {
		k.SecretGenerator = append(k.SecretGenerator, secret(db.CASecret, "replace", []string{"ca.crt=ca.crt"}, nil))
	}
	for i, s := range d.Secrets {
		file := "secret-" + strconv.Itoa(i)
		files[file] = p.Secrets[s.Name]
		k.SecretGenerator = append(k.SecretGenerator, secret(s.Name, "replace", []string{s.Key + "=" + file}, nil))
	}
	for _, name := range slices.Sorted(maps.Keys(configMaps)) {
		behavior := "create"
		if defined["ConfigMap/"+name] {
			behavior = "merge"
		}
		var literals []string
		for _, key := range slices.Sorted(maps.Keys(configMaps[name])) {
			literals = append(literals, key+"="+configMaps[name][key])
		}
		k.ConfigMapGenerator = append(k.ConfigMapGenerator, types.ConfigMapArgs{GeneratorArgs: types.GeneratorArgs{
			Name: name, Behavior: behavior, KvPairSources: types.KvPairSources{LiteralSources: literals}}})
	}
	if p.Replicas > 0 {
		k.Replicas = []types.Replica{{Name: d.Workload.Name, Count: int64(p.Replicas)}}
	}
	patches := []map[string]any{postgresRolePatch(db)}
	if len(env) > 0 {
		patches = append(patches, envPatch(d.Workload, env))
	}
	for _, patch := range patches {
		y, err := yaml.Marshal(patch)
		if err != nil {
			return nil, nil, fmt.Errorf("render manifests: write patch: %w", err)
		}
		k.Patches = append(k.Patches, types.Patch{Patch: string(y)})
	}
	return k, files, nil
}

func modeNames(t *target.Target) []string {
	var names []string
	for _, m := range t.Modes {
		names = append(names, m.Name)
	}
	return names
}

// targetImages are the image overrides: each of the target's images and PostgreSQL's.
func targetImages(p Params) ([]types.Image, error) {
	var images []types.Image
	var errs []error
	listed := map[string]bool{}
	for _, img := range p.Target.Deploy.Images {
		listed[img.Name] = true
		o, err := imageOverride(img.Name, p.Images[img.Name])
		images = append(images, o)
		errs = append(errs, err)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Images)) {
		if !listed[name] {
			errs = append(errs, fmt.Errorf("image %s: not one of the target's (deploy.images)", name))
		}
	}
	o, err := imageOverride(postgresImage, p.PostgresImage)
	return append(images, o), errors.Join(append(errs, err)...)
}

// checkSecrets checks the generated Secrets' contents against what the target says they hold.
func checkSecrets(p Params) error {
	var errs []error
	listed := map[string]bool{}
	for _, s := range p.Target.Deploy.Secrets {
		listed[s.Name] = true
		content := p.Secrets[s.Name]
		switch {
		case len(content) == 0:
			errs = append(errs, fmt.Errorf("secret %s: empty (%s)", s.Name, s.Generate))
		case s.Generate == "ed25519-pem":
			if err := checkEd25519PEM(content); err != nil {
				errs = append(errs, fmt.Errorf("secret %s (%s): %w", s.Name, s.Generate, err))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		if !listed[name] {
			errs = append(errs, fmt.Errorf("secret %s: not one the target generates (deploy.secrets)", name))
		}
	}
	return errors.Join(errs...)
}

// settings gathers what the render merges into the target's ConfigMaps (by name) and into its
// container's environment: the mode's entries, p.Config over them, and the database endpoint.
func settings(p Params, mode target.Mode) (configMaps map[string]map[string]string, env map[string]string, err error) {
	configMaps, env = map[string]map[string]string{}, map[string]string{}
	dest := env
	if mode.ConfigMap != nil {
		dest = map[string]string{}
		configMaps[mode.ConfigMap.Name] = dest
		maps.Copy(dest, mode.ConfigMap.Data)
	}
	maps.Copy(dest, mode.Env)
	// Keys a mode sets are chosen with the mode: a run must not make one mode look like another.
	modeKeys := map[string]string{}
	for _, m := range p.Target.Modes {
		for k := range m.Env {
			modeKeys[k] = m.Name
		}
		if m.ConfigMap != nil {
			for k := range m.ConfigMap.Data {
				modeKeys[k] = m.Name
			}
		}
	}
	var ep *target.Endpoint
	if db := p.Target.Deploy.Database.Bundled; db != nil {
		ep = db.Endpoint
	}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(p.Config)) {
		value := p.Config[key]
		switch {
		case modeKeys[key] != "":
			errs = append(errs, fmt.Errorf("config %s: mode %s sets it; choose the mode instead", key, modeKeys[key]))
		case ep != nil && (key == ep.HostKey || key == ep.PortKey):
			errs = append(errs, fmt.Errorf("config %s: the database endpoint; set Params.DatabaseHost and DatabasePort instead", key))
		case len(validation.IsConfigMapKey(key)) > 0:
			errs = append(errs, fmt.Errorf("config %s: %s", key, validation.IsConfigMapKey(key)[0]))
		case strings.ContainsAny(value, "\n\r"):
			errs = append(errs, fmt.Errorf("config %s: the value has a line break", key))
		default:
			dest[key] = value
		}
	}
	// The endpoint is written on every render, the bundled PostgreSQL's unless repointed, so
	// that the target's manifests need no default of their own.
	host, port := PostgresName, PostgresPort
	switch repoint := p.DatabaseHost != "" || p.DatabasePort != 0; {
	case repoint && ep == nil:
		errs = append(errs, fmt.Errorf("database endpoint %s:%d: target %s says not where its workload reads it (deploy.database.bundled.endpoint)", p.DatabaseHost, p.DatabasePort, p.Target.Name))
	case repoint && (p.DatabaseHost == "" || p.DatabasePort < 1 || p.DatabasePort > 65535):
		errs = append(errs, fmt.Errorf("database endpoint %q:%d: give a host and a port", p.DatabaseHost, p.DatabasePort))
	case repoint:
		host, port = p.DatabaseHost, p.DatabasePort
	}
	if ep != nil {
		if configMaps[ep.ConfigMap] == nil {
			configMaps[ep.ConfigMap] = map[string]string{}
		}
		configMaps[ep.ConfigMap][ep.HostKey] = host
		configMaps[ep.ConfigMap][ep.PortKey] = strconv.Itoa(port)
	}
	return configMaps, env, errors.Join(errs...)
}

// postgresRolePatch points PostgreSQL at the target's role Secret: the base's target-database
// (keys user and password) is a placeholder. The projected volume's sources are a list without
// a merge key, so the patch gives both, the superuser's as in the base.
func postgresRolePatch(db *target.BundledDatabase) map[string]any {
	source := func(secret, key, path string) map[string]any {
		return map[string]any{"secret": map[string]any{"name": secret, "items": []any{map[string]any{"key": key, "path": path}}}}
	}
	return map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "StatefulSet",
		"metadata":   map[string]any{"name": PostgresName},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{
				"name": PostgresName,
				"env": []any{map[string]any{"name": "POSTGRES_APP_USER",
					"valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": db.Secret, "key": db.UserKey}}}},
			}},
			"volumes": []any{map[string]any{
				"name": "credentials",
				"projected": map[string]any{"sources": []any{
					source("postgres-credentials", "POSTGRES_PASSWORD", "superuser-password"),
					source(db.Secret, db.PasswordKey, "app-password"),
				}},
			}},
		}}},
	}
}

// envPatch sets env on the workload's container (a mode that sets environment variables).
func envPatch(w target.Workload, env map[string]string) map[string]any {
	var vars []any
	for _, k := range slices.Sorted(maps.Keys(env)) {
		vars = append(vars, map[string]any{"name": k, "value": env[k]})
	}
	return map[string]any{
		"apiVersion": "apps/v1",
		"kind":       w.Kind,
		"metadata":   map[string]any{"name": w.Name},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": w.Container, "env": vars}},
		}}},
	}
}

// checkTarget checks the rendered objects for what the suite needs of the target: its workload
// and container, and its Service selecting the workload's pods on the target's port.
func checkTarget(objs []*unstructured.Unstructured, t *target.Target) error {
	d := t.Deploy
	var errs []error
	w := find(objs, d.Workload.Kind, d.Workload.Name)
	var podLabels map[string]string
	if w == nil {
		errs = append(errs, fmt.Errorf("no %s named %s", d.Workload.Kind, d.Workload.Name))
	} else {
		podLabels, _, _ = unstructured.NestedStringMap(w.Object, "spec", "template", "metadata", "labels")
		containers, _, _ := nestedSlice(w.Object, "spec", "template", "spec", "containers")
		if !slices.ContainsFunc(containers, func(c any) bool { m, _ := c.(map[string]any); return m["name"] == d.Workload.Container }) {
			errs = append(errs, fmt.Errorf("%s %s: no container %s", d.Workload.Kind, d.Workload.Name, d.Workload.Container))
		}
	}
	svc := find(objs, "Service", d.Service.Name)
	if svc == nil {
		return errors.Join(append(errs, fmt.Errorf("no Service named %s", d.Service.Name))...)
	}
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	switch {
	case len(sel) == 0:
		errs = append(errs, fmt.Errorf("Service %s: no selector", d.Service.Name))
	case w != nil:
		for k, v := range sel {
			if podLabels[k] != v {
				errs = append(errs, fmt.Errorf("Service %s: selector %s=%s does not select the pods of %s %s", d.Service.Name, k, v, d.Workload.Kind, d.Workload.Name))
			}
		}
	}
	if _, err := targetPort(svc, w, d.Service.Port); err != nil {
		errs = append(errs, fmt.Errorf("Service %s: %w", d.Service.Name, err))
	}
	return errors.Join(errs...)
}

// Contract says what a target's kustomize directory (deploy.kustomize, or the team's
// replacement, Params.Kustomize) must provide so that the suite can deploy, reach and judge it,
// as the target file t describes it.
func Contract(t *target.Target) string {
	d := t.Deploy
	var b strings.Builder
	fmt.Fprintf(&b, "a kustomization.yaml whose resources render, with no Namespace and nothing cluster-scoped:\n")
	var images []string
	for _, img := range d.Images {
		images = append(images, img.Name)
	}
	fmt.Fprintf(&b, "  - a %s named %s with a container %s, its image %s (the suite sets the tag);\n",
		d.Workload.Kind, d.Workload.Name, d.Workload.Container, strings.Join(images, ", "))
	fmt.Fprintf(&b, "  - a Service named %s whose selector selects those pods, with port %d, serving %s %s and %s;\n",
		d.Service.Name, d.Service.Port, t.Create.Method, t.Create.Path, d.Readiness.Path)
	if db := d.Database.Bundled; db != nil {
		fmt.Fprintf(&b, "  - the database: the Secret %s holds its role (keys %s, %s, %s: user, database, password)",
			db.Secret, db.UserKey, db.DatabaseKey, db.PasswordKey)
		if db.CASecret != "" {
			fmt.Fprintf(&b, "; connect with TLS verified against the CA of the Secret %s, key ca.crt", db.CASecret)
		}
		if e := db.Endpoint; e != nil {
			fmt.Fprintf(&b, "; the host and port are %s and %s of the ConfigMap %s", e.HostKey, e.PortKey, e.ConfigMap)
		}
		b.WriteString(";\n")
	}
	for _, s := range d.Secrets {
		fmt.Fprintf(&b, "  - the Secret %s, key %s (%s), read as a file;\n", s.Name, s.Key, s.Generate)
	}
	seen := map[string]bool{}
	for _, m := range t.Modes {
		if m.ConfigMap != nil && !seen[m.ConfigMap.Name] {
			seen[m.ConfigMap.Name] = true
			fmt.Fprintf(&b, "  - the mode's settings read from the ConfigMap %s;\n", m.ConfigMap.Name)
		}
	}
	if o := t.Observability; o != nil && o.Metrics != nil {
		fmt.Fprintf(&b, "  - metrics on container port %d, %s;\n", o.Metrics.Port, o.Metrics.Path)
	}
	b.WriteString("  - pods that meet the restricted Pod Security Standard (the namespace enforces it).\n")
	b.WriteString("The suite generates those Secrets and merges those settings per run: a Secret or ConfigMap of the same name in the directory is a placeholder.")
	return b.String()
}

// TargetPods reads, from a render of t (Render's objects), how the suite reaches the target's
// pods: its Service's selector, as a label selector, and the container port the Service sends
// its port to.
func TargetPods(objs []*unstructured.Unstructured, t *target.Target) (selector string, port int, err error) {
	d := t.Deploy
	svc := find(objs, "Service", d.Service.Name)
	if svc == nil {
		return "", 0, fmt.Errorf("no Service %s", d.Service.Name)
	}
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		pairs = append(pairs, k+"="+sel[k])
	}
	p, err := targetPort(svc, find(objs, d.Workload.Kind, d.Workload.Name), d.Service.Port)
	if err != nil {
		return "", 0, fmt.Errorf("Service %s: %w", d.Service.Name, err)
	}
	return strings.Join(pairs, ","), int(p), nil
}
