// Package target reads a target file: the declarative description of one service that must
// create something exactly once per key (how to deploy it, call it, read its answers and its
// database, and which modes it runs in), so that the suite can judge it without knowing it.
//
// The Go types below are the schema. Their struct tags drive the decoder (field names, which
// are required, which values an enum allows) and the JSON Schema for editors
// (target.schema.json, written by `go generate`), so that the two cannot say different things:
//
//	yaml:"name"          the field's name in the file
//	target:"required"    the field must be present (and a string non-empty)
//	enum:"a,b"           the allowed values of a string or of each string in a list
package target

import (
	"strings"
	"time"
)

// APIVersion is the only version of the target file this package reads.
const APIVersion = "stampede.dev/v1alpha1"

// Kind is the kind of a target file.
const Kind = "Target"

// Target is one decoded, validated target file.
type Target struct {
	APIVersion string `yaml:"apiVersion" target:"required" enum:"stampede.dev/v1alpha1"`
	Kind       string `yaml:"kind" target:"required" enum:"Target"`
	// Name names the target in reports.
	Name string `yaml:"name" target:"required"`
	// Names are the target's own words for what the reports count; nil for the neutral ones
	// (Nouns).
	Names         *Names         `yaml:"names"`
	Deploy        Deploy         `yaml:"deploy" target:"required"`
	Create        Create         `yaml:"create" target:"required"`
	Identity      Identity       `yaml:"identity" target:"required"`
	Response      Response       `yaml:"response" target:"required"`
	Errors        Errors         `yaml:"errors" target:"required"`
	Truth         Truth          `yaml:"truth" target:"required"`
	Observability *Observability `yaml:"observability"`
	// Traffic suits the suite's bursts to the service; nil keeps the suite's defaults.
	Traffic *Traffic `yaml:"traffic"`
	Modes   []Mode   `yaml:"modes" target:"required"`

	// file is the path the target was read from (its name when parsed from bytes), dir the
	// directory its relative paths start from, raw its bytes (Digest).
	file, dir string
	raw       []byte
	pos       map[string]pos
}

// Names are the target's own words for what the suite counts, which its reports (summary,
// report.html, results.json) read in: the entity a create makes once per key, its plural, and
// the credential a success carries. Only prose reads them; rule names, kinds of finding and JSON
// members stay the same for every target, so that programs read every target's reports alike.
type Names struct {
	// Entity is one entity, as in "every order got one"; "entity" when empty.
	Entity string `yaml:"entity" json:"entity,omitempty"`
	// Entities is its plural; Entity+"s" when empty, "entities" when both are.
	Entities string `yaml:"entities" json:"entities,omitempty"`
	// Credential is what a success carries for its entity (a token, the order itself);
	// "credential" when empty.
	Credential string `yaml:"credential" json:"credential,omitempty"`
}

// Nouns returns t's Names with the neutral words filled in where it gives none.
func (t *Target) Nouns() Names {
	if t.Names == nil {
		return Names{}.WithDefaults()
	}
	return t.Names.WithDefaults()
}

// WithDefaults returns n with the neutral words where it has none: entity, entities (or the
// entity's plural with an s), credential.
func (n Names) WithDefaults() Names {
	if n.Entities == "" {
		n.Entities = "entities"
		if n.Entity != "" {
			n.Entities = n.Entity + "s"
		}
	}
	if n.Entity == "" {
		n.Entity = "entity"
	}
	if n.Credential == "" {
		n.Credential = "credential"
	}
	return n
}

// AnEntity is n's entity after its indefinite article, "a customer" or "an order" (a vowel
// letter first: enough for the nouns a target names).
func (n Names) AnEntity() string {
	e := n.WithDefaults().Entity
	if strings.ContainsRune("aeiouAEIOU", rune(e[0])) {
		return "an " + e
	}
	return "a " + e
}

// Deploy says how to put the service on a cluster.
type Deploy struct {
	// Kustomize is the kustomize directory of the service, relative to the target file.
	Kustomize string   `yaml:"kustomize" target:"required"`
	Workload  Workload `yaml:"workload" target:"required"`
	Service   Service  `yaml:"service" target:"required"`
	Images    []Image  `yaml:"images" target:"required"`
	Database  Database `yaml:"database" target:"required"`
	Readiness Probe    `yaml:"readiness" target:"required"`
	// Secrets are the Secrets the suite generates per run, such as a signing key or the
	// tenants' API keys.
	Secrets []GeneratedSecret `yaml:"secrets"`
}

// GeneratedSecret is a Secret the suite writes per run, holding one key: a Secret of that name in
// the manifests (a placeholder) is replaced, and one is created where there is none.
type GeneratedSecret struct {
	Name string `yaml:"name" target:"required"`
	Key  string `yaml:"key" target:"required"`
	// Generate says what the key holds: ed25519-pem, an Ed25519 private key as PEM PKCS#8, whose
	// public half the suite keeps to verify the credentials with (response.verifier); or
	// tenant-keys, the tenants' API keys file, one line per tenant as create.auth.keys.line
	// writes it.
	Generate string `yaml:"generate" target:"required" enum:"ed25519-pem,tenant-keys"`
}

// Workload is the object running the service's pods.
type Workload struct {
	Kind      string `yaml:"kind" target:"required" enum:"Deployment,StatefulSet"`
	Name      string `yaml:"name" target:"required"`
	Container string `yaml:"container" target:"required"`
}

// Service is the Kubernetes Service the suite sends its requests to.
type Service struct {
	Name string `yaml:"name" target:"required"`
	Port int    `yaml:"port" target:"required"`
}

// Image is one image the manifests name, and for a bundled target how to build it offline.
type Image struct {
	// Name is the image as the manifests write it, without a tag (the suite sets the tag).
	Name  string `yaml:"name" target:"required"`
	Build *Build `yaml:"build"`
}

// Build is an offline build recipe: a script run with args, or a Dockerfile; paths relative to
// the target file.
type Build struct {
	Script     string   `yaml:"script"`
	Args       []string `yaml:"args"`
	Dockerfile string   `yaml:"dockerfile"`
}

// Database is where the service keeps its entities: exactly one of Bundled and Existing.
type Database struct {
	Bundled  *BundledDatabase  `yaml:"bundled"`
	Existing *ExistingDatabase `yaml:"existing"`
}

// BundledDatabase is the suite's PostgreSQL component: the suite generates the service's role,
// its password and a TLS CA per run and writes them into the Secrets named here.
type BundledDatabase struct {
	Role     string `yaml:"role" target:"required"`
	Database string `yaml:"database" target:"required"`
	// Secret receives the role's credentials under the keys named by the *Key fields.
	Secret      string `yaml:"secret" target:"required"`
	UserKey     string `yaml:"userKey" target:"required"`
	DatabaseKey string `yaml:"databaseKey" target:"required"`
	PasswordKey string `yaml:"passwordKey" target:"required"`
	// CASecret receives the CA (key ca.crt) that signed the server's certificate; empty for none.
	CASecret string `yaml:"caSecret"`
	// Endpoint is where the workload reads the database's host and port; without it the suite
	// cannot put a proxy in between, and the faults on the database path are skipped.
	Endpoint *Endpoint `yaml:"endpoint"`
}

// Endpoint names the ConfigMap entries holding the database's host and port: the suite writes
// them (the bundled PostgreSQL's Service, or toxiproxy's when a fault stands in between).
type Endpoint struct {
	ConfigMap string `yaml:"configMap" target:"required"`
	HostKey   string `yaml:"hostKey" target:"required"`
	PortKey   string `yaml:"portKey" target:"required"`
}

// ExistingDatabase is a database the team runs, reached through a Secret it provides.
type ExistingDatabase struct {
	Secret      string `yaml:"secret" target:"required"`
	URLKey      string `yaml:"urlKey" target:"required"`
	PasswordKey string `yaml:"passwordKey"`
}

// Probe is an HTTP path on the service's port that answers 200 once a pod is ready.
type Probe struct {
	Path string `yaml:"path" target:"required"`
}

// Create is the create request the suite sends, per key, in bursts.
type Create struct {
	Method string `yaml:"method" target:"required" enum:"POST,PUT,PATCH"`
	Path   string `yaml:"path" target:"required"`
	// Headers are sent with every request; values may hold placeholders.
	Headers map[string]string `yaml:"headers"`
	Auth    *Auth             `yaml:"auth"`
	// Body is the JSON object sent, one string member per entry; values may hold placeholders,
	// and a member whose value expands to "" is left out.
	Body map[string]string `yaml:"body" target:"required"`
}

// Auth is how a request proves its tenant: the suite generates one key per tenant and sends
// it as "Authorization: Bearer KEY" (bearer) or as the value of Header (header, such as
// X-Api-Key). Without auth no request carries a key, and the auth rule has nothing to judge.
type Auth struct {
	Scheme string `yaml:"scheme" target:"required" enum:"bearer,header"`
	Header string `yaml:"header"`
	// Keys is how a key is made and listed in the keys file (deploy.secrets, tenant-keys).
	Keys *KeyFormat `yaml:"keys"`
}

// KeyFormat is the service's API-key format: a key is Prefix and 32 random bytes in unpadded
// base64url, and the keys file holds Line per tenant, sorted by tenant, with {{tenant}}, {{key}}
// and {{sha256}} (the lowercase hex SHA-256 of the whole key) filled in.
type KeyFormat struct {
	Prefix string `yaml:"prefix"`
	Line   string `yaml:"line" target:"required"`
}

// Identity names which request field or header names one entity, and which names its tenant.
// A header left out of create.headers is sent carrying the placeholder alone: identity.key.header
// Idempotency-Key sends "Idempotency-Key: {{key}}".
type Identity struct {
	Key    Source `yaml:"key" target:"required"`
	Tenant Source `yaml:"tenant" target:"required"`
}

// Source is one member of the request body or one request header: exactly one is set.
type Source struct {
	Field  string `yaml:"field"`
	Header string `yaml:"header"`
}

// Response says where the answers of the create request keep what the checker reads.
type Response struct {
	// ID, Created and Credential are JSON pointers (RFC 6901) into a success's body: the
	// entity's id, its created flag (optional), and a credential that must be identical for one
	// key (optional).
	ID         string    `yaml:"id" target:"required"`
	Created    string    `yaml:"created"`
	Credential string    `yaml:"credential"`
	Verifier   *Verifier `yaml:"verifier"`
	Outcomes   Outcomes  `yaml:"outcomes" target:"required"`
}

// Verifier checks the credential: equal (the same string for one key) or jwt (also a JWT
// verified against the service's JWKS, its claims matched to the row and the request).
type Verifier struct {
	Type       string   `yaml:"type" target:"required" enum:"jwt,equal"`
	JWKSPath   string   `yaml:"jwksPath"`
	Algorithms []string `yaml:"algorithms" enum:"EdDSA,ES256,ES384,RS256,RS384,RS512,PS256"`
	// Claims maps a claim to "row.COLUMN" or "request.FIELD".
	Claims   map[string]string `yaml:"claims"`
	Audience *Setting          `yaml:"audience"`
	Issuer   *Setting          `yaml:"issuer"`
	// TTL is exp - iat.
	TTL *Setting `yaml:"ttl"`
}

// Setting is a value of the service's configuration: the environment variable that sets it
// and the value it has unless a mode sets the variable.
type Setting struct {
	Env     string `yaml:"env"`
	Default string `yaml:"default" target:"required"`
}

// Outcomes are the answers of a successful create, per outcome.
type Outcomes struct {
	// New answers the request that created the entity, Existing one for an entity that already
	// existed, Replayed one that repeats a request already answered (optional).
	New      Answer  `yaml:"new" target:"required"`
	Existing Answer  `yaml:"existing" target:"required"`
	Replayed *Answer `yaml:"replayed"`
}

// Answer is the status and media type of one outcome, and optionally its body's members and
// the headers it promises.
type Answer struct {
	Status      int    `yaml:"status" target:"required"`
	ContentType string `yaml:"contentType" target:"required"`
	// Members are the body's top-level members, all of them and nothing else, each "NAME" (a
	// string) or "NAME:TYPE" (Member types); none listed leaves the members unjudged.
	Members []string `yaml:"members"`
	// Headers are promises about response headers (HeaderPromises): Cache-Control a directive it
	// must hold, WWW-Authenticate the scheme it must challenge with.
	Headers map[string]string `yaml:"headers"`
}

// Errors are the clean errors of the create request.
type Errors struct {
	// CodePointer is the JSON pointer to an error body's code.
	CodePointer string `yaml:"codePointer" target:"required"`
	// ContentType is the media type of every error body; empty leaves it unjudged.
	ContentType string `yaml:"contentType"`
	// Members are the members of an error body unless its answer lists its own (Answer.Members).
	Members []string      `yaml:"members"`
	Answers []ErrorAnswer `yaml:"answers" target:"required"`
}

// ErrorAnswer is one clean error: its status and code, the class the checker judges it by, and
// whether it must carry Retry-After.
type ErrorAnswer struct {
	Status     int    `yaml:"status" target:"required"`
	Code       string `yaml:"code" target:"required"`
	Class      string `yaml:"class" target:"required" enum:"in-progress,conflict,unavailable,overloaded,invalid,unauthenticated,forbidden,internal"`
	RetryAfter bool   `yaml:"retryAfter" target:"required"`
	// Members replace Errors.Members for this code; Headers are promises as Answer.Headers'.
	Members []string          `yaml:"members"`
	Headers map[string]string `yaml:"headers"`
	// Clean false documents an answer's shape that is nonetheless never a clean answer to a
	// valid request (a bug wherever it comes, as an internal error); default true. Errors of
	// class invalid, unauthenticated and forbidden are never clean answers to a valid request.
	Clean *bool `yaml:"clean"`
}

// Truth is how the suite reads the database, the ground truth: Query returns one row per
// entity, for the tenants given as $1 (a text array).
type Truth struct {
	Query   string  `yaml:"query" target:"required"`
	Columns Columns `yaml:"columns" target:"required"`
}

// Columns names the result columns of the truth query.
type Columns struct {
	ID        string `yaml:"id" target:"required"`
	Key       string `yaml:"key" target:"required"`
	Tenant    string `yaml:"tenant" target:"required"`
	CreatedAt string `yaml:"createdAt" target:"required"`
	// Agree maps a request body field to the column the row must hold it in.
	Agree map[string]string `yaml:"agree"`
}

// Observability is what the service tells about itself; each part is optional and the
// verdict says what it fell back to without it.
type Observability struct {
	// PodHeader names the pod that served an answer.
	PodHeader string `yaml:"podHeader"`
	// HandlerIntervalHeader carries the handler's interval (Server-Timing, metric "handler").
	HandlerIntervalHeader string          `yaml:"handlerIntervalHeader"`
	OutcomeCounter        *OutcomeCounter `yaml:"outcomeCounter"`
	Metrics               *Metrics        `yaml:"metrics"`
	// SyncCommitLog is the line each replica logs naming the synchronous_commit its own
	// database sessions run with. Without it the suite reads the setting a new session of the
	// target's role gets, which misses a setting the service makes per connection.
	SyncCommitLog *LogLine `yaml:"syncCommitLog"`
}

// Traffic suits the suite's bursts to the service.
type Traffic struct {
	// Gap separates two entities' bursts, a Go duration such as "50ms" (default 100ms;
	// -e2e.gap overrides it). Each burst's requests leave at once whatever the gap; the gap must
	// be long enough that the pods have answered one burst before the next leaves, or the next
	// queues behind it and its requests no longer run at once (the coverage guard then calls
	// the run inconclusive).
	Gap string `yaml:"gap"`
}

// MaxGap bounds Traffic.Gap: 40 entities at 10 s apart already take 7 minutes.
const MaxGap = 10 * time.Second

// Gap is Traffic.Gap, or 0 when the file gives none.
func (t *Target) Gap() time.Duration {
	if t.Traffic == nil || t.Traffic.Gap == "" {
		return 0
	}
	d, _ := time.ParseDuration(t.Traffic.Gap) // validated
	return d
}

// LogLine is a JSON log line of the workload's container: the last line whose members equal
// Match, and its member Field.
type LogLine struct {
	Match map[string]string `yaml:"match" target:"required"`
	Field string            `yaml:"field" target:"required"`
}

// OutcomeCounter is the Prometheus counter counting each create request once by outcome.
type OutcomeCounter struct {
	Name         string   `yaml:"name" target:"required"`
	Labels       []string `yaml:"labels" target:"required"`
	OutcomeLabel string   `yaml:"outcomeLabel" target:"required"`
	// Values maps what the client saw to the outcome label's value the pod must have counted
	// for it; without them the counter is not compared with the answers.
	Values *OutcomeValues `yaml:"values"`
}

// OutcomeValues are the outcome label's values: one per success outcome, one per error code
// (Errors, by code), and InvalidInput for any other 4xx code.
type OutcomeValues struct {
	New      string `yaml:"new" target:"required"`
	Existing string `yaml:"existing" target:"required"`
	Replayed string `yaml:"replayed"`
	// NoID is counted for a success whose body names no entity (an empty id).
	NoID         string            `yaml:"noId"`
	Errors       map[string]string `yaml:"errors"`
	InvalidInput string            `yaml:"invalidInput"`
}

// Metrics is where the pods serve Prometheus metrics.
type Metrics struct {
	Path string `yaml:"path" target:"required"`
	Port int    `yaml:"port" target:"required"`
}

// Mode is one named configuration of the service: what it sets, what it promises, and for a
// known-broken mode what a canary must find.
type Mode struct {
	Name string `yaml:"name" target:"required"`
	// Env sets environment variables of the workload's container; ConfigMap merges entries
	// into a ConfigMap of the manifests. At most one of them.
	Env       map[string]string `yaml:"env"`
	ConfigMap *ConfigMapOverlay `yaml:"configMap"`
	Contract  Contract          `yaml:"contract" target:"required"`
	Canary    *Canary           `yaml:"canary"`
}

// ConfigMapOverlay merges Data into the ConfigMap Name.
type ConfigMapOverlay struct {
	Name string            `yaml:"name" target:"required"`
	Data map[string]string `yaml:"data" target:"required"`
}

// Contract is what a mode promises beyond the rules every target shares.
type Contract struct {
	// ExactlyOnce promises one entity per key.
	ExactlyOnce bool `yaml:"exactlyOnce" target:"required"`
	// FaultOnly are the error classes answered only while a fault is on (never outside one);
	// RivalOnly only to a request that overlapped another of the same key; Always at any time.
	// A class in none of them is never a clean answer of the mode to a valid request.
	FaultOnly []string `yaml:"faultOnly" enum:"in-progress,conflict,unavailable,overloaded,invalid,unauthenticated,forbidden,internal"`
	RivalOnly []string `yaml:"rivalOnly" enum:"in-progress,conflict,unavailable,overloaded,invalid,unauthenticated,forbidden,internal"`
	Always    []string `yaml:"always" enum:"in-progress,conflict,unavailable,overloaded,invalid,unauthenticated,forbidden,internal"`
	// Promise names, in findings, what an error no line allows breaks, and says it for reports;
	// without it the checker names it from the mode.
	Promise *LineName `yaml:"promise"`
	// Lines name the lines of the answers the mode may give, by error code; an answer left out
	// is named from its code and when the mode may give it (such as unavailable-during-fault).
	Lines []CodeLineName `yaml:"lines"`
}

// LineName is how findings name one promise of a mode (ID) and how reports say it (Doc).
type LineName struct {
	ID  string `yaml:"id" target:"required"`
	Doc string `yaml:"doc" target:"required"`
}

// CodeLineName names the line of the answers with Code, an error code of a class the mode lists;
// an ID or a Doc left out is derived.
type CodeLineName struct {
	Code string `yaml:"code" target:"required"`
	ID   string `yaml:"id"`
	Doc  string `yaml:"doc"`
}

// Canary marks a known-broken mode: a run of it must produce a finding of one of Findings, the
// kinds of finding the checker names (e2e/check Kind), and none of Never: what was established
// of the mode's bug (return-existing duplicates customers but never signs an empty subject), so
// that a canary failing for another reason than its own bug is told apart.
type Canary struct {
	Findings []string `yaml:"findings" target:"required" enum:"duplicate-rows,lost-registration,invalid-credential,empty-subject,lost-write,credential-mismatch,two-credentials,dirty-error,contract-breach,created-breach,no-final-credential,metrics-disagree,auth-breach,shape-breach,unknown-kid,jwks-unusable,jwks-differ,jwks-wrong-key,no-answer,restart,shared-identity,stray-row,row-mismatch"`
	Never    []string `yaml:"never" enum:"duplicate-rows,lost-registration,invalid-credential,empty-subject,lost-write,credential-mismatch,two-credentials,dirty-error,contract-breach,created-breach,no-final-credential,metrics-disagree,auth-breach,shape-breach,unknown-kid,jwks-unusable,jwks-differ,jwks-wrong-key,no-answer,restart,shared-identity,stray-row,row-mismatch"`
}
