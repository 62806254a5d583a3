// Package mutant holds the hooks of the self-test build: deliberately broken variants of the
// service (see service/mutants for the catalog and service/README.md, "Self-test builds").
//
// Built with the tag "selftest", TOKENSVC_MUTANT picks at most one mutant at start and Is
// reports it. Built without it (production), Enabled is false and every hook is a constant
// no-op that the compiler folds away together with the branch it guards, so the production
// binary contains no mutant: not the code, not the names, not the variable's name. The hooks
// identify mutants by ID, a number, for that reason; the names exist in the self-test build
// only. TestProductionBinaryHasNoMutants checks both builds.
package mutant

// ID identifies one mutant in the code that implements it.
type ID int32

// The mutants, in the order of service/mutants.All; the comment is the catalog name.
const (
	none               ID = iota
	LoserEmptySubject     // loser-empty-subject
	LoserConflict         // loser-conflict
	LoserUnavailable      // loser-unavailable
	CreatedAlways         // created-always
	CreatedNever          // created-never
	IatNow                // iat-now
	IatRounded            // iat-rounded
	ForeignKey            // foreign-key
	WrongIssuer           // wrong-issuer
	SubExternalID         // sub-external-id
	SharedLastCustomer    // shared-last-customer
	NoUniqueIndex         // no-unique-index
	AckUncommitted        // ack-uncommitted
	AsyncCommit           // async-commit
	AnyMerchantKey        // any-merchant-key
	UncountedExisting     // uncounted-existing
	// issue 18, answer shape
	Created201         // created-201
	SniffedContentType // sniffed-content-type
	TerseErrors        // terse-errors
	Bare401            // bare-401
	// issue 18, jwks
	UnknownKid  // unknown-kid
	ReplicaJWKS // replica-jwks
	NoKid       // no-kid
	// issue 18, answers that never arrive
	LoserDropsConnection // loser-drops-connection
	LoserExits           // loser-exits
	// issue 18, auth surface and colliding tenants
	TenantBlindLookup   // tenant-blind-lookup
	UnknownKeyForbidden // unknown-key-forbidden
	// issue 18, faults
	ReadyBeforePool     // ready-before-pool
	ConflictWithoutRace // conflict-without-race

	// issue 18, clocks and coverage
	NoServerTiming    // no-server-timing
	ServerTimingEarly // server-timing-early
	// issue 18, rows
	StrayRow      // stray-row
	TruncatedName // truncated-name
)
