package check

// Reading an answer: the service's token body, parsed without reflection, and a token verified
// once (EdDSA only), as the rules in rules.go use them.
import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// parseTokenResponse decodes a 2xx body as json.Unmarshal does. The body the
// service writes (json.Marshal of its three fields, a newline) is read without
// the reflection of encoding/json, which would otherwise cost a big run as much
// as a third of its signature checks; any other body goes to json.Unmarshal.
func parseTokenResponse(body string) (tokenResponse, error) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(body, "\n"), `{"token":"`)
	token, rest, ok2 := cutPlain(rest, `","customer_id":"`)
	id, rest, ok3 := cutPlain(rest, `","created":`)
	if ok && ok2 && ok3 && (rest == "true}" || rest == "false}") {
		return tokenResponse{Token: token, CustomerID: id, Created: new(rest == "true}")}, nil
	}
	var resp tokenResponse
	err := json.Unmarshal([]byte(body), &resp)
	return resp, err
}

// cutPlain cuts s at sep like strings.Cut, and reports false unless what comes
// before sep is printable ASCII with nothing a JSON string would escape.
func cutPlain(s, sep string) (before, after string, ok bool) {
	before, after, ok = strings.Cut(s, sep)
	if !ok {
		return "", "", false
	}
	for i := range len(before) {
		if c := before[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", "", false
		}
	}
	return before, after, true
}

// verifyToken verifies a compact JWS as the service signs it: alg EdDSA only,
// an Ed25519 signature by key, issuer iss. It returns the claims of a valid
// token.
func verifyToken(tok string, key ed25519.PublicKey, iss string) (tokenClaims, error) {
	var cl tokenClaims
	fail := func(format string, args ...any) (tokenClaims, error) {
		return tokenClaims{}, fmt.Errorf("token %s does not verify: %s", Fingerprint(tok), fmt.Sprintf(format, args...))
	}
	header, rest, ok := strings.Cut(tok, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(sig, ".") {
		return fail("not three dot-separated segments")
	}
	hb, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return fail("header: %v", err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return fail("header: %v", err)
	}
	// Only the suite's algorithm: not none, and not HMAC keyed with the public key.
	if h.Alg != "EdDSA" {
		return fail("signing method %q, want EdDSA", h.Alg)
	}
	sb, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(sb) != ed25519.SignatureSize {
		return fail("malformed signature")
	}
	if !ed25519.Verify(key, []byte(tok[:len(header)+1+len(payload)]), sb) {
		return fail("signature is invalid")
	}
	pb, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return fail("claims: %v", err)
	}
	if err := json.Unmarshal(pb, &cl); err != nil {
		return fail("claims: %v", err)
	}
	if cl.Issuer != iss {
		return fail("issuer %q, want %q", cl.Issuer, iss)
	}
	now := float64(time.Now().UnixNano()) / float64(time.Second)
	if cl.ExpiresAt != "" {
		if exp, err := cl.ExpiresAt.Float64(); err != nil || now >= exp {
			return fail("expired (exp %s)", cl.ExpiresAt)
		}
	}
	if cl.NotBefore != "" {
		if nbf, err := cl.NotBefore.Float64(); err != nil || now < nbf {
			return fail("not valid yet (nbf %s)", cl.NotBefore)
		}
	}
	return cl, nil
}

// matchRow lists how a verified token disagrees with its request and the
// database. With two or more rows the sub must be one of them (RuleOneRow
// reports the duplicates); with none only the request fields are compared
// (RuleOneRow reports the lost row).
func matchRow(c history.Customer, customerID string, cl *tokenClaims, rows []Row) []string {
	var problems []string
	if cl.Subject == "" {
		problems = append(problems, "empty subject")
	}
	if customerID != cl.Subject {
		problems = append(problems, fmt.Sprintf("customer_id %q, token sub %q", customerID, cl.Subject))
	}
	if cl.MerchantID != c.MerchantID {
		problems = append(problems, fmt.Sprintf("mid %q, request had %q", cl.MerchantID, c.MerchantID))
	}
	if cl.ExternalID != c.ExternalID {
		problems = append(problems, fmt.Sprintf("ext %q, request had %q", cl.ExternalID, c.ExternalID))
	}
	if cl.Subject == "" || len(rows) == 0 {
		return problems
	}
	i := slices.IndexFunc(rows, func(r Row) bool { return r.ID == cl.Subject })
	if i < 0 {
		return append(problems, fmt.Sprintf("sub %q is not the row id %q", cl.Subject, rows[0].ID))
	}
	// iat is the row's created_at in whole seconds, as the service computes it
	// (time.Time.Unix, which truncates): exactly, with no slack.
	want := rows[i].CreatedAt.Unix()
	if cl.IssuedAt == "" {
		problems = append(problems, "no iat")
	} else if iat, err := cl.IssuedAt.Int64(); err != nil || iat != want {
		problems = append(problems, fmt.Sprintf("iat %s, want %d: the row was created %s",
			cl.IssuedAt, want, rows[i].CreatedAt.UTC().Format(time.RFC3339Nano)))
	}
	return problems
}

// Fingerprint names a token briefly in reports without printing it whole: the first 8 hex
// digits of its SHA-256. The checker's findings and report.html both name tokens by it.
func Fingerprint(tok string) string {
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
