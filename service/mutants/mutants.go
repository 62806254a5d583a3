// Package mutants is the catalog of the token service's self-test variants: deliberately
// broken builds of tokensvc that the e2e suite must catch (`make selftest`).
//
// A mutant exists only in a binary built with the build tag "selftest" (the image
// tokensvc-selftest); the environment variable TOKENSVC_MUTANT picks one at start, on top of
// the atomic create strategy. Production builds contain none of them, and nothing in the
// service imports this package: it is data, for the e2e side to enumerate the variants, learn
// which scenario exposes each and which e2e/check rules it should break.
//
// The hooks themselves are in service/internal/mutant; a test there keeps the two in step.
package mutants

// EnvVar is the environment variable that selects the mutant in a self-test build. Empty
// means none: the self-test build then behaves exactly as production. An unknown name, or a
// mutant with a create strategy other than Strategy, stops the service at start with a
// one-line error.
const EnvVar = "TOKENSVC_MUTANT"

// BuildTag is the Go build tag that compiles the mutants in.
const BuildTag = "selftest"

// Strategy is the TOKENSVC_CREATE_STRATEGY every mutant is layered on; a self-test build
// refuses to start a mutant with any other.
const Strategy = "atomic"

// Scenario is the e2e traffic that exposes a mutant.
type Scenario string

// The scenarios.
const (
	// ScenarioBurst: simultaneous first registrations of new customers across replicas,
	// then the database rows; what every atomic run already does.
	ScenarioBurst Scenario = "burst"
	// ScenarioExisting: a burst on customers registered at least one second earlier (a
	// second burst on the customers of a first one), so that signing happens in a later
	// second than the row's creation.
	ScenarioExisting Scenario = "existing"
	// ScenarioDBCrash: registrations acknowledged, then the whole PostgreSQL container
	// SIGKILLed (its shared memory goes with it) and restarted, then the rows compared with
	// the acknowledgements. A clean shutdown, or killing one process, flushes the WAL and
	// hides the defect.
	ScenarioDBCrash Scenario = "db-crash"
	// ScenarioForeignKeys: a burst in which half the customers send every other request with
	// another merchant's API key, so that refused and served requests of one customer race on
	// several pods at once. A scenario without foreign keys never asks the service to refuse
	// one.
	ScenarioForeignKeys Scenario = "foreign-keys"
	// issue 18, faults
	// ScenarioScale: rounds of bursts while the Deployment scales up and back down (the chaos
	// fault scale), so that traffic reaches replicas as soon as they report ready. A scale
	// excuses no error: the service drains.
	ScenarioScale Scenario = "scale"
)

// The mutant names, the values of EnvVar.
const (
	LoserEmptySubject  = "loser-empty-subject"
	LoserConflict      = "loser-conflict"
	LoserUnavailable   = "loser-unavailable"
	CreatedAlways      = "created-always"
	CreatedNever       = "created-never"
	IatNow             = "iat-now"
	IatRounded         = "iat-rounded"
	ForeignKey         = "foreign-key"
	WrongIssuer        = "wrong-issuer"
	SubExternalID      = "sub-external-id"
	SharedLastCustomer = "shared-last-customer"
	NoUniqueIndex      = "no-unique-index"
	AckUncommitted     = "ack-uncommitted"
	AsyncCommit        = "async-commit"
	AnyMerchantKey     = "any-merchant-key"
	UncountedExisting  = "uncounted-existing"
	// issue 18, answer shape
	Created201         = "created-201"
	SniffedContentType = "sniffed-content-type"
	TerseErrors        = "terse-errors"
	Bare401            = "bare-401"
	// issue 18, jwks
	UnknownKid  = "unknown-kid"
	ReplicaJWKS = "replica-jwks"
	NoKid       = "no-kid"
	// issue 18, answers that never arrive
	LoserDropsConnection = "loser-drops-connection"
	LoserExits           = "loser-exits"
	// issue 18, auth surface and colliding tenants
	TenantBlindLookup   = "tenant-blind-lookup"
	UnknownKeyForbidden = "unknown-key-forbidden"
	// issue 18, faults
	ReadyBeforePool     = "ready-before-pool"
	ConflictWithoutRace = "conflict-without-race"

	// issue 18, clocks and coverage
	NoServerTiming    = "no-server-timing"
	ServerTimingEarly = "server-timing-early"
	// issue 18, rows
	StrayRow      = "stray-row"
	TruncatedName = "truncated-name"
)

// Mutant is one deliberately broken variant of the service.
type Mutant struct {
	// Name is the EnvVar value.
	Name string
	// Doc is the defect, in one line.
	Doc string
	// Scenario is the e2e traffic that exposes it.
	Scenario Scenario
	// Rules are the e2e/check rules (check.Rule values) a run of Scenario breaks, the
	// most direct first; any one of them kills the mutant.
	Rules []string
	// Inconclusive marks a defect that breaks no rule but takes away what the suite needs to
	// prove that the race ran (its Rules are empty): every run of Scenario must be judged
	// inconclusive, never pass.
	Inconclusive bool
	// Silent marks the mutants under which every answer is a 200 carrying a well-formed
	// token with a valid Ed25519 signature: no status code or error body gives them away,
	// only checking the token against the published key, the request (its key too), the
	// other answers, the database rows or the pods' counters does.
	Silent bool
}

// All lists every mutant, in report order.
var All = []Mutant{
	{Name: LoserEmptySubject, Scenario: ScenarioBurst, Rules: []string{"contract"},
		Doc: "atomic's loser fails to read the winner's row (nil); the handler's guard answers 500 empty_subject"},
	{Name: LoserConflict, Scenario: ScenarioBurst, Rules: []string{"contract"},
		Doc: "atomic's loser answers 409 conflict with Retry-After: fail-fast's behaviour under atomic's promise of 200"},
	{Name: LoserUnavailable, Scenario: ScenarioBurst, Rules: []string{"contract"},
		Doc: "atomic's loser takes its empty INSERT ... RETURNING for a failed statement and answers 503 unavailable with Retry-After, no fault on"},
	{Name: CreatedAlways, Scenario: ScenarioBurst, Rules: []string{"created"}, Silent: true,
		Doc: "every 200 says created:true, the losers' and an existing customer's too"},
	{Name: CreatedNever, Scenario: ScenarioBurst, Rules: []string{"created"}, Silent: true,
		Doc: "every 200 says created:false, the winner's too"},
	{Name: IatNow, Scenario: ScenarioExisting, Rules: []string{"matches-row", "one-credential"}, Silent: true,
		Doc: "iat is the signing time instead of the row's created_at (differs once signing happens in a later second)"},
	{Name: IatRounded, Scenario: ScenarioBurst, Rules: []string{"matches-row"}, Silent: true,
		Doc: "iat is created_at rounded to the nearest second instead of truncated (one second late for about half the customers)"},
	{Name: ForeignKey, Scenario: ScenarioBurst, Rules: []string{"valid-credential"}, Silent: true,
		Doc: "tokens are signed with an Ed25519 key generated at start while the JWKS publishes the configured key"},
	{Name: WrongIssuer, Scenario: ScenarioBurst, Rules: []string{"valid-credential"}, Silent: true,
		Doc: `the iss claim is "tokensvc-staging" instead of the configured issuer`},
	{Name: SubExternalID, Scenario: ScenarioBurst, Rules: []string{"matches-row"}, Silent: true,
		Doc: "sub is the customer's external_id instead of the row's id (customer_id in the body stays right)"},
	{Name: SharedLastCustomer, Scenario: ScenarioBurst, Rules: []string{"matches-row", "one-credential"}, Silent: true,
		Doc: "a loser of the insert race signs for the customer its process created last (a cache written without a key), not the winner's row"},
	{Name: NoUniqueIndex, Scenario: ScenarioBurst, Rules: []string{"one-row", "one-credential", "created"}, Silent: true,
		Doc: "atomic without the unique index: find, then a plain insert; simultaneous first registrations create duplicate rows (needs a fresh database)"},
	{Name: AckUncommitted, Scenario: ScenarioBurst, Rules: []string{"one-row", "one-credential", "created"}, Silent: true,
		Doc: "the insert runs in a transaction that is never committed (rolled back after the answer): the acknowledged row does not exist"},
	{Name: AsyncCommit, Scenario: ScenarioDBCrash, Rules: []string{"matches-row", "one-row", "one-credential"}, Silent: true,
		Doc: "every connection runs with synchronous_commit=off: commits are acknowledged before they are durable; only a PostgreSQL crash shows it"},
	{Name: AnyMerchantKey, Scenario: ScenarioForeignKeys, Rules: []string{"auth"}, Silent: true,
		Doc: "authorization skipped: any valid API key acts for any merchant (no 403), so another merchant's key registers that merchant's customer or gets its token"},
	{Name: UncountedExisting, Scenario: ScenarioBurst, Rules: []string{"metrics"}, Silent: true,
		Doc: "an existing customer's 200 (a repeat, or a lost insert race) is answered right but never counted in tokensvc_registrations_total"},
	// issue 18, answer shape
	{Name: Created201, Scenario: ScenarioBurst, Rules: []string{"api-shape"},
		Doc: "the answer that created the customer is 201 Created, not the documented 200 (REST habit); body and token are right"},
	{Name: SniffedContentType, Scenario: ScenarioBurst, Rules: []string{"api-shape"},
		Doc: "the token answer is written without Content-Type, so net/http sniffs it as text/plain; charset=utf-8; body and token are right"},
	{Name: TerseErrors, Scenario: ScenarioForeignKeys, Rules: []string{"api-shape"},
		Doc: `error answers carry only {"error": "<code>"}, without the documented message; status and code are right`},
	{Name: Bare401, Scenario: ScenarioForeignKeys, Rules: []string{"api-shape"},
		Doc: "a 401 carries no WWW-Authenticate challenge; status and body are right"},
	// issue 18, jwks
	{Name: UnknownKid, Scenario: ScenarioBurst, Rules: []string{"valid-credential", "final-credential"}, Silent: true,
		Doc: `tokens are signed with the configured key but their header's kid names a key the JWKS never publishes (the kid plus "-next", a rotation begun halfway)`},
	{Name: ReplicaJWKS, Scenario: ScenarioBurst, Rules: []string{"verifier-keys"}, Silent: true,
		Doc: "each replica's JWKS publishes, besides the configured key, a stray key of its own generated at start: the replicas' key sets differ, though every token verifies"},
	{Name: NoKid, Scenario: ScenarioBurst, Rules: []string{"verifier-keys", "valid-credential"}, Silent: true,
		Doc: "neither the tokens' header nor the JWKS carries a kid: a client has no key id to select a key by"},
	// issue 18, answers that never arrive
	{Name: LoserDropsConnection, Scenario: ScenarioBurst, Rules: []string{"contract"},
		Doc: "atomic's loser of the insert race gets no answer: its connection is hijacked and closed without a byte (the client sees an EOF)"},
	{Name: LoserExits, Scenario: ScenarioBurst, Rules: []string{"contract"},
		Doc: "atomic's loser of the insert race exits the process (os.Exit(1)): every request in flight on that replica goes unanswered and its container restarts"},
	// issue 18, auth surface and colliding tenants
	{Name: TenantBlindLookup, Scenario: ScenarioBurst, Rules: []string{"tenants", "one-row", "matches-row"}, Silent: true,
		Doc: "the customer lookup matches external_id alone: a second merchant's customer under the same external id is answered with the first merchant's row and token, and never gets a row"},
	{Name: UnknownKeyForbidden, Scenario: ScenarioBurst, Rules: []string{"auth"},
		Doc: "a key that names no merchant passes authentication as nobody's and is refused by authorization: 403 forbidden without WWW-Authenticate instead of 401 unauthenticated"},
	// issue 18, faults
	{Name: ReadyBeforePool, Scenario: ScenarioScale, Rules: []string{"contract"},
		Doc: "a replica reports ready before its database pool works: for its first 20 s every registration is answered 503 unavailable with Retry-After, no database fault on"},
	{Name: ConflictWithoutRace, Scenario: ScenarioBurst, Rules: []string{"contract"},
		Doc: "half the registrations of a customer that does not exist yet, picked at random, are answered 409 conflict with Retry-After though no other request is creating it"},

	// issue 18, clocks and coverage
	{Name: NoServerTiming, Scenario: ScenarioBurst, Inconclusive: true, Silent: true,
		Doc: "answers carry no Server-Timing handler interval: nothing shows that two handlers ran at once, so coverage cannot be claimed"},
	{Name: ServerTimingEarly, Scenario: ScenarioBurst, Inconclusive: true, Silent: true,
		Doc: "the Server-Timing handler interval starts one second before the request arrived: an interval that is not the handler's, which would fake overlaps"},
	// issue 18, rows
	{Name: StrayRow, Scenario: ScenarioBurst, Rules: []string{"rows"}, Silent: true,
		Doc: "the winner of the insert race also writes a second row of the same merchant under external id <external_id>-shadow, which no request asked for"},
	{Name: TruncatedName, Scenario: ScenarioBurst, Rules: []string{"rows"}, Silent: true,
		Doc: "the name column keeps only the first 8 bytes of the name sent (a column narrowed by a migration, written without an error)"},
}

// Names returns the name of every mutant, in the order of All.
func Names() []string {
	names := make([]string, len(All))
	for i, m := range All {
		names[i] = m.Name
	}
	return names
}

// Lookup returns the mutant called name.
func Lookup(name string) (Mutant, bool) {
	for _, m := range All {
		if m.Name == name {
			return m, true
		}
	}
	return Mutant{}, false
}
