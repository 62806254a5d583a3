package check

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// tokenResponse is the 200 body of POST /v1/tokens.
type tokenResponse struct {
	Token      string `json:"token"`
	CustomerID string `json:"customer_id"`
	Created    *bool  `json:"created"`
}

// errorResponse is the body of every error response.
type errorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// claims are the token claims the service signs.
type claims struct {
	jwt.RegisteredClaims
	MerchantID string `json:"mid"`
	ExternalID string `json:"ext"`
}

// judgement is what one customer contributes to the Result.
type judgement struct {
	successes, cleanErrors, unknown int
	// emptySubjects counts 2xx answers whose token verified but names nobody: the seed's bug.
	emptySubjects int
	violations    []Violation
}

// judgeCustomer applies every rule to one customer's ops and rows.
func judgeCustomer(c history.Customer, ops []history.Op, rows []Row, p Params) judgement {
	var (
		j                                                 judgement
		successes, badTokens, mismatched, dirty, unknowns []history.Op
		tokenDetails, matchDetails, errorDetails          []string
		tokens                                            = map[string][]history.Op{}
		valid                                             int
	)
	for _, op := range ops {
		switch {
		case op.Unknown():
			// A transport error or timeout may or may not have registered the
			// customer; it is never a success, and RuleOneRow still applies.
			unknowns = append(unknowns, op)
		case op.Succeeded():
			successes = append(successes, op)
			tok, customerID, cl, err := verifyToken(op.Body, p)
			if tok != "" {
				tokens[tok] = append(tokens[tok], op)
			}
			if err != nil {
				badTokens = append(badTokens, op)
				tokenDetails = append(tokenDetails, fmt.Sprintf("%s: %v", op.ID(), err))
				continue
			}
			if cl.Subject == "" {
				j.emptySubjects++
			}
			if problems := matchRow(op, customerID, cl, rows); len(problems) > 0 {
				mismatched = append(mismatched, op)
				matchDetails = append(matchDetails, fmt.Sprintf("%s: %s", op.ID(), strings.Join(problems, "; ")))
				continue
			}
			valid++
		default:
			if err := cleanError(op, p.ExpectedErrors); err != nil {
				dirty = append(dirty, op)
				errorDetails = append(errorDetails, fmt.Sprintf("%s: %v", op.ID(), err))
				continue
			}
			j.cleanErrors++
		}
	}
	j.successes, j.unknown = len(successes), len(unknowns)
	add := func(rule Rule, ops []history.Op, details ...string) {
		j.violations = append(j.violations, newViolation(rule, c, ops, details...))
	}

	switch {
	case len(rows) >= 2:
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		add(RuleOneRow, ops, fmt.Sprintf("%d rows for one customer: %s", len(rows), strings.Join(ids, ", ")))
	case len(rows) == 0 && len(successes) > 0:
		add(RuleOneRow, successes, fmt.Sprintf("lost registration: %d 2xx responses but no row", len(successes)))
	}
	if len(badTokens) > 0 {
		add(RuleValidToken, badTokens, tokenDetails...)
	}
	if len(mismatched) > 0 {
		add(RuleTokenMatchesRow, mismatched, matchDetails...)
	}
	if len(tokens) > 1 {
		// One detail per request, so that the table shows which pod gave which token.
		var details []string
		var involved []history.Op
		for gi, tok := range slices.Sorted(maps.Keys(tokens)) {
			for _, op := range tokens[tok] {
				details = append(details, fmt.Sprintf("token %s (%d of %d distinct)", fingerprint(tok), gi+1, len(tokens)))
				involved = append(involved, op)
			}
		}
		add(RuleOneToken, involved, details...)
	}
	if len(dirty) > 0 {
		add(RuleCleanError, dirty, errorDetails...)
	}
	if valid == 0 {
		detail := fmt.Sprintf("no valid token after %d requests (%d 2xx, %d unknown)", len(ops), len(successes), len(unknowns))
		if len(ops) == 0 {
			detail = "no request recorded for a planned customer"
		}
		add(RuleFinalToken, ops, detail)
	}
	return j
}

// verifyToken returns the token and customer_id of a 2xx body and the token's
// verified claims. The token is returned even when it does not verify, so that
// RuleOneToken sees it.
func verifyToken(body string, p Params) (token, customerID string, _ *claims, _ error) {
	var resp tokenResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return "", "", nil, fmt.Errorf("2xx body is not a token response: %w (body %q)", err, excerpt(body))
	}
	if resp.Token == "" {
		return "", "", nil, fmt.Errorf("2xx body has no token (body %q)", excerpt(body))
	}
	cl := &claims{}
	_, err := jwt.ParseWithClaims(resp.Token, cl,
		func(*jwt.Token) (any, error) { return p.PublicKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(p.Issuer),
	)
	if err != nil {
		return resp.Token, resp.CustomerID, nil, fmt.Errorf("token %s does not verify: %w", fingerprint(resp.Token), err)
	}
	return resp.Token, resp.CustomerID, cl, nil
}

// matchRow lists how a verified token disagrees with its request and the
// database. With two or more rows the sub must be one of them (RuleOneRow
// reports the duplicates); with none only the request fields are compared
// (RuleOneRow reports the lost row).
func matchRow(op history.Op, customerID string, cl *claims, rows []Row) []string {
	var problems []string
	if cl.Subject == "" {
		problems = append(problems, "empty subject")
	}
	if customerID != cl.Subject {
		problems = append(problems, fmt.Sprintf("customer_id %q, token sub %q", customerID, cl.Subject))
	}
	if cl.MerchantID != op.Customer.MerchantID {
		problems = append(problems, fmt.Sprintf("mid %q, request had %q", cl.MerchantID, op.Customer.MerchantID))
	}
	if cl.ExternalID != op.Customer.ExternalID {
		problems = append(problems, fmt.Sprintf("ext %q, request had %q", cl.ExternalID, op.Customer.ExternalID))
	}
	if cl.Subject == "" || len(rows) == 0 {
		return problems
	}
	i := slices.IndexFunc(rows, func(r Row) bool { return r.ID == cl.Subject })
	if i < 0 {
		return append(problems, fmt.Sprintf("sub %q is not the row id %q", cl.Subject, rows[0].ID))
	}
	// iat is the row's creation time in whole seconds; allow one second for
	// rounding rather than truncation.
	if cl.IssuedAt == nil {
		problems = append(problems, "no iat")
	} else if d := cl.IssuedAt.Sub(rows[i].CreatedAt.Truncate(time.Second)); d < -time.Second || d > time.Second {
		problems = append(problems, fmt.Sprintf("iat %s, row created %s", cl.IssuedAt.UTC().Format(time.RFC3339), rows[i].CreatedAt.UTC().Format(time.RFC3339Nano)))
	}
	return problems
}

// cleanError returns why a non-2xx response is not a clean, expected error.
func cleanError(op history.Op, expected []ExpectedError) error {
	var e errorResponse
	if err := json.Unmarshal([]byte(op.Body), &e); err != nil {
		return fmt.Errorf("status %d with a body that is not JSON: %q", op.Status, excerpt(op.Body))
	}
	if e.Error == "" {
		return fmt.Errorf("status %d without an error code: %q", op.Status, excerpt(op.Body))
	}
	for _, x := range expected {
		if x.Status == op.Status && (x.Code == "" || x.Code == e.Error) {
			return nil
		}
	}
	return fmt.Errorf("unexpected status %d with error %q", op.Status, e.Error)
}

// fingerprint names a token briefly in reports without printing it whole.
func fingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:4])
}

func excerpt(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
