package target

import (
	"fmt"
	"strings"
)

// skeleton is the file `stampede target init` writes: every required field, each value the
// author must give a TODO (which Load reports, one line each), the optional parts as comments.
const skeleton = `# A stampede target file: how to deploy, call and judge a service that must create something
# exactly once per key. Replace every TODO (stampede target validate FILE lists those left).
# Reference: README.md, "Target file reference"; schema: e2e/target/target.schema.json.
apiVersion: stampede.dev/v1alpha1
kind: Target
name: NAME
# Your words for what the reports count (summary, report.html): one entity a create makes per
# key, its plural, and what a success carries. Left out: entity, entities, credential.
# names: {entity: order, entities: orders, credential: order}

deploy:
  # Your kustomize directory, relative to this file; the suite sets namespace and image tags.
  kustomize: TODO
  workload: {kind: Deployment, name: TODO, container: TODO}
  service: {name: TODO, port: TODO}
  images:
    # As your manifests write it, without a tag. For a bundled target, how to build it offline:
    #   build: {script: ../build.sh, args: [NAME]}   or   build: {dockerfile: ../Dockerfile}
    - name: TODO
  database:
    # The suite's PostgreSQL: it generates a role and password per run into this Secret of
    # your manifests (and a TLS CA into caSecret). Or a database of yours:
    #   existing: {secret: NAME, urlKey: KEY, passwordKey: KEY}
    bundled:
      role: TODO
      database: TODO
      secret: TODO
      userKey: TODO
      databaseKey: TODO
      passwordKey: TODO
      # Where your workload reads the database's host and port, so that the suite can put a
      # proxy in between for the faults on the database path (without it they are skipped):
      # endpoint: {configMap: NAME, hostKey: KEY, portKey: KEY}
  # A path that answers 200 once a pod can serve.
  readiness: {path: TODO}
  # Secrets the suite generates per run, each replacing a placeholder of that name in your
  # manifests (or created): an Ed25519 signing key (PEM PKCS#8; the suite keeps the public half
  # to verify your credentials), or the tenants' API keys file (create.auth.keys).
  # secrets:
  #   - {name: NAME, key: signing.pem, generate: ed25519-pem}
  #   - {name: NAME, key: api-keys, generate: tenant-keys}

create:
  method: POST
  path: TODO
  headers:
    Content-Type: application/json
    # Idempotency-Key: "{{key}}"
  # A key generated per tenant: bearer (Authorization: Bearer KEY) or {scheme: header, header: NAME}.
  # keys: a key is prefix and 32 random bytes (base64url); the keys file holds line per tenant,
  # with {{tenant}}, {{key}} and {{sha256}} (hex SHA-256 of the key).
  # auth:
  #   scheme: bearer
  #   keys: {prefix: sk_, line: "{{tenant}} sha256:{{sha256}}"}
  # The JSON body, one string member each. Placeholders the suite fills per key: {{key}},
  # {{tenant}}, {{email}}, {{name}}; a member that expands to "" is left out.
  body:
    TODO: "{{key}}"

identity:
  # The body field (field: NAME) or header (header: NAME) naming one entity, and its tenant's.
  key: {field: TODO}
  tenant: {field: TODO}

response:
  # JSON pointers (RFC 6901) into a success's body.
  id: TODO
  # created: /created
  # credential: /token
  # verifier: {type: equal}   or   {type: jwt, jwksPath: /.well-known/jwks.json, algorithms: [ES256],
  #   claims: {sub: row.id}, audience: {default: AUD}, issuer: {default: ISS}, ttl: {default: 24h}}
  # Each outcome may also list its body's members, all of them ("NAME" a string, or NAME:TYPE,
  # TYPE string, nonempty, boolean, number or any), and promise headers:
  #   members: [id, "created:boolean"], headers: {Cache-Control: no-store}
  outcomes:
    new: {status: 201, contentType: application/json}
    existing: {status: 200, contentType: application/json}
    # replayed: {status: 200, contentType: application/json}

errors:
  codePointer: TODO
  # contentType: application/problem+json
  # members: [type, title, "status:number"]   # of every error body, unless an answer lists its own
  # class: in-progress, conflict, unavailable, overloaded, invalid, unauthenticated, forbidden, internal
  # An answer may list members and headers ({WWW-Authenticate: Bearer}); clean: false documents
  # one that is never a clean answer to a valid request (an internal error).
  answers:
    - {status: 409, code: TODO, class: in-progress, retryAfter: true}
    - {status: 503, code: TODO, class: unavailable, retryAfter: true}

truth:
  # One row per entity of the tenants in $1 (a text array).
  query: TODO
  columns:
    id: TODO
    key: TODO
    tenant: TODO
    createdAt: TODO
    # agree: {email: email}   # request field: the column that must hold it

# observability:                       # each part optional; the verdict says what it fell back to
#   podHeader: X-Served-By
#   handlerIntervalHeader: Server-Timing
#   outcomeCounter: {name: NAME_total, labels: [outcome], outcomeLabel: outcome,
#     values: {new: created, existing: existing, errors: {CODE: VALUE}, invalidInput: invalid}}
#   metrics: {path: /metrics, port: 9090}

modes:
  - name: default
    # env: {NAME: VALUE}   or   configMap: {name: NAME, data: {KEY: VALUE}}
    contract: {exactlyOnce: true, faultOnly: [unavailable], rivalOnly: [in-progress]}
    # Findings name a line CODE-during-fault, CODE-to-a-rival or CODE; to name it and its promise:
    #   lines: [{code: CODE, id: ID, doc: SENTENCE}], promise: {id: ID, doc: SENTENCE}
    # A known-broken mode names the kinds of finding a run of it must produce:
    # canary: {findings: [duplicate-rows]}
`

// Skeleton returns a commented target file for a service called name, its values to fill in
// marked TODO.
func Skeleton(name string) []byte {
	if name == "" {
		name = "my-service"
	}
	return []byte(strings.Replace(skeleton, "name: NAME\n", fmt.Sprintf("name: %q\n", name), 1))
}
