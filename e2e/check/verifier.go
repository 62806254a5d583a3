package check

// The credential a 2xx answer carries is judged by a Verifier, so that the rules read what it
// found (valid, naming which entity, disagreeing with what) and never how a credential of one
// kind is checked: a signed JWT (the token service's) or an opaque string that must merely be
// the same for one key.
import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// VerifierKind selects how Check verifies the credential of a 2xx answer (Params.Verifier).
type VerifierKind string

// The verifiers.
const (
	// VerifierJWT verifies a JWT signed with EdDSA by the published JWKS key its kid names,
	// with the configured issuer, audience and lifetime, whose claims match the request and the
	// key's row (Params.Claims). The zero value selects it: params saved before there was a
	// choice judged tokens so.
	VerifierJWT VerifierKind = "jwt"
	// VerifierEqual holds an opaque credential to being identical across the answers of one key
	// (RuleOneToken) and distinct across keys (RuleTenants): nothing in it is read.
	VerifierEqual VerifierKind = "equal"
)

// Verifier judges the credentials of a run's 2xx answers. Check gives each of its workers its
// own, made by Params.Verifier's kind; a Verifier is used by one goroutine at a time.
type Verifier interface {
	// Prepare is given the requests (indexes into all) of the next batch of customers before
	// any of them is judged, so that their credentials can be verified together.
	Prepare(all []history.Op, batch []int32)
	// Verify judges cred, the credential of a 2xx answer that names entity id, got for
	// customer c, whose key has rows in the database.
	Verify(cred string, c history.Customer, id string, rows []Row) Verification
}

// Verification is what a Verifier found about one credential of one answer.
type Verification struct {
	// Err says why the credential is not valid (RuleValidToken), nil when it is; a kid that
	// selects no published key is a *kidError (kidLine).
	Err error
	// Subject is the entity a valid credential names, "" when it names none or the verifier
	// reads none (RuleTenants then compares the credential itself).
	Subject string
	// EmptySubject says a valid credential names nobody: the seed's bug.
	EmptySubject bool
	// Problems are how a valid credential disagrees with its request and rows
	// (RuleTokenMatchesRow).
	Problems []string
	// LostWrite says the answer is consistent (its id is the credential's subject, whose
	// request fields are the request's), yet no row has that id: the registration it
	// acknowledged was lost.
	LostWrite bool
	// window is when a valid credential may be used; the zero window always.
	window validity
}

// ValidAt says why a valid credential could not be used at received, the instant its answer
// arrived: one that expired on the way, or before, was never usable.
func (v *Verification) ValidAt(received time.Time) error { return v.window.at(received) }

// newVerifier returns a Verifier of p's kind for one worker; rules are the JWT verifier's,
// shared by the workers and never written.
func newVerifier(p Params, rules *tokenRules) Verifier {
	if p.Verifier == VerifierEqual {
		return equalVerifier{}
	}
	return &jwtVerifier{rules: rules, idName: pointerName(p.API.ID)}
}

// equalVerifier reads nothing in a credential: that it be the same for one key is RuleOneToken's.
type equalVerifier struct{}

func (equalVerifier) Prepare([]history.Op, []int32) {}

// Verify holds the answer's id to the rows, as the JWT verifier holds a token's subject: an
// answer that names no entity, or another than the key's row, is wrong whatever its credential.
// An id that is none of the key's rows is a lost write, as a token whose subject is none is
// (jwtVerifier): the answer acknowledged an entity the database does not hold for the key, and
// any row it has was created by a later request (a retry after a crash lost the first). The
// answer alone cannot tell it from another key's row id, which a token's claims could.
func (equalVerifier) Verify(_ string, _ history.Customer, id string, rows []Row) Verification {
	// Subject stays empty: RuleTenants compares the ids and the credentials themselves.
	v := Verification{EmptySubject: id == ""}
	switch {
	case id == "":
		v.Problems = []string{"empty id"}
	case len(rows) == 0:
		v.LostWrite = true
		v.Problems = []string{fmt.Sprintf("id %q has no row", id)}
	case !slices.ContainsFunc(rows, func(r Row) bool { return r.ID == id }):
		v.LostWrite = true
		v.Problems = []string{fmt.Sprintf("id %q is not the row id %q", id, rows[0].ID)}
	}
	return v
}

// jwtVerifier verifies a worker's tokens: the signatures of a batch at once, one batch per key
// (tokenCache.prepare), and the claims of each token as it is judged.
type jwtVerifier struct {
	rules *tokenRules
	// idName names the answer's id in findings (API.ID's last token).
	idName string
	tc     tokenCache
	// last is the token verified last and what was found: a customer's answers repeat one
	// token (created=true, then false), which needs reading once.
	last       string
	lastClaims tokenClaims
	lastErr    error
}

func (v *jwtVerifier) Prepare(all []history.Op, batch []int32) {
	v.tc.prepare(*v.rules, all, batch)
}

func (v *jwtVerifier) Verify(tok string, c history.Customer, id string, rows []Row) Verification {
	if tok != v.last {
		v.lastClaims, v.lastErr = verifyTokenWith(tok, *v.rules, &v.tc)
		v.last = tok
	}
	if v.lastErr != nil {
		return Verification{Err: v.lastErr}
	}
	cl := &v.lastClaims
	fields := v.rules.claims.requestProblems(c, cl)
	problems := matchRow(v.idName, id, cl, rows, fields)
	return Verification{
		Subject:      cl.Subject,
		EmptySubject: cl.Subject == "",
		Problems:     problems,
		LostWrite: cl.Subject != "" && id == cl.Subject && len(fields) == 0 &&
			!slices.ContainsFunc(rows, func(r Row) bool { return r.ID == cl.Subject }),
		window: cl.window(),
	}
}

// validity is when a credential may be used: from notBefore, before expires (each zero for no
// bound), as its claims exp and nbf say.
type validity struct {
	expires, notBefore time.Time
	exp, nbf           json.Number
}

func (w validity) at(received time.Time) error {
	if !w.expires.IsZero() && !received.Before(w.expires) {
		return fmt.Errorf("expired on arrival: exp %s (%s), the response arrived %s",
			w.exp, w.expires.UTC().Format(time.RFC3339), received.UTC().Format(time.RFC3339Nano))
	}
	if !w.notBefore.IsZero() && received.Before(w.notBefore) {
		return fmt.Errorf("not valid yet on arrival: nbf %s (%s), the response arrived %s",
			w.nbf, w.notBefore.UTC().Format(time.RFC3339), received.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// ClaimField says that a token's claim must equal a field of the request that got it.
type ClaimField struct {
	// Claim is the claim's name in the token.
	Claim string `json:"claim"`
	// Field is the request body's member (API.Fields).
	Field string `json:"field"`
}

// claimMap is a mapping of claims to request fields, resolved once.
type claimMap []resolvedClaim

type resolvedClaim struct {
	claim string
	field func(history.Customer) string
}

// resolveClaims checks a mapping (nil for the API's) and resolves it, or says which entry names
// a field the request does not have or a registered claim, which the verifier reads itself.
func resolveClaims(api *API, fields []ClaimField) (claimMap, error) {
	if fields == nil {
		fields = api.Claims
	}
	var (
		out  claimMap
		errs []error
	)
	for _, f := range fields {
		field, okField := api.fieldValue(f.Field)
		switch {
		case isRegistered(f.Claim):
			errs = append(errs, fmt.Errorf("claim %q is a registered claim, which the verifier reads itself", f.Claim))
		case !okField:
			errs = append(errs, fmt.Errorf("claim %q: request field %q is not one of %s", f.Claim, f.Field, strings.Join(slices.Sorted(maps.Keys(api.Fields)), ", ")))
		default:
			out = append(out, resolvedClaim{claim: f.Claim, field: field})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("claim mapping: %w", err)
	}
	return out, nil
}

// requestProblems lists how cl's mapped claims differ from c's request fields, in mapping order.
func (m claimMap) requestProblems(c history.Customer, cl *tokenClaims) []string {
	var problems []string
	for _, rc := range m {
		if got, want := cl.other(rc.claim), rc.field(c); got != want {
			problems = append(problems, fmt.Sprintf("%s %q, request had %q", rc.claim, got, want))
		}
	}
	return problems
}

// jwtNeeds says which of the JWT verifier's params p lacks, or nil: Check cannot judge tokens
// without them.
func jwtNeeds(p *Params) error {
	if len(p.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("check params: public key has %d bytes, want %d", len(p.PublicKey), ed25519.PublicKeySize)
	}
	if p.Issuer == "" {
		return errors.New("check params: no issuer")
	}
	if !p.savedBeforeAuth && (p.Audience == "" || p.TokenTTL <= 0) {
		return fmt.Errorf("check params: audience %q and token TTL %s: want both (the service's configured audience and token lifetime)", p.Audience, p.TokenTTL)
	}
	if p.TokenTTL%time.Second != 0 {
		return fmt.Errorf("check params: token TTL %s is not whole seconds, as exp and iat are", p.TokenTTL)
	}
	return nil
}
