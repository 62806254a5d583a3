package check

import (
	"fmt"
	"slices"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// Kind names a fact the checker found about one customer. Detection and specs read kinds,
// never the prose of Details, so that rewording a detail cannot change a verdict.
type Kind string

// The kinds of finding, with the rule each one breaks.
const (
	// KindDuplicateRows: two or more rows for one customer (RuleOneRow).
	KindDuplicateRows Kind = "duplicate-rows"
	// KindLostRegistration: a 2xx but no row (RuleOneRow).
	KindLostRegistration Kind = "lost-registration"
	// KindInvalidToken: a 2xx whose token does not verify, or no token (RuleValidToken).
	KindInvalidToken Kind = "invalid-credential"
	// KindEmptySubject: a 2xx whose verified token names nobody, the seed's bug
	// (RuleTokenMatchesRow).
	KindEmptySubject Kind = "empty-subject"
	// KindLostWrite: a consistent, verified 2xx names a customer row (its entity id and its
	// token's subject) that the database does not have, while the customer has another: the
	// acknowledged registration was lost and a later one created the customer again
	// (RuleTokenMatchesRow). With no row at all the customer has KindLostRegistration.
	KindLostWrite Kind = "lost-write"
	// KindTokenMismatch: a verified token that disagrees with its request or row
	// (RuleTokenMatchesRow).
	KindTokenMismatch Kind = "credential-mismatch"
	// KindTwoTokens: the customer's 2xx answers carry different tokens (RuleOneToken).
	KindTwoTokens Kind = "two-credentials"
	// KindDirtyError: a non-2xx that is not a clean error of the API (RuleCleanError).
	KindDirtyError Kind = "dirty-error"
	// KindContractBreach: a clean error the strategy's contract does not allow then
	// (RuleContract); Finding.Line names the contract line.
	KindContractBreach Kind = "contract-breach"
	// KindCreatedBreach: a created flag that lies (RuleCreated); Finding.Line names the clause.
	KindCreatedBreach Kind = "created-breach"
	// KindNoFinalToken: the customer ends without a valid token (RuleFinalToken).
	KindNoFinalToken Kind = "no-final-credential"
	// KindMetricsDisagree: the pods' counters disagree with the answers (RuleMetrics); about the
	// run, not one customer.
	KindMetricsDisagree Kind = "metrics-disagree"
	// KindAuthBreach: an answer to a key, or a row, that RuleAuth forbids; Finding.Line names
	// the clause (AuthForeignForbidden, ...).
	KindAuthBreach Kind = "auth-breach"
	// KindShapeBreach: an answer whose status, Content-Type, body members or headers are not the
	// ones the API promises for its outcome (RuleAPIShape); Finding.Line names the promise broken
	// (ShapeStatus, ...), Finding.Detail what was promised and what came.
	KindShapeBreach Kind = "shape-breach"
	// KindUnknownKid: a 2xx whose token's header has no kid, or a kid that names no key of the
	// published JWKS: no client can select a key to verify it (RuleValidToken); Finding.Line is
	// KidMissing or KidUnknown.
	KindUnknownKid Kind = "unknown-kid"
	// KindJWKSUnusable: a fetch of the JWKS got no 200, or a key set that does not parse, or a key
	// that is not OKP/Ed25519, has no kid or shares one (RuleJWKS); about the run, not one
	// customer. Finding.Line names the clause (JWKSUnanswered, ...).
	KindJWKSUnusable Kind = "jwks-unusable"
	// KindJWKSDiffer: two fetches of the JWKS (through the Service, from each pod) publish
	// different keys (RuleJWKS).
	KindJWKSDiffer Kind = "jwks-differ"
	// KindJWKSWrongKey: the JWKS does not publish the key the service was configured with
	// (RuleJWKS).
	KindJWKSWrongKey Kind = "jwks-wrong-key"
	// KindNoAnswer: a request that got no complete answer (a transport error, reset, EOF or the
	// client's timeout) while no fault excused it (RuleContract, line ContractAnswerArrives).
	KindNoAnswer Kind = "no-answer"
	// KindRestart: a token-service container restarted, or a pod was replaced, added or
	// removed, while no fault excused it (RuleContract, line ContractNoRestart); about the
	// run, not one customer.
	KindRestart Kind = "restart"
	// KindSharedIdentity: two customers answered with one customer id, subject or token
	// (RuleTenants); Finding.Line names what they share (TenantsCustomerID, ...).
	KindSharedIdentity Kind = "shared-identity"
	// KindStrayRow: a row of a judged tenant that no planned customer accounts for (RuleRows);
	// its violation names the row's key with customer index -1.
	KindStrayRow Kind = "stray-row"
	// KindRowMismatch: a customer's row holds in a column something other than what its
	// requests sent (RuleRows); Finding.Line names the column (email, name).
	KindRowMismatch Kind = "row-mismatch"
)

// The clauses of RuleCreated, as Finding.Line names them.
const (
	CreatedFlagMissing      = "created-flag"
	CreatedAtMostOne        = "at-most-one-created"
	CreatedExactlyOne       = "exactly-one-created"
	CreatedIsTheRow         = "created-is-the-row"
	CreatedNotWhenExisting  = "existing-not-created"
	CreatedNotAfterRegister = "not-created-after-registration"
)

// Finding is one fact behind a Violation: its kind, the request it is about (empty for a fact
// about the customer's rows or all its requests), the contract line, created or auth clause broken
// when there is one, and the same in prose.
type Finding struct {
	Kind    Kind   `json:"kind"`
	Request string `json:"request,omitempty"`
	Line    string `json:"line,omitempty"`
	Detail  string `json:"detail"`
}

// HasKind reports whether v has a finding of one of kinds.
func (v Violation) HasKind(kinds ...Kind) bool {
	return slices.ContainsFunc(v.Findings, func(f Finding) bool { return slices.Contains(kinds, f.Kind) })
}

// KnownBug is how the checker catches a strategy known to be broken: a customer shows the bug
// when it has a finding of one of Kinds.
type KnownBug struct {
	Strategy string `json:"strategy"`
	Bug      string `json:"bug"`
	Kinds    []Kind `json:"kinds"`
}

// KnownBugs are the bugs the broken modes of the bundled token service (legacy and
// return-existing, its target file's canaries) and the broken database setting (AsyncCommit) are
// known for (service/README.md): the one table the registration specs, the chaos canaries and
// the report read.
var KnownBugs = []KnownBug{
	{Strategy: "legacy", Bug: "null subject", Kinds: []Kind{KindEmptySubject}},
	{Strategy: "return-existing", Bug: "duplicate", Kinds: []Kind{KindDuplicateRows, KindTwoTokens}},
	{Strategy: AsyncCommit, Bug: "lost acknowledged registration", Kinds: []Kind{KindLostWrite, KindLostRegistration}},
}

// AsyncCommit names, in KnownBugs, the atomic strategy on a PostgreSQL that acknowledges commits
// before they are durable (synchronous_commit=off): a crash loses acknowledged registrations.
const AsyncCommit = "atomic/synchronous_commit=off"

// KnownBugOf returns the known bug of strategy; false for a strategy without one.
func KnownBugOf(strategy string) (KnownBug, bool) {
	i := slices.IndexFunc(KnownBugs, func(b KnownBug) bool { return b.Strategy == strategy })
	if i < 0 {
		return KnownBug{}, false
	}
	return KnownBugs[i], true
}

// Detection is how often a known-broken strategy was caught: of the customers (each one
// burst), how many showed its known bug.
type Detection struct {
	Customers int `json:"customers"`
	Caught    int `json:"caught"`
}

// Rate is the per-burst detection rate.
func (d Detection) Rate() float64 {
	if d.Customers == 0 {
		return 0
	}
	return float64(d.Caught) / float64(d.Customers)
}

// String gives the figures in one line.
func (d Detection) String() string {
	return fmt.Sprintf("%.1f%% of bursts (%d of %d customers)", 100*d.Rate(), d.Caught, d.Customers)
}

// DetectAny counts the customers of r with at least one violation of any rule: whether the
// checker caught a strategy at all, whatever its bug looked like.
func DetectAny(r Result) Detection {
	caught := map[history.Key]bool{}
	for _, v := range r.Violations {
		caught[v.Customer.Key()] = true
	}
	return Detection{Customers: r.Customers, Caught: len(caught)}
}

// Detect counts the customers of r that show the known bug of strategy (none for a strategy
// without one).
func Detect(strategy string, r Result) Detection {
	bug, ok := KnownBugOf(strategy)
	if !ok {
		return Detection{Customers: r.Customers}
	}
	return DetectKinds(r, bug.Kinds...)
}
