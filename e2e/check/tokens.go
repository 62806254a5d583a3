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
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// cutPlain cuts s at sep like strings.Cut, and reports false unless what comes
// before sep is printable ASCII with nothing a JSON string would escape.
func cutPlain(s, sep string) (before, after string, ok bool) {
	before, after, ok = strings.Cut(s, sep)
	if !ok {
		return "", "", false
	}
	for i := range len(before) {
		if !plainByte[before[i]] {
			return "", "", false
		}
	}
	return before, after, true
}

// plainByte says which bytes a JSON string holds as themselves: printable ASCII but the quote
// and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// tokenRules are what a token is held to: the key its header's kid selects, its issuer, and
// unless the params were saved before the service had them (zero), its audience and lifetime.
type tokenRules struct {
	// byKid are the keys of the published JWKS by kid, decoded once with their tables
	// (edKeyFor): a token's header must name one. Nil verifies every token with key whatever
	// its kid, as the checker did before it fetched the JWKS (params saved then).
	byKid map[string]*edKey
	key   ed25519.PublicKey
	// ed is key decoded once, with its tables (edKeyFor); nil verifies with crypto/ed25519.
	ed       *edKey
	issuer   string
	audience string
	ttl      time.Duration
	// claims are the claims held to the request's fields (Params.Claims).
	claims claimMap
	// credential is the API's pointer to a success's credential; needle, when it names a
	// top-level member, how that member begins in a flat body ("NAME":").
	credential, needle string
}

// quickCredential finds the credential of a 2xx body for prepare: in a flat body by its member's
// beginning alone, without reading the body. A verdict is the credential's alone, so a body
// found otherwise here than when judged only costs its credential a verification then.
func (r tokenRules) quickCredential(body string) (string, bool) {
	if r.needle != "" {
		if i := strings.Index(body, r.needle); i >= 0 {
			tok, _, ok := strings.Cut(body[i+len(r.needle):], `"`)
			return tok, ok
		}
	}
	tok, _, ok := stringMember(body, r.credential)
	return tok, ok
}

// tokenCache is what one worker of Check knows about the tokens it is judging: the signature
// verdicts of a batch of customers' tokens, verified together before they are judged, and a
// header already read (every token of a run has the same one), which need not be read again.
type tokenCache struct {
	// verdicts says, for a token of the batch, whether its signature verifies; a token absent
	// from it is verified when judged.
	verdicts map[string]bool
	// header is a header segment already decoded, found to say alg EdDSA and to select
	// headerKey; "" for none.
	header    string
	headerKey *edKey

	items   []signedMsg
	keys    []*edKey
	sigs    [][ed25519.SignatureSize]byte
	index   []string
	group   []signedMsg
	scratch batchScratch
}

// keyFor returns the key that verifies the tokens whose header segment is header, under r: the
// header is read once, while the tokens that follow have the same one.
func (tc *tokenCache) keyFor(header string, r tokenRules) (*edKey, error) {
	if tc != nil && tc.header != "" && header == tc.header {
		return tc.headerKey, nil
	}
	key, err := r.keyFor(header)
	if err == nil && tc != nil {
		tc.header, tc.headerKey = header, key
	}
	return key, err
}

// keyFor reads a JWS header and returns the key its kid selects, or why it selects none. Without
// keys by kid it is r.ed (nil: crypto/ed25519 with r.key).
func (r tokenRules) keyFor(header string) (*edKey, error) {
	kid, err := checkHeader(header)
	if err != nil {
		return nil, err
	}
	if r.byKid == nil {
		return r.ed, nil
	}
	if kid == nil {
		return nil, &kidError{line: KidMissing}
	}
	k, ok := r.byKid[*kid]
	if !ok {
		return nil, &kidError{line: KidUnknown, kid: *kid}
	}
	return k, nil
}

// prepare verifies, in one batch, the signature of every distinct token in the 2xx answers
// among ops (indexes into all), so that judging them reads the verdicts.
func (tc *tokenCache) prepare(r tokenRules, all []history.Op, ops []int32) {
	if r.ed == nil && r.byKid == nil {
		return
	}
	if tc.verdicts == nil {
		tc.verdicts = map[string]bool{}
	}
	clear(tc.verdicts)
	tc.items, tc.keys, tc.index = tc.items[:0], tc.keys[:0], tc.index[:0]
	tc.sigs = slices.Grow(tc.sigs[:0], len(ops))[:0]
	for _, i := range ops {
		op := &all[i]
		if !op.Succeeded() {
			continue
		}
		// A verdict is the token's alone: a body read otherwise when judged only costs its
		// token a verification then.
		tok, ok := r.quickCredential(op.Body)
		if !ok || tok == "" {
			continue
		}
		if _, seen := tc.verdicts[tok]; seen {
			continue
		}
		// A token of another shape, whose header selects no key, or whose signature does not
		// decode to 64 bytes, is left to verifyToken, which says what is wrong with it.
		dot := strings.LastIndexByte(tok, '.')
		if dot < 0 || strings.Count(tok, ".") != 2 || len(tok)-dot-1 != base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize) {
			continue
		}
		key, err := tc.keyFor(tok[:strings.IndexByte(tok, '.')], r)
		if err != nil || key == nil {
			continue
		}
		var sig [ed25519.SignatureSize]byte
		if n, err := base64.RawURLEncoding.Decode(sig[:], []byte(tok[dot+1:])); err != nil || n != len(sig) {
			continue
		}
		tc.verdicts[tok] = false
		tc.sigs = append(tc.sigs, sig)
		tc.items = append(tc.items, signedMsg{msg: tok[:dot]})
		tc.keys = append(tc.keys, key)
		tc.index = append(tc.index, tok)
	}
	for n := range tc.items {
		tc.items[n].sig = tc.sigs[n][:]
	}
	tc.verifyByKey()
}

// verifyByKey verifies the batch's items, one batch per key: all at once when they share one, as
// a service's tokens do.
func (tc *tokenCache) verifyByKey() {
	if len(tc.items) == 0 {
		return
	}
	if !slices.ContainsFunc(tc.keys, func(k *edKey) bool { return k != tc.keys[0] }) {
		for n, ok := range tc.keys[0].verifyAll(tc.items, &tc.scratch) {
			tc.verdicts[tc.index[n]] = ok
		}
		return
	}
	done := make([]bool, len(tc.items))
	for first := range tc.items {
		if done[first] {
			continue
		}
		key := tc.keys[first]
		tc.group = tc.group[:0]
		var at []int
		for n := first; n < len(tc.items); n++ {
			if !done[n] && tc.keys[n] == key {
				tc.group, at, done[n] = append(tc.group, tc.items[n]), append(at, n), true
			}
		}
		for g, ok := range key.verifyAll(tc.group, &tc.scratch) {
			tc.verdicts[tc.index[at[g]]] = ok
		}
	}
}

// verifyToken verifies a compact JWS as the service signs it: alg EdDSA only, an Ed25519
// signature by r.key, issuer r.issuer, audience r.audience, and exp r.ttl after iat exactly.
// It returns the claims of a valid token, its exp and nbf as instants; whether the token was
// still valid when its response arrived is validAt's, as that depends on the response.
func verifyToken(tok string, r tokenRules) (tokenClaims, error) {
	return verifyTokenWith(tok, r, nil)
}

// verifyTokenWith is verifyToken reading what tc knows of the token, when tc is not nil.
func verifyTokenWith(tok string, r tokenRules, tc *tokenCache) (tokenClaims, error) {
	fail := func(format string, args ...any) (tokenClaims, error) {
		return tokenClaims{}, fmt.Errorf("token %s does not verify: %s", Fingerprint(tok), fmt.Sprintf(format, args...))
	}
	header, rest, ok := strings.Cut(tok, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(sig, ".") {
		return fail("not three dot-separated segments")
	}
	key, err := tc.keyFor(header, r)
	if err != nil {
		return tokenClaims{}, fmt.Errorf("token %s does not verify: %w", Fingerprint(tok), err)
	}
	signed := tok[:len(header)+1+len(payload)]
	ok, known := false, false
	if tc != nil {
		// A token of the batch has a signature that decoded to 64 bytes.
		ok, known = tc.verdicts[tok]
	}
	if !known {
		sb, err := base64.RawURLEncoding.DecodeString(sig)
		if err != nil || len(sb) != ed25519.SignatureSize {
			return fail("malformed signature")
		}
		if key != nil {
			ok = key.verifyAll([]signedMsg{{signed, sb}}, new(batchScratch))[0]
		} else {
			ok = ed25519.Verify(r.key, []byte(signed), sb)
		}
	}
	if !ok {
		return fail("signature is invalid")
	}
	cl, err := verifyClaims(payload, r)
	if err != nil {
		return fail("%v", err)
	}
	return cl, nil
}

// verifyClaims decodes a token's claims from its payload segment and holds them to r: the
// issuer, the audience, exp and nbf as NumericDates, and exp exactly the TTL after iat.
func verifyClaims(payload string, r tokenRules) (tokenClaims, error) {
	var cl tokenClaims
	pb, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return tokenClaims{}, fmt.Errorf("claims: %v", err)
	}
	if err := parseClaims(pb, &cl); err != nil {
		return tokenClaims{}, fmt.Errorf("claims: %v", err)
	}
	if cl.Issuer != r.issuer {
		return tokenClaims{}, fmt.Errorf("issuer %q, want %q", cl.Issuer, r.issuer)
	}
	if r.audience != "" {
		if err := matchAudience(cl.Audience, r.audience); err != nil {
			return tokenClaims{}, err
		}
	}
	if cl.expires, err = numericDate(cl.ExpiresAt); err != nil {
		return tokenClaims{}, fmt.Errorf("exp: %v", err)
	}
	if cl.notBefore, err = numericDate(cl.NotBefore); err != nil {
		return tokenClaims{}, fmt.Errorf("nbf: %v", err)
	}
	if r.ttl > 0 {
		if err := checkTTL(cl, r.ttl); err != nil {
			return tokenClaims{}, err
		}
	}
	return cl, nil
}

// checkTTL holds exp to iat plus ttl, both whole seconds: exactly, or replicas could disagree.
func checkTTL(cl tokenClaims, ttl time.Duration) error {
	iat, err := cl.IssuedAt.Int64()
	if err != nil {
		return fmt.Errorf("iat %q: no whole second to count exp from", cl.IssuedAt.String())
	}
	want := iat + int64(ttl/time.Second)
	switch exp, err := cl.ExpiresAt.Int64(); {
	case cl.ExpiresAt == "":
		return fmt.Errorf("no exp, want iat %d + %s = %d", iat, ttl, want)
	case err != nil || exp != want:
		return fmt.Errorf("exp %s, want iat %d + %s = %d", cl.ExpiresAt, iat, ttl, want)
	}
	return nil
}

// checkHeader reads a JWS header, says why it is not one of the suite's algorithm, and returns
// its kid (nil for none).
func checkHeader(header string) (kid *string, err error) {
	hb, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	var h struct {
		Alg string  `json:"alg"`
		Kid *string `json:"kid"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	// Only the suite's algorithm: not none, and not HMAC keyed with the public key.
	if h.Alg != "EdDSA" {
		return nil, fmt.Errorf("signing method %q, want EdDSA", h.Alg)
	}
	return h.Kid, nil
}

// validAt says why a verified token was not valid at received, the instant its response
// arrived: a token that expired on the way, or before, was never a usable token.
func (cl *tokenClaims) validAt(received time.Time) error { return cl.window().at(received) }

// window is when the token may be used, as its exp and nbf say.
func (cl *tokenClaims) window() validity {
	return validity{expires: cl.expires, notBefore: cl.notBefore, exp: cl.ExpiresAt, nbf: cl.NotBefore}
}

// matchAudience says how aud, as the token carries it (RFC 7519: a string, or a list of
// strings), is other than want alone.
func matchAudience(aud json.RawMessage, want string) error {
	if len(aud) == 0 || string(aud) == "null" {
		return fmt.Errorf("no aud, want %q", want)
	}
	var one string
	if json.Unmarshal(aud, &one) == nil {
		if one != want {
			return fmt.Errorf("aud %q, want %q", one, want)
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(aud, &list); err != nil {
		return fmt.Errorf("aud %s is neither a string nor a list of strings", excerpt(string(aud)))
	}
	if len(list) != 1 || list[0] != want {
		return fmt.Errorf("aud %q, want %q alone", list, want)
	}
	return nil
}

// numericDate reads a JWT NumericDate, seconds since the epoch, perhaps with a fraction; the
// zero time when absent.
func numericDate(n json.Number) (time.Time, error) {
	if n == "" {
		return time.Time{}, nil
	}
	if i, err := n.Int64(); err == nil {
		return time.Unix(i, 0), nil
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return time.Time{}, fmt.Errorf("%q is not a number of seconds", n.String())
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// matchRow lists how a verified token disagrees with the answer that carried it (naming
// customerID, its member idName), its request (fields: requestProblems', in order) and the database. With two or
// more rows the sub must be one of them (RuleOneRow reports the duplicates); with none only the
// answer and the request are compared (RuleOneRow reports the lost row).
func matchRow(idName, customerID string, cl *tokenClaims, rows []Row, fields []string) []string {
	var problems []string
	if cl.Subject == "" {
		problems = append(problems, "empty subject")
	}
	if customerID != cl.Subject {
		problems = append(problems, fmt.Sprintf("%s %q, token sub %q", idName, customerID, cl.Subject))
	}
	problems = append(problems, fields...)
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
