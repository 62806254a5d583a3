package target

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goodFile is a small valid target, unlike the token service: its identity is a header
// (Idempotency-Key), its auth a named header, its verifier equal. Line numbers matter: the
// cases below name them.
const goodFile = `apiVersion: stampede.dev/v1alpha1
kind: Target
name: shop
deploy:
  kustomize: k
  workload: {kind: Deployment, name: shop, container: app}
  service: {name: shop, port: 8080}
  images:
    - name: shop/app
      build: {script: build.sh, args: [app]}
  database:
    existing: {secret: db, urlKey: url}
  readiness: {path: /ready}
create:
  method: POST
  path: /v1/orders
  headers:
    Idempotency-Key: "{{key}}"
  auth: {scheme: header, header: X-Api-Key}
  body:
    tenant: "{{tenant}}"
    email: "{{email}}"
identity:
  key: {header: Idempotency-Key}
  tenant: {field: tenant}
response:
  id: /order/id
  created: /created
  credential: /receipt
  verifier: {type: equal}
  outcomes:
    new: {status: 201, contentType: application/json}
    existing: {status: 200, contentType: application/json}
errors:
  codePointer: /error/code
  answers:
    - {status: 409, code: in_progress, class: in-progress, retryAfter: true}
    - {status: 503, code: unavailable, class: unavailable, retryAfter: true}
truth:
  query: SELECT id, idempotency_key, tenant, email, created_at FROM orders WHERE tenant = ANY($1)
  columns:
    id: id
    key: idempotency_key
    tenant: tenant
    createdAt: created_at
    agree: {email: email}
modes:
  - name: safe
    env: {LOCKING: "on"}
    contract: {exactlyOnce: true, faultOnly: [unavailable], rivalOnly: [in-progress]}
  - name: racy
    env: {LOCKING: "off"}
    contract: {exactlyOnce: false, faultOnly: [unavailable]}
    canary: {findings: [duplicate-rows]}
`

// writeTarget writes content as dir/target.yaml beside the kustomize directory and build
// script that goodFile names, and returns its path.
func writeTarget(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "k"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"k/kustomization.yaml": "resources: []\n", "build.sh": "#!/bin/sh\n", "target.yaml": content} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "target.yaml")
}

func TestLoadGood(t *testing.T) {
	tg, err := Load(writeTarget(t, goodFile))
	if err != nil {
		t.Fatalf("a valid file is refused:\n%v", err)
	}
	if tg.Name != "shop" || len(tg.Modes) != 2 || tg.Identity.Key.Header != "Idempotency-Key" || tg.Create.Auth.Header != "X-Api-Key" {
		t.Errorf("decoded %+v", tg)
	}
	if m, ok := tg.ModeNamed("racy"); !ok || m.Canary == nil || m.Canary.Findings[0] != "duplicate-rows" || m.Env["LOCKING"] != "off" {
		t.Errorf("mode racy: %+v", m)
	}
	if a, ok := tg.ErrorClass(409, "in_progress"); !ok || a.Class != "in-progress" || !a.RetryAfter {
		t.Errorf("409 in_progress: %+v %v", a, ok)
	}
	// sha256 of the file's bytes: the digest names the file, so any change changes it.
	if d, want := tg.Digest(), fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(goodFile))); d != want {
		t.Errorf("digest %q, want %q", d, want)
	}
	other, err := Load(writeTarget(t, goodFile+"# a comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	if other.Digest() == tg.Digest() {
		t.Error("two different files share a digest")
	}
}

// TestLoadBad holds each kind of mistake to its one line: where it is, the field's path, and
// what is wrong.
func TestLoadBad(t *testing.T) {
	for _, c := range []struct {
		name     string
		old, new string
		want     string
	}{
		{"typo of an optional field", "  created: /created\n", "  craeted: /created\n",
			`target.yaml:28:3: response: unknown field "craeted" (did you mean "created"?)`},
		{"typo of a required field: not also missing", "  id: /order/id\n", "  idd: /order/id\n",
			`target.yaml:27:3: response: unknown field "idd" (did you mean "id"?)`},
		{"unknown field far from any", "  readiness: {path: /ready}\n", "  readiness: {path: /ready, timeout: 3s}\n",
			`target.yaml:13:29: deploy.readiness: unknown field "timeout"`},
		{"missing required field, at its parent's key", "  readiness: {path: /ready}\n", "",
			`target.yaml:4:1: deploy: missing required field "readiness"`},
		{"missing required top-level section", "kind: Target\n", "",
			`target.yaml:1:1: missing required field "kind"`},
		{"wrong pointer", "  id: /order/id\n", "  id: order/id\n",
			`target.yaml:27:7: response.id: "order/id" is not a JSON pointer (must start with "/")`},
		{"bad escape in a pointer", "  credential: /receipt\n", "  credential: /rec~eipt\n",
			`target.yaml:29:15: response.credential: "/rec~eipt" is not a JSON pointer ("~" must be followed by 0 or 1)`},
		{"bad enum", "{type: equal}", "{type: same}",
			`target.yaml:30:20: response.verifier.type: "same" is not one of jwt, equal`},
		{"bad error class", "class: unavailable,", "class: down,",
			`target.yaml:38:47: errors.answers[1].class: "down" is not one of in-progress, conflict, unavailable, overloaded, invalid, unauthenticated, forbidden, internal`},
		{"bad member type", "new: {status: 201, contentType: application/json}", `new: {status: 201, contentType: application/json, members: [order, "total:money"]}`,
			`target.yaml:32:72: response.outcomes.new.members[1]: type "money" is not one of string, nonempty, boolean, number, any`},
		{"header no promise can judge", "new: {status: 201, contentType: application/json}", `new: {status: 201, contentType: application/json, headers: {ETag: x}}`,
			`target.yaml:32:71: response.outcomes.new.headers.ETag: no promise about "ETag" can be judged (only Cache-Control, WWW-Authenticate)`},
		{"outcome value of no code", "  readiness: {path: /ready}\n", "  readiness: {path: /ready}\nobservability: {outcomeCounter: {name: c, labels: [o], outcomeLabel: o, values: {new: n, existing: e, errors: {teapot: t}}}}\n",
			`target.yaml:14:120: observability.outcomeCounter.values.errors.teapot: "teapot" is not a code of errors.answers`},
		{"log line matched by nothing", "  readiness: {path: /ready}\n", "  readiness: {path: /ready}\nobservability: {syncCommitLog: {match: {}, field: f}}\n",
			`target.yaml:14:40: observability.syncCommitLog.match: give at least one member the line has`},
		{"gap not a duration", "  readiness: {path: /ready}\n", "  readiness: {path: /ready}\ntraffic: {gap: 50}\n",
			`target.yaml:14:16: traffic.gap: "50" is not a duration (such as 50ms)`},
		{"gap out of range", "  readiness: {path: /ready}\n", "  readiness: {path: /ready}\ntraffic: {gap: 11s}\n",
			`target.yaml:14:16: traffic.gap: 11s: want more than 0 and at most 10s`},
		{"unknown placeholder", `email: "{{email}}"`, `email: "{{mail}}"`,
			`target.yaml:22:12: create.body.email: unknown placeholder {{mail}} (known: {{key}}, {{tenant}}, {{email}}, {{name}})`},
		{"unclosed placeholder", `Idempotency-Key: "{{key}}"`, `Idempotency-Key: "{{key}}-{{n"`,
			`target.yaml:18:22: create.headers.Idempotency-Key: "{{key}}-{{n" has an unclosed placeholder (write {{name}})`},
		{"mode canary without findings", "canary: {findings: [duplicate-rows]}", "canary: {findings: []}",
			`target.yaml:54:24: modes[1].canary.findings: a canary names at least one kind of finding it must produce`},
		{"mode canary with nothing", "canary: {findings: [duplicate-rows]}", "canary: {}",
			`target.yaml:54:5: modes[1].canary: missing required field "findings"`},
		{"canary of an unknown finding", "[duplicate-rows]", "[duplicates]",
			`target.yaml:54:25: modes[1].canary.findings[0]: "duplicates" is not one of ` + strings.Join(FindingKinds(), ", ")},
		{"mode names twice", "  - name: racy\n", "  - name: safe\n",
			`target.yaml:51:11: modes[1].name: mode "safe" named twice`},
		{"contract class no answer has", "rivalOnly: [in-progress]", "rivalOnly: [conflict]",
			`target.yaml:50:73: modes[0].contract.rivalOnly[0]: no answer of errors.answers has class "conflict"`},
		{"contract line of a class the mode does not list", "contract: {exactlyOnce: false, faultOnly: [unavailable]}",
			"contract: {exactlyOnce: false, faultOnly: [unavailable], lines: [{code: in_progress, id: rival}]}",
			`target.yaml:53:77: modes[1].contract.lines[0].code: "in_progress" is of class "in-progress", which the mode does not list`},
		{"contract line of no code", "contract: {exactlyOnce: false, faultOnly: [unavailable]}",
			"contract: {exactlyOnce: false, faultOnly: [unavailable], lines: [{code: teapot, doc: short}]}",
			`target.yaml:53:77: modes[1].contract.lines[0].code: "teapot" is not a code of errors.answers`},
		{"contract promise without its doc", "contract: {exactlyOnce: false, faultOnly: [unavailable]}",
			"contract: {exactlyOnce: false, faultOnly: [unavailable], promise: {id: no-errors}}",
			`target.yaml:53:62: modes[1].contract.promise: missing required field "doc"`},
		{"identity field not in the body", "tenant: {field: tenant}", "tenant: {field: merchant}",
			`target.yaml:25:19: identity.tenant.field: "merchant" is not a field of create.body`},
		{"identity header that carries the key", "key: {header: Idempotency-Key}", "key: {header: x-api-key}",
			`target.yaml:24:17: identity.key.header: "x-api-key" carries the tenant's key (create.auth)`},
		{"auth header among the headers", `Idempotency-Key: "{{key}}"`, `X-Api-Key: "k"`,
			`target.yaml:18:5: create.headers: X-Api-Key carries the tenant's key (create.auth): leave it out of the headers`},
		{"identity field without its placeholder", `tenant: "{{tenant}}"`, `tenant: "acme"`,
			`target.yaml:25:11: identity.tenant: its value "acme" does not hold {{tenant}}: the suite could not tell entities apart`},
		{"kustomize directory absent", "kustomize: k\n", "kustomize: ../nowhere\n",
			`target.yaml:5:14: deploy.kustomize: "../nowhere" is not a directory (relative to the target file)`},
		{"build script absent", "script: build.sh", "script: make.sh",
			`target.yaml:10:23: deploy.images[0].build.script: "make.sh" is not a file (relative to the target file)`},
		{"bad method", "method: POST", "method: FETCH",
			`target.yaml:15:11: create.method: "FETCH" is not one of POST, PUT, PATCH`},
		{"success status out of range", "new: {status: 201,", "new: {status: 409,",
			`target.yaml:32:19: response.outcomes.new.status: 409 is not a success (200-299)`},
		{"error status out of range", "{status: 409, code: in_progress", "{status: 299, code: in_progress",
			`target.yaml:37:16: errors.answers[0].status: 299 is not an error status (400-599)`},
		{"a number as text", "port: 8080}", "port: http}",
			`target.yaml:7:31: deploy.service.port: want a whole number, got "http"`},
		{"wrong version", "apiVersion: stampede.dev/v1alpha1", "apiVersion: stampede.dev/v1",
			`target.yaml:1:13: apiVersion: "stampede.dev/v1" is not one of stampede.dev/v1alpha1`},
		{"agreed column not in the query", "agree: {email: email}", "agree: {email: mail}",
			`target.yaml:46:20: truth.columns.agree.email: column "mail" is not in truth.query`},
		{"TODO left", "name: shop/app", "name: TODO",
			`target.yaml:9:13: deploy.images[0].name: still TODO: fill it in`},
		{"empty optional section", "  verifier: {type: equal}\n", "  verifier:\n",
			`target.yaml:30:12: response.verifier: is empty: fill it in or leave it out`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(goodFile, c.old) {
				t.Fatalf("goodFile has no %q", c.old)
			}
			_, err := Load(writeTarget(t, strings.Replace(goodFile, c.old, c.new, 1)))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v, want an ErrorList", err)
			}
			if got := err.Error(); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestLoadBadCollectsAll: every problem at once, sorted by line, one a line.
func TestLoadBadCollectsAll(t *testing.T) {
	bad := strings.NewReplacer("  id: /order/id\n", "  id: order/id\n", "method: POST", "method: FETCH", "{type: equal}", "{tipe: equal}").Replace(goodFile)
	_, err := Load(writeTarget(t, bad))
	want := `target.yaml:15:11: create.method: "FETCH" is not one of POST, PUT, PATCH
target.yaml:30:14: response.verifier: unknown field "tipe" (did you mean "type"?)`
	// The pointer is a validation problem: it is reported once the file decodes, not before,
	// so that a field that failed to decode is not blamed twice.
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
	_, err = Load(writeTarget(t, strings.Replace(goodFile, "{type: equal}", "{type: equal}\n  credential: /again", 1)))
	if err == nil || !strings.Contains(err.Error(), `target.yaml:31:3: response: field "credential" given twice`) {
		t.Errorf("a field given twice: %v", err)
	}
	bad = strings.NewReplacer("  id: /order/id\n", "  id: order/id\n", `tenant: "{{tenant}}"`, `tenant: "{{tenant}}{{who}}"`).Replace(goodFile)
	_, err = Load(writeTarget(t, bad))
	want = `target.yaml:21:13: create.body.tenant: unknown placeholder {{who}} (known: {{key}}, {{tenant}}, {{email}}, {{name}})
target.yaml:27:7: response.id: "order/id" is not a JSON pointer (must start with "/")`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestLoadNotATarget(t *testing.T) {
	for content, want := range map[string]string{
		"":            "target.yaml:1:1: empty file: want apiVersion stampede.dev/v1alpha1, kind Target",
		"- a\n- b\n":  "target.yaml:1:1: want a mapping, got a list",
		"a: [\n":      "target.yaml:1:1: not YAML: ",
		"kind: [x]\n": `target.yaml:1:7: kind: want a string, got a list`,
	} {
		_, err := Load(writeTarget(t, content))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %s", content, err, want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent.yaml")); err == nil || errors.As(err, new(ErrorList)) {
		t.Errorf("an absent file: %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"id", "idd", 1}, {"created", "craeted", 2}, {"kustomize", "kustomise", 1}, {"abc", "", 3}} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestExpand(t *testing.T) {
	got := Expand(`{{tenant}}/{{ key }}/{{other}}`, map[string]string{"tenant": "m1", "key": "c1"})
	if want := "m1/c1/{{other}}"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestParse: bytes from elsewhere (a test, a request) resolve their paths from name's directory.
func TestParse(t *testing.T) {
	path := writeTarget(t, "")
	tg, err := Parse(path, []byte(goodFile))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if tg.File() != path || tg.Resolve("k") != filepath.Join(filepath.Dir(path), "k") {
		t.Errorf("file %q, k resolves to %q", tg.File(), tg.Resolve("k"))
	}
	_, err = Parse("elsewhere/target.yaml", []byte(goodFile))
	if err == nil || !strings.Contains(err.Error(), `target.yaml:5:14: deploy.kustomize: "k" is not a directory`) {
		t.Errorf("paths beside a file that is not there: %v", err)
	}
}
