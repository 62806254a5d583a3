// Package check judges a recorded stampede run. Its functions are pure: they
// read a history and the database rows the caller fetched, and return a Result;
// they never do I/O and never assert.
package check

import (
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// Rule names one invariant of a registration.
type Rule string

// The rules, in the order they are reported.
const (
	// RuleOneRow: the database holds exactly one row per customer key (no row
	// after a 2xx is a lost registration; two or more are duplicates).
	RuleOneRow Rule = "one-row"
	// RuleValidToken: every 2xx carries a token signed with the suite's key
	// (EdDSA only) by the expected issuer.
	RuleValidToken Rule = "valid-token"
	// RuleTokenMatchesRow: the token's sub is non-empty and is the row id, mid
	// and ext are the request's, iat is the row's creation time, and the
	// response's customer_id is the sub.
	RuleTokenMatchesRow Rule = "token-matches-row"
	// RuleOneToken: all 2xx responses of a customer carry the same token.
	RuleOneToken Rule = "one-token"
	// RuleCleanError: every non-2xx response is a JSON error with an expected
	// status and code.
	RuleCleanError Rule = "clean-error"
	// RuleFinalToken: the customer ends with a valid token after retries.
	RuleFinalToken Rule = "final-token"
)

// Rules lists every Rule in report order.
var Rules = []Rule{RuleOneRow, RuleValidToken, RuleTokenMatchesRow, RuleOneToken, RuleCleanError, RuleFinalToken}

// Row is one row of the customers table, as the caller read it.
type Row struct {
	ID         string    `json:"id"`
	MerchantID string    `json:"merchant_id"`
	ExternalID string    `json:"external_id"`
	CreatedAt  time.Time `json:"created_at"`
}

// ExpectedError is a non-2xx response that a correct service may give. An
// empty Code accepts any error code with that status.
type ExpectedError struct {
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
}

// DefaultExpectedErrors are the clean errors of the API contract: the
// fail-fast loser's 409, 503 while the database is down or a pod drains, and
// the 500 of a service that refused to sign an empty subject.
var DefaultExpectedErrors = []ExpectedError{
	{Status: 409, Code: "conflict"},
	{Status: 503, Code: "unavailable"},
	{Status: 500, Code: "empty_subject"},
}

// Params configure Check.
type Params struct {
	// PublicKey verifies the tokens; required.
	PublicKey ed25519.PublicKey
	// Issuer is the expected iss claim; required.
	Issuer string
	// ExpectedErrors are the clean errors (DefaultExpectedErrors if empty).
	ExpectedErrors []ExpectedError
	// Customers are the planned customers. Those absent from the history are
	// checked too (and break RuleFinalToken); customers in the history are
	// always checked.
	Customers []history.Customer
	// Coverage decides when a run exercised the race.
	Coverage CoverageParams
}

// Verdict is the outcome of Check.
type Verdict string

// The verdicts.
const (
	VerdictPass Verdict = "pass"
	// VerdictFail means at least one violation; it wins over inconclusive, as
	// a violation found is real whatever the coverage.
	VerdictFail Verdict = "fail"
	// VerdictInconclusive means no violation, but too few bursts reached two
	// pods at once for the absence of violations to mean anything.
	VerdictInconclusive Verdict = "inconclusive"
)

// Errors returned by Result.Err, to test with errors.Is.
var (
	ErrViolations   = errors.New("invariants violated")
	ErrInconclusive = errors.New("inconclusive: race not exercised")
)

// Request identifies one Op in a Violation.
type Request struct {
	ID      string        `json:"id"`
	Seq     int           `json:"seq"`
	Attempt int           `json:"attempt"`
	Phase   history.Phase `json:"phase"`
	Call    time.Duration `json:"call_ns"`
	Return  time.Duration `json:"return_ns"`
	Status  int           `json:"status"`
	Pod     string        `json:"pod,omitempty"`
	Error   string        `json:"error,omitempty"`
}

func requestOf(op history.Op) Request {
	return Request{ID: op.ID(), Seq: op.Seq, Attempt: op.Attempt, Phase: op.Phase, Call: op.Call,
		Return: op.Return, Status: op.Status, Pod: op.Pod, Error: op.Error}
}

// Violation is one rule broken by one customer: the requests involved, the pods
// that served them, and what was wrong.
type Violation struct {
	Rule     Rule             `json:"rule"`
	Customer history.Customer `json:"customer"`
	Pods     []string         `json:"pods"`
	Requests []Request        `json:"requests"`
	Details  []string         `json:"details"`
}

// Result is the judgement of a run.
type Result struct {
	Verdict     Verdict `json:"verdict"`
	Customers   int     `json:"customers"`
	Requests    int     `json:"requests"`
	Successes   int     `json:"successes"`
	CleanErrors int     `json:"clean_errors"`
	// Unknown counts transport errors and timeouts: never a success.
	Unknown int `json:"unknown"`
	// EmptySubjects counts 2xx answers carrying a valid signature over an empty subject: the
	// null-customer token of the seed's bug.
	EmptySubjects int `json:"empty_subjects"`
	// DuplicateCustomers counts customers with two or more database rows.
	DuplicateCustomers int          `json:"duplicate_customers"`
	Counts             map[Rule]int `json:"counts"`
	Violations         []Violation  `json:"violations"`
	Coverage           Coverage     `json:"coverage"`
}

// Err returns nil for a pass, an error wrapping ErrViolations for a fail and
// one wrapping ErrInconclusive for an inconclusive run, with the figures.
func (r Result) Err() error {
	switch r.Verdict {
	case VerdictPass:
		return nil
	case VerdictFail:
		return fmt.Errorf("%w: %d violations over %d customers %v", ErrViolations, len(r.Violations), r.Customers, r.Counts)
	default:
		return fmt.Errorf("%w: %s", ErrInconclusive, r.Coverage)
	}
}

// Check judges ops against the database rows. It returns an error only when it
// cannot judge (missing key or issuer); a broken invariant is a Violation.
func Check(ops []history.Op, rows []Row, p Params) (Result, error) {
	if len(p.PublicKey) != ed25519.PublicKeySize {
		return Result{}, fmt.Errorf("check params: public key has %d bytes, want %d", len(p.PublicKey), ed25519.PublicKeySize)
	}
	if p.Issuer == "" {
		return Result{}, errors.New("check params: no issuer")
	}
	if len(p.ExpectedErrors) == 0 {
		p.ExpectedErrors = DefaultExpectedErrors
	}

	customers := map[history.Key]history.Customer{}
	for _, c := range p.Customers {
		customers[c.Key()] = c
	}
	byKey := history.ByCustomer(ops)
	for k, kops := range byKey {
		if _, ok := customers[k]; !ok {
			customers[k] = kops[0].Customer
		}
	}
	rowsByKey := map[history.Key][]Row{}
	for _, r := range rows {
		k := history.Key{MerchantID: r.MerchantID, ExternalID: r.ExternalID}
		if _, ok := customers[k]; ok { // rows of other runs are not ours to judge
			rowsByKey[k] = append(rowsByKey[k], r)
		}
	}
	ordered := make([]history.Customer, 0, len(customers))
	for _, c := range customers {
		ordered = append(ordered, c)
	}
	slices.SortFunc(ordered, func(a, b history.Customer) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.MerchantID, b.MerchantID), cmp.Compare(a.ExternalID, b.ExternalID))
	})

	res := Result{Customers: len(ordered), Requests: len(ops), Counts: map[Rule]int{}, Violations: []Violation{}}
	for _, c := range ordered {
		j := judgeCustomer(c, byKey[c.Key()], rowsByKey[c.Key()], p)
		res.Successes += j.successes
		res.CleanErrors += j.cleanErrors
		res.Unknown += j.unknown
		res.EmptySubjects += j.emptySubjects
		if len(rowsByKey[c.Key()]) > 1 {
			res.DuplicateCustomers++
		}
		for _, v := range j.violations {
			res.Counts[v.Rule]++
			res.Violations = append(res.Violations, v)
		}
	}
	res.Coverage = measureCoverage(ordered, byKey, p.Coverage)

	switch {
	case len(res.Violations) > 0:
		res.Verdict = VerdictFail
	case !res.Coverage.Sufficient:
		res.Verdict = VerdictInconclusive
	default:
		res.Verdict = VerdictPass
	}
	return res, nil
}

// newViolation builds a Violation over ops, with their pods sorted.
func newViolation(rule Rule, c history.Customer, ops []history.Op, details ...string) Violation {
	v := Violation{Rule: rule, Customer: c, Pods: []string{}, Requests: []Request{}, Details: details}
	for _, op := range ops {
		v.Requests = append(v.Requests, requestOf(op))
		if op.Pod != "" && !slices.Contains(v.Pods, op.Pod) {
			v.Pods = append(v.Pods, op.Pod)
		}
	}
	slices.Sort(v.Pods)
	return v
}
