package target

import (
	"fmt"
	"maps"
	"mime"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/request"
)

// Placeholders are the names a create request's path, headers and body may hold as {{name}}:
// the suite fills them per key. key and tenant are the identity, email and name payload that
// the database row must keep (truth.columns.agree).
var Placeholders = []string{"key", "tenant", "email", "name"}

// MemberTypes are the types a body member may be given as ("NAME:TYPE"): a string (the
// default), a non-empty string, a JSON boolean, a JSON number, or any JSON value.
var MemberTypes = []string{"string", "nonempty", "boolean", "number", "any"}

// HeaderPromises are the response headers an answer may promise something about (the headers
// the recorder keeps): Cache-Control a directive it holds, WWW-Authenticate the scheme of its
// first challenge.
var HeaderPromises = []string{"Cache-Control", "WWW-Authenticate"}

// placeholder matches {{name}}; braces that do not form one are caught by strayBraces.
var placeholder = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

// FindingKinds are the kinds of finding a canary may name (Canary.Findings' enum).
func FindingKinds() []string {
	f, _ := reflect.TypeFor[Canary]().FieldByName("Findings")
	return strings.Split(f.Tag.Get("enum"), ",")
}

// RenamedFindingKinds maps the kinds of finding renamed when the checker took the same words for
// every target (issue 21: a credential, not a token) from their old names to their new ones. A
// target file that names an old one is refused with the new name, rather than read as it, so that
// the file says what the reports say; a saved judgement naming one reads as the new (e2e/check).
var RenamedFindingKinds = map[string]string{
	"invalid-token":  "invalid-credential",
	"token-mismatch": "credential-mismatch",
	"two-tokens":     "two-credentials",
	"no-final-token": "no-final-credential",
}

// ErrorClasses are the classes a clean error may have (ErrorAnswer.Class's enum).
func ErrorClasses() []string {
	f, _ := reflect.TypeFor[ErrorAnswer]().FieldByName("Class")
	return strings.Split(f.Tag.Get("enum"), ",")
}

// Expand fills the placeholders of s from values; an unknown name is left as written.
func Expand(s string, values map[string]string) string { return request.Expand(s, values) }

// validator checks what the types alone cannot: references between sections, syntax of
// pointers and paths, files that must exist.
type validator struct {
	t    *Target
	file string
	errs ErrorList
}

// errorf records a problem of the field at path, at the position of its value (or of the
// nearest parent the file has).
func (v *validator) errorf(path, format string, args ...any) {
	p := v.t.at(path)
	v.errs = append(v.errs, &Error{File: v.file, Line: p.line, Column: p.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// at is where the value of path is, or its nearest parent's.
func (t *Target) at(path string) pos {
	for {
		if p, ok := t.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return pos{1, 1}
		}
		path = path[:i]
	}
}

func (t *Target) validate(file string) ErrorList {
	v := &validator{t: t, file: file}
	v.names()
	v.deploy()
	v.create()
	v.identity()
	v.response()
	v.errors()
	v.truth()
	v.observability()
	v.traffic()
	v.modes()
	return v.errs
}

// names checks that each of the target's words is a word or a short phrase on
// one line: the reports print them inside sentences and column labels.
func (v *validator) names() {
	n := v.t.Names
	if n == nil {
		return
	}
	for _, w := range []struct{ path, word string }{{"names.entity", n.Entity}, {"names.entities", n.Entities}, {"names.credential", n.Credential}} {
		if w.word != strings.TrimSpace(w.word) || strings.ContainsAny(w.word, "\n\r\t") || len(w.word) > 40 {
			v.errorf(w.path, "%q: want a word or a short phrase on one line, without surrounding spaces", w.word)
		}
	}
}

func (v *validator) deploy() {
	d := v.t.Deploy
	if v.dir("deploy.kustomize", d.Kustomize) {
		if !slices.ContainsFunc([]string{"kustomization.yaml", "kustomization.yml", "Kustomization"}, func(n string) bool {
			_, err := os.Stat(filepath.Join(v.t.Resolve(d.Kustomize), n))
			return err == nil
		}) {
			v.errorf("deploy.kustomize", "%q has no kustomization.yaml", d.Kustomize)
		}
	}
	v.port("deploy.service.port", d.Service.Port)
	if len(d.Images) == 0 {
		v.errorf("deploy.images", "give at least the workload's image")
	}
	seen := map[string]bool{}
	for i, img := range d.Images {
		path := fmt.Sprintf("deploy.images[%d]", i)
		if seen[img.Name] {
			v.errorf(path+".name", "image %q listed twice", img.Name)
		}
		seen[img.Name] = true
		if b := img.Build; b != nil {
			switch {
			case (b.Script == "") == (b.Dockerfile == ""):
				v.errorf(path+".build", "give exactly one of script and dockerfile")
			case b.Script != "":
				v.regular(path+".build.script", b.Script)
			default:
				v.regular(path+".build.dockerfile", b.Dockerfile)
				if len(b.Args) > 0 {
					v.errorf(path+".build.args", "args go with a script, not a dockerfile")
				}
			}
		}
	}
	if (d.Database.Bundled == nil) == (d.Database.Existing == nil) {
		v.errorf("deploy.database", "give exactly one of bundled and existing")
	}
	v.urlPath("deploy.readiness.path", d.Readiness.Path)
	v.secrets()
}

// secrets checks the generated Secrets: one of each kind at most (the verifier takes the one
// public key, the auth the one keys file), each named once, and tenant-keys with its line format.
func (v *validator) secrets() {
	kinds, names := map[string]bool{}, map[string]bool{}
	for i, s := range v.t.Deploy.Secrets {
		path := fmt.Sprintf("deploy.secrets[%d]", i)
		if names[s.Name] {
			v.errorf(path+".name", "Secret %q generated twice", s.Name)
		}
		names[s.Name] = true
		if kinds[s.Generate] {
			v.errorf(path+".generate", "%s generated twice: give it once", s.Generate)
		}
		kinds[s.Generate] = true
		if db := v.t.Deploy.Database.Bundled; db != nil && (s.Name == db.Secret || s.Name == db.CASecret) {
			v.errorf(path+".name", "%q is the database's Secret, which the suite writes itself", s.Name)
		}
		if a := v.t.Create.Auth; s.Generate == "tenant-keys" && (a == nil || a.Keys == nil) {
			v.errorf(path+".generate", "tenant-keys needs create.auth.keys: how a key is made and listed")
		}
	}
}

func (v *validator) create() {
	c := v.t.Create
	v.urlPath("create.path", c.Path)
	v.placeholders("create.path", c.Path)
	for _, k := range slices.Sorted(maps.Keys(c.Headers)) {
		v.placeholders("create.headers."+k, c.Headers[k])
	}
	for _, k := range slices.Sorted(maps.Keys(c.Body)) {
		v.placeholders("create.body."+k, c.Body[k])
	}
	if len(c.Body) == 0 {
		v.errorf("create.body", "give at least the identity's fields")
	}
	if a := c.Auth; a != nil {
		switch {
		case a.Scheme == "header" && a.Header == "":
			v.errorf("create.auth", "scheme header needs header: the name of the header carrying the key")
		case a.Scheme == "bearer" && a.Header != "" && !strings.EqualFold(a.Header, "Authorization"):
			v.errorf("create.auth.header", "a bearer key goes in Authorization, not %q", a.Header)
		}
		if k := a.Keys; k != nil {
			known := v.placeholdersOf("create.auth.keys.line", k.Line, KeyPlaceholders)
			switch {
			case !known: // one problem at a time: what the line lacks is judged once it parses
			case !strings.Contains(k.Line, "{{tenant}}"):
				v.errorf("create.auth.keys.line", "%q does not hold {{tenant}}: a key would act for no tenant", k.Line)
			case !strings.Contains(k.Line, "{{key}}") && !strings.Contains(k.Line, "{{sha256}}"):
				v.errorf("create.auth.keys.line", "%q holds neither {{key}} nor {{sha256}}: the service could not recognise a key", k.Line)
			case strings.ContainsAny(k.Line, "\n\r"):
				v.errorf("create.auth.keys.line", "one line per key: no line break")
			}
			if strings.ContainsFunc(k.Prefix, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				v.errorf("create.auth.keys.prefix", "%q has a space or a control character", k.Prefix)
			}
		}
		if _, ok := headerValue(c.Headers, authHeader(a)); ok && authHeader(a) != "" {
			v.errorf("create.headers", "%s carries the tenant's key (create.auth): leave it out of the headers", authHeader(a))
		}
	}
}

func (v *validator) identity() {
	for _, s := range []struct {
		path, placeholder string
		src               Source
	}{{"identity.key", "key", v.t.Identity.Key}, {"identity.tenant", "tenant", v.t.Identity.Tenant}} {
		var value string
		var ok bool
		switch {
		case (s.src.Field == "") == (s.src.Header == ""):
			v.errorf(s.path, "give exactly one of field and header")
			continue
		case s.src.Field != "":
			if value, ok = v.t.Create.Body[s.src.Field]; !ok {
				v.errorf(s.path+".field", "%q is not a field of create.body", s.src.Field)
				continue
			}
		default:
			if value, ok = headerValue(v.t.Create.Headers, s.src.Header); !ok {
				// Left out of create.headers, the header carries the placeholder alone.
				value = "{{" + s.placeholder + "}}"
			}
			if a := v.t.Create.Auth; a != nil && strings.EqualFold(s.src.Header, authHeader(a)) {
				v.errorf(s.path+".header", "%q carries the tenant's key (create.auth)", s.src.Header)
				continue
			}
		}
		if !strings.Contains(value, "{{"+s.placeholder+"}}") {
			v.errorf(s.path, "its value %q does not hold {{%s}}: the suite could not tell entities apart", value, s.placeholder)
		}
	}
}

func (v *validator) response() {
	r := v.t.Response
	v.pointer("response.id", r.ID, true)
	v.pointer("response.created", r.Created, false)
	v.pointer("response.credential", r.Credential, false)
	for _, o := range []struct {
		path string
		a    *Answer
	}{{"response.outcomes.new", &r.Outcomes.New}, {"response.outcomes.existing", &r.Outcomes.Existing}, {"response.outcomes.replayed", r.Outcomes.Replayed}} {
		if o.a == nil {
			continue
		}
		if o.a.Status < 200 || o.a.Status > 299 {
			v.errorf(o.path+".status", "%d is not a success (200-299)", o.a.Status)
		}
		if _, _, err := mime.ParseMediaType(o.a.ContentType); err != nil {
			v.errorf(o.path+".contentType", "%q is not a media type", o.a.ContentType)
		}
		v.members(o.path+".members", o.a.Members)
		v.headers(o.path+".headers", o.a.Headers)
	}
	if r.Verifier != nil {
		v.verifier(r.Verifier)
	}
}

func (v *validator) verifier(ver *Verifier) {
	if v.t.Response.Credential == "" {
		v.errorf("response.verifier", "a verifier needs response.credential: the credential it verifies")
	}
	if ver.Type == "equal" {
		if ver.JWKSPath != "" || len(ver.Algorithms) > 0 || len(ver.Claims) > 0 || ver.Audience != nil || ver.Issuer != nil || ver.TTL != nil {
			v.errorf("response.verifier", "type equal takes no jwt settings (jwksPath, algorithms, claims, audience, issuer, ttl)")
		}
		return
	}
	if ver.JWKSPath == "" {
		v.errorf("response.verifier", "type jwt needs jwksPath")
	} else {
		v.urlPath("response.verifier.jwksPath", ver.JWKSPath)
	}
	if len(ver.Algorithms) == 0 {
		v.errorf("response.verifier", "type jwt needs algorithms")
	}
	if len(ver.Claims) == 0 {
		v.errorf("response.verifier", "type jwt needs claims: what ties a token to its row and request")
	}
	cols := v.t.Truth.Columns
	rowCols := append([]string{cols.ID, cols.Key, cols.Tenant, cols.CreatedAt}, slices.Collect(maps.Values(cols.Agree))...)
	for _, claim := range slices.Sorted(maps.Keys(ver.Claims)) {
		path, src := "response.verifier.claims."+claim, ver.Claims[claim]
		switch kind, name, _ := strings.Cut(src, "."); kind {
		case "row":
			if !slices.Contains(rowCols, name) {
				v.errorf(path, "%q is not a column of truth.columns", name)
			}
		case "request":
			if _, ok := v.t.Create.Body[name]; !ok {
				v.errorf(path, "%q is not a field of create.body", name)
			}
		default:
			v.errorf(path, "%q is neither row.COLUMN nor request.FIELD", src)
		}
	}
	if ver.TTL != nil {
		if d, err := time.ParseDuration(ver.TTL.Default); err != nil || d <= 0 {
			v.errorf("response.verifier.ttl.default", "%q is not a positive duration (such as 24h)", ver.TTL.Default)
		}
	}
}

func (v *validator) errors() {
	e := v.t.Errors
	v.pointer("errors.codePointer", e.CodePointer, true)
	seen := map[string]bool{}
	for i, a := range e.Answers {
		path := fmt.Sprintf("errors.answers[%d]", i)
		if a.Status < 400 || a.Status > 599 {
			v.errorf(path+".status", "%d is not an error status (400-599)", a.Status)
		}
		key := fmt.Sprintf("%d %s", a.Status, a.Code)
		if seen[key] {
			v.errorf(path, "status %d with code %q listed twice", a.Status, a.Code)
		}
		seen[key] = true
		v.members(path+".members", a.Members)
		v.headers(path+".headers", a.Headers)
	}
	if e.ContentType != "" {
		if _, _, err := mime.ParseMediaType(e.ContentType); err != nil {
			v.errorf("errors.contentType", "%q is not a media type", e.ContentType)
		}
	}
	v.members("errors.members", e.Members)
}

// members checks a list of body members: "NAME" or "NAME:TYPE", each name once.
func (v *validator) members(path string, members []string) {
	seen := map[string]bool{}
	for i, m := range members {
		name, typ, typed := strings.Cut(m, ":")
		switch {
		case name == "":
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "%q names no member", m)
		case typed && !slices.Contains(MemberTypes, typ):
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "type %q is not one of %s", typ, strings.Join(MemberTypes, ", "))
		case seen[name]:
			v.errorf(fmt.Sprintf("%s[%d]", path, i), "member %q listed twice", name)
		}
		seen[name] = true
	}
}

// headers checks header promises: only the headers the recorder keeps.
func (v *validator) headers(path string, h map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if !slices.ContainsFunc(HeaderPromises, func(p string) bool { return strings.EqualFold(p, k) }) {
			v.errorf(path+"."+k, "no promise about %q can be judged (only %s)", k, strings.Join(HeaderPromises, ", "))
		} else if h[k] == "" {
			v.errorf(path+"."+k, "must not be empty")
		}
	}
}

func (v *validator) truth() {
	t := v.t.Truth
	if strings.Contains(t.Query, "*") {
		return // the columns cannot be read off a query that selects them all
	}
	c := t.Columns
	named := []struct{ path, col string }{{"truth.columns.id", c.ID}, {"truth.columns.key", c.Key}, {"truth.columns.tenant", c.Tenant}, {"truth.columns.createdAt", c.CreatedAt}}
	for _, f := range slices.Sorted(maps.Keys(c.Agree)) {
		named = append(named, struct{ path, col string }{"truth.columns.agree." + f, c.Agree[f]})
		if _, ok := v.t.Create.Body[f]; !ok {
			v.errorf("truth.columns.agree."+f, "%q is not a field of create.body", f)
		}
	}
	for _, n := range named {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(n.col) + `\b`).MatchString(t.Query) {
			v.errorf(n.path, "column %q is not in truth.query", n.col)
		}
	}
}

func (v *validator) observability() {
	o := v.t.Observability
	if o == nil {
		return
	}
	if c := o.OutcomeCounter; c != nil && !slices.Contains(c.Labels, c.OutcomeLabel) {
		v.errorf("observability.outcomeCounter.outcomeLabel", "%q is not one of its labels", c.OutcomeLabel)
	}
	if c := o.OutcomeCounter; c != nil && c.Values != nil {
		for _, code := range slices.Sorted(maps.Keys(c.Values.Errors)) {
			if !slices.ContainsFunc(v.t.Errors.Answers, func(a ErrorAnswer) bool { return a.Code == code }) {
				v.errorf("observability.outcomeCounter.values.errors."+code, "%q is not a code of errors.answers", code)
			}
		}
	}
	if m := o.Metrics; m != nil {
		v.urlPath("observability.metrics.path", m.Path)
		v.port("observability.metrics.port", m.Port)
	}
	// A line matched by nothing would be any line: the first log line would be read.
	if l := o.SyncCommitLog; l != nil && len(l.Match) == 0 {
		v.errorf("observability.syncCommitLog.match", "give at least one member the line has")
	}
}

func (v *validator) traffic() {
	if v.t.Traffic == nil || v.t.Traffic.Gap == "" {
		return
	}
	d, err := time.ParseDuration(v.t.Traffic.Gap)
	switch {
	case err != nil:
		v.errorf("traffic.gap", "%q is not a duration (such as 50ms)", v.t.Traffic.Gap)
	case d <= 0 || d > MaxGap:
		v.errorf("traffic.gap", "%s: want more than 0 and at most %s", d, MaxGap)
	}
}

func (v *validator) modes() {
	if len(v.t.Modes) == 0 {
		v.errorf("modes", "give at least one mode")
	}
	classes := map[string]bool{}
	for _, a := range v.t.Errors.Answers {
		classes[a.Class] = true
	}
	seen := map[string]bool{}
	for i, m := range v.t.Modes {
		path := fmt.Sprintf("modes[%d]", i)
		if seen[m.Name] {
			v.errorf(path+".name", "mode %q named twice", m.Name)
		}
		seen[m.Name] = true
		if m.Env != nil && m.ConfigMap != nil {
			v.errorf(path, "give at most one of env and configMap")
		}
		listed := map[string]string{}
		for _, l := range []struct {
			name    string
			classes []string
		}{{"faultOnly", m.Contract.FaultOnly}, {"rivalOnly", m.Contract.RivalOnly}, {"always", m.Contract.Always}} {
			for j, c := range l.classes {
				p := fmt.Sprintf("%s.contract.%s[%d]", path, l.name, j)
				if prev, ok := listed[c]; ok {
					v.errorf(p, "class %q is already in %s", c, prev)
				}
				listed[c] = l.name
				if !classes[c] {
					v.errorf(p, "no answer of errors.answers has class %q", c)
				}
			}
		}
		v.lineNames(path, m.Contract.Lines, listed)
		if m.Canary != nil && len(m.Canary.Findings) == 0 {
			v.errorf(path+".canary.findings", "a canary names at least one kind of finding it must produce")
		}
		if m.Canary != nil {
			for i, k := range m.Canary.Never {
				if slices.Contains(m.Canary.Findings, k) {
					v.errorf(fmt.Sprintf("%s.canary.never[%d]", path, i), "%q is also among the findings it must produce", k)
				}
			}
		}
	}
}

// lineNames checks that each named line is of a code the mode may answer with: a clean answer of
// errors.answers whose class the mode lists, named once.
func (v *validator) lineNames(path string, lines []CodeLineName, listed map[string]string) {
	named := map[string]bool{}
	for j, l := range lines {
		p := fmt.Sprintf("%s.contract.lines[%d].code", path, j)
		if named[l.Code] {
			v.errorf(p, "code %q named twice", l.Code)
		}
		named[l.Code] = true
		i := slices.IndexFunc(v.t.Errors.Answers, func(a ErrorAnswer) bool { return a.Code == l.Code })
		switch {
		case i < 0:
			v.errorf(p, "%q is not a code of errors.answers", l.Code)
		case listed[v.t.Errors.Answers[i].Class] == "":
			v.errorf(p, "%q is of class %q, which the mode does not list", l.Code, v.t.Errors.Answers[i].Class)
		case v.t.Errors.Answers[i].Clean != nil && !*v.t.Errors.Answers[i].Clean:
			v.errorf(p, "%q is never a clean answer (clean: false): no line allows it", l.Code)
		}
	}
}

// dir checks that rel names a directory, relative to the target file.
func (v *validator) dir(path, rel string) bool {
	fi, err := os.Stat(v.t.Resolve(rel))
	if err != nil || !fi.IsDir() {
		v.errorf(path, "%q is not a directory (relative to the target file)", rel)
		return false
	}
	return true
}

// regular checks that rel names a file, relative to the target file.
func (v *validator) regular(path, rel string) {
	fi, err := os.Stat(v.t.Resolve(rel))
	if err != nil || fi.IsDir() {
		v.errorf(path, "%q is not a file (relative to the target file)", rel)
	}
}

func (v *validator) port(path string, p int) {
	if p < 1 || p > 65535 {
		v.errorf(path, "%d is not a port (1-65535)", p)
	}
}

func (v *validator) urlPath(path, p string) {
	if !strings.HasPrefix(p, "/") {
		v.errorf(path, "%q is not an absolute path (must start with \"/\")", p)
	}
}

// pointer checks a JSON pointer (RFC 6901); "" is the whole document, refused when required.
func (v *validator) pointer(path, p string, required bool) {
	if p == "" && !required {
		return
	}
	if err := checkPointer(p); err != nil {
		v.errorf(path, "%q is not a JSON pointer (%s)", p, err)
	}
}

func checkPointer(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf(`must start with "/"`)
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return fmt.Errorf(`"~" must be followed by 0 or 1`)
		}
	}
	return nil
}

// placeholders checks that s names only Placeholders, and has no stray braces.
func (v *validator) placeholders(path, s string) { v.placeholdersOf(path, s, Placeholders) }

// placeholdersOf checks that s names only the placeholders known, and has no stray braces; it
// says whether s passed.
func (v *validator) placeholdersOf(path, s string, known []string) bool {
	ok := true
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		if name := strings.TrimSpace(m[1]); !slices.Contains(known, name) {
			v.errorf(path, "unknown placeholder {{%s}} (known: %s)", name, "{{"+strings.Join(known, "}}, {{")+"}}")
			ok = false
		}
	}
	if rest := placeholder.ReplaceAllString(s, ""); strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		v.errorf(path, "%q has an unclosed placeholder (write {{name}})", s)
		ok = false
	}
	return ok
}

// authHeader is the header that carries the tenant's key.
func authHeader(a *Auth) string {
	if a.Scheme == "bearer" {
		return "Authorization"
	}
	return a.Header
}

// headerValue looks a header up by its canonical name, as HTTP compares them.
func headerValue(h map[string]string, name string) (string, bool) {
	for k, val := range h {
		if strings.EqualFold(k, name) {
			return val, true
		}
	}
	return "", false
}
