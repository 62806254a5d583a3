package check

// The key set a client verifies tokens with: the service's JWKS (the verifier's jwksPath) as the suite
// fetched it, through the Service and from each pod, judged once per run (RuleJWKS), and the
// keys by kid that every token's header must name (RuleValidToken).
import (
	"cmp"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// RuleJWKS: every fetch of the service's JWKS, through the Service and from each pod, answered
// 200 with a key set that parses; every key in it is an OKP/Ed25519 key (alg EdDSA when said)
// with a kid of its own; all fetches publish the same keys; and the key the service was
// configured with is among them. A rule of the run, not of one customer's token: a replica that
// publishes a broken or different key set breaks every client that fetches from it, whether or
// not any token it signed was judged.
const RuleJWKS Rule = "verifier-keys"

// JWKSFetch is one fetch of the service's JWKS (the verifier's jwksPath), as a client made it.
type JWKSFetch struct {
	// Via is where it was fetched through: "service" (the Service's address, any replica) or
	// "pod/NAME" (that pod alone).
	Via string `json:"via"`
	// Pod is the pod header of the answer, "" when it had none.
	Pod    string `json:"pod,omitempty"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	// Error is the transport error when no answer arrived.
	Error string `json:"error,omitempty"`
}

// The clauses of RuleJWKS and of the kid check of RuleValidToken, as Finding.Line names them.
const (
	JWKSUnanswered    = "unanswered"
	JWKSNotParsed     = "not-parsed"
	JWKSKeyType       = "key-type"
	JWKSNoKid         = "no-kid"
	JWKSDuplicateKid  = "duplicate-kid"
	JWKSDiffer        = "differ"
	JWKSConfiguredKey = "configured-key"
	KidMissing        = "kid-missing"
	KidUnknown        = "kid-unknown"
)

// publishedKey is one key of a JWKS as the checker reads it.
type publishedKey struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// keySet is a parsed JWKS: its keys by kid (the public key), and the keys as published, sorted
// by kid, to compare one fetch with another.
type keySet struct {
	byKid map[string]ed25519.PublicKey
	keys  []publishedKey
}

// parseJWKS reads body as a client would, and returns the findings that make it unusable: not
// JSON, no keys, a key that is not OKP/Ed25519 or whose x is not 32 bytes, no kid, a kid twice.
// A key set with findings still returns what it could read of it.
func parseJWKS(body string) (keySet, []Finding) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Keys == nil || len(*doc.Keys) == 0 {
		why := "no keys"
		if err != nil {
			why = err.Error()
		}
		return keySet{}, []Finding{{Kind: KindJWKSUnusable, Line: JWKSNotParsed,
			Detail: fmt.Sprintf("the JWKS does not parse as a key set: %s (body %q)", why, excerpt(body))}}
	}
	ks := keySet{byKid: map[string]ed25519.PublicKey{}}
	var (
		fs   []Finding
		dups []string
	)
	bad := func(line, format string, args ...any) {
		fs = append(fs, Finding{Kind: KindJWKSUnusable, Line: line, Detail: fmt.Sprintf(format, args...)})
	}
	for i, raw := range *doc.Keys {
		var k publishedKey
		if err := json.Unmarshal(raw, &k); err != nil {
			bad(JWKSNotParsed, "key %d does not parse: %v", i, err)
			continue
		}
		ks.keys = append(ks.keys, k)
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		switch {
		case k.Kty != "OKP" || k.Crv != "Ed25519":
			bad(JWKSKeyType, "key %d (kid %q) is %s/%s, want OKP/Ed25519", i, k.Kid, k.Kty, k.Crv)
			continue
		case k.Alg != "" && k.Alg != "EdDSA":
			bad(JWKSKeyType, "key %d (kid %q) says alg %q, want EdDSA", i, k.Kid, k.Alg)
			continue
		case err != nil || len(x) != ed25519.PublicKeySize:
			bad(JWKSKeyType, "key %d (kid %q): x is not %d bytes of base64url", i, k.Kid, ed25519.PublicKeySize)
			continue
		case k.Kid == "":
			bad(JWKSNoKid, "key %d has no kid: a client cannot select it by a token's kid", i)
			continue
		}
		if _, dup := ks.byKid[k.Kid]; dup || slices.Contains(dups, k.Kid) {
			// Neither key: a client cannot tell which one the kid means.
			bad(JWKSDuplicateKid, "kid %q names two keys", k.Kid)
			dups = append(dups, k.Kid)
			delete(ks.byKid, k.Kid)
			continue
		}
		ks.byKid[k.Kid] = ed25519.PublicKey(x)
	}
	slices.SortFunc(ks.keys, func(a, b publishedKey) int {
		return cmp.Or(strings.Compare(a.Kid, b.Kid), strings.Compare(a.X, b.X), strings.Compare(a.Kty, b.Kty),
			strings.Compare(a.Crv, b.Crv), strings.Compare(a.Alg, b.Alg), strings.Compare(a.Use, b.Use))
	})
	return ks, fs
}

// sameKeys says whether a and b publish the same keys, whatever their order or spacing.
func sameKeys(a, b keySet) bool { return slices.Equal(a.keys, b.keys) }

// fetchName names a fetch in a finding.
func fetchName(f JWKSFetch) string {
	if f.Pod != "" && f.Via != "pod/"+f.Pod {
		return fmt.Sprintf("%s (served by %s)", f.Via, f.Pod)
	}
	return f.Via
}

// judgeJWKS judges the fetches of the JWKS (RuleJWKS) and returns its violations and the keys
// tokens are verified with: by kid, the usable keys that every fetch that parsed as a key set
// publishes alike, so that a token is valid only if every client, wherever it fetched the JWKS,
// can verify it. (A fetch that did not parse at all adds its finding, not an empty set.) configured is the key
// the suite gave the service; it must be published.
func judgeJWKS(fetches []JWKSFetch, configured ed25519.PublicKey) ([]Violation, map[string]ed25519.PublicKey) {
	var fs []Finding
	var pods []string
	var sets []keySet
	var setOf []JWKSFetch
	for _, f := range fetches {
		if f.Pod != "" && !slices.Contains(pods, f.Pod) {
			pods = append(pods, f.Pod)
		}
		if f.Error != "" || f.Status != 200 {
			what := fmt.Sprintf("status %d (body %q)", f.Status, excerpt(f.Body))
			if f.Error != "" {
				what = "no answer: " + f.Error
			}
			fs = append(fs, Finding{Kind: KindJWKSUnusable, Line: JWKSUnanswered, Detail: fmt.Sprintf("JWKS from %s: %s", fetchName(f), what)})
			continue
		}
		ks, bad := parseJWKS(f.Body)
		for _, b := range bad {
			b.Detail = fmt.Sprintf("JWKS from %s: %s", fetchName(f), b.Detail)
			fs = append(fs, b)
		}
		if ks.byKid == nil {
			continue
		}
		sets, setOf = append(sets, ks), append(setOf, f)
	}
	keys := map[string]ed25519.PublicKey{}
	if len(sets) > 0 {
		maps.Copy(keys, sets[0].byKid)
	}
	for i := 1; i < len(sets); i++ {
		ks := sets[i]
		if !sameKeys(sets[0], ks) {
			fs = append(fs, Finding{Kind: KindJWKSDiffer, Line: JWKSDiffer, Detail: fmt.Sprintf(
				"JWKS from %s publishes kids %q, from %s kids %q, not the same keys", fetchName(setOf[0]), kidsOf(sets[0]), fetchName(setOf[i]), kidsOf(ks))})
		}
		for kid, pub := range keys {
			if !pub.Equal(ks.byKid[kid]) {
				delete(keys, kid)
			}
		}
	}
	if len(sets) > 0 && !slices.ContainsFunc(slices.Collect(maps.Values(keys)), func(k ed25519.PublicKey) bool { return configured.Equal(k) }) {
		fs = append(fs, Finding{Kind: KindJWKSWrongKey, Line: JWKSConfiguredKey, Detail: fmt.Sprintf(
			"the service's configured key (x %s) is not among the keys every fetch publishes (kids %q)",
			base64.RawURLEncoding.EncodeToString(configured), slices.Sorted(maps.Keys(keys)))})
	}
	if len(fs) == 0 {
		return nil, keys
	}
	slices.Sort(pods)
	v := Violation{Rule: RuleJWKS, Pods: pods, Requests: []Request{}, Details: make([]string, len(fs)), Findings: fs}
	for i, f := range fs {
		v.Details[i] = f.Detail
	}
	return []Violation{v}, keys
}

func kidsOf(ks keySet) []string {
	kids := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		kids[i] = k.Kid
	}
	return kids
}

// kidError says why a token's header selects no key of the published JWKS.
type kidError struct {
	// line is KidMissing or KidUnknown.
	line string
	kid  string
}

func (e *kidError) Error() string {
	if e.line == KidMissing {
		return "the header has no kid: a client cannot select a key of the JWKS"
	}
	return fmt.Sprintf("kid %q names no key every fetch of the JWKS publishes", e.kid)
}

// kidLine returns the kid clause err breaks, "" for none.
func kidLine(err error) string {
	var ke *kidError
	if errors.As(err, &ke) {
		return ke.line
	}
	return ""
}

// JWKSOf is the JWKS body the token service publishes for keys, by kid, in kid order
// (service/README.md): what a correct service serves, for fixtures.
func JWKSOf(keys map[string]ed25519.PublicKey) string {
	var b strings.Builder
	b.WriteString(`{"keys":[`)
	for i, kid := range slices.Sorted(maps.Keys(keys)) {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(publishedKey{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(keys[kid]), Kid: kid, Alg: "EdDSA", Use: "sig"})
		b.Write(k)
	}
	b.WriteString("]}")
	return b.String()
}
