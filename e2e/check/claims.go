package check

import (
	"encoding/json"
	"strings"
)

// claimKeys are the JSON names of tokenClaims' registered fields; TestClaimKeys holds them to
// its tags.
var claimKeys = []string{"iss", "sub", "aud", "iat", "exp", "nbf"}

// parseClaims decodes a token's claims into cl as json.Unmarshal does. Claims as the service
// writes them (a flat object of plain ASCII strings and integers, no spaces) are read without
// the reflection of encoding/json, which costs a big run about a tenth of its CPU; anything
// else goes to json.Unmarshal.
func parseClaims(b []byte, cl *tokenClaims) error {
	if plainClaims(string(b), cl) {
		return nil
	}
	*cl = tokenClaims{}
	if err := json.Unmarshal(b, cl); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for name, raw := range all {
		if isRegistered(name) {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			cl.others = append(cl.others, member{name: name, raw: s})
		}
	}
	return nil
}

// isRegistered says json would read the claim name into a registered field of tokenClaims (it
// matches names case-insensitively).
func isRegistered(name string) bool {
	for _, k := range claimKeys {
		if strings.EqualFold(name, k) {
			return true
		}
	}
	return false
}

// plainClaims fills cl from s and reports true when s is a JSON object that json.Unmarshal
// would read into cl with the same result: no whitespace, each key at most once, every string
// printable ASCII without escapes (json would replace invalid UTF-8 and read escapes), every
// number an integer in JSON's grammar, strings in string fields and aud, integers in number
// fields, and no other key that json would match to a field case-insensitively.
func plainClaims(s string, cl *tokenClaims) bool {
	body, ok := strings.CutPrefix(s, "{")
	body, ok2 := strings.CutSuffix(body, "}")
	if !ok || !ok2 {
		return false
	}
	var seen [6]bool
	for body != "" {
		key, str, num, rest, ok := cutMember(body)
		if !ok || !cl.setMember(key, str, num, &seen) {
			return false
		}
		body = rest
	}
	return true
}

// cutMember cuts the first member off body, a non-empty JSON object's members without its
// braces: its key, its value as a plain string (str) or an integer (num), and the members
// after it. ok is false unless the member is one that plainClaims reads as json would.
func cutMember(body string) (key, str, num, rest string, ok bool) {
	if body[0] != '"' {
		return "", "", "", "", false
	}
	if key, rest, ok = cutPlain(body[1:], `":`); !ok {
		return "", "", "", "", false
	}
	if strings.HasPrefix(rest, `"`) {
		if str, rest, ok = cutPlain(rest[1:], `"`); !ok {
			return "", "", "", "", false
		}
	} else {
		n := strings.IndexByte(rest, ',')
		if n < 0 {
			n = len(rest)
		}
		if num, rest = rest[:n], rest[n:]; !jsonInteger(num) {
			return "", "", "", "", false
		}
	}
	if rest != "" {
		if rest[0] != ',' || len(rest) == 1 {
			return "", "", "", "", false
		}
		rest = rest[1:]
	}
	return key, str, num, rest, true
}

// setMember sets the registered claim key to str or num, or keeps key's string among the
// others (seen marks the registered claims set so far). It is false where json.Unmarshal would
// read the member otherwise: a key that matches a claim only case-insensitively, a claim
// repeated, a number where a string belongs or the reverse.
func (cl *tokenClaims) setMember(key, str, num string, seen *[6]bool) bool {
	k := -1
	for i, name := range claimKeys {
		if strings.EqualFold(key, name) {
			k = i
		}
	}
	switch {
	case k < 0:
		return cl.addOther(key, str, num)
	case key != claimKeys[k] || seen[k]:
		return false
	}
	seen[k] = true
	isNum := num != ""
	switch key {
	case "iat", "exp", "nbf":
		if !isNum {
			return false
		}
	default:
		if isNum {
			return false
		}
	}
	switch key {
	case "iss":
		cl.Issuer = str
	case "sub":
		cl.Subject = str
	case "aud":
		cl.Audience = json.RawMessage(`"` + str + `"`)
	case "iat":
		cl.IssuedAt = json.Number(num)
	case "exp":
		cl.ExpiresAt = json.Number(num)
	case "nbf":
		cl.NotBefore = json.Number(num)
	}
	return true
}

// addOther keeps the string member key beyond the registered claims in cl.inline, and skips a
// number, which json reads into no string claim. It is false when json would read the members
// otherwise than inline holds them: json keeps the last of a repeated name, and more than
// inline holds go to json too.
func (cl *tokenClaims) addOther(key, str, num string) bool {
	for _, m := range cl.inline[:cl.n] {
		if m.name == key {
			return false // a string repeated, even as a number: json keeps the last
		}
	}
	if num != "" {
		return true
	}
	if cl.n == len(cl.inline) {
		return false
	}
	cl.inline[cl.n] = member{name: key, raw: str}
	cl.n++
	return true
}

// jsonInteger says whether s is an integer as JSON writes one: -?(0|[1-9][0-9]*).
func jsonInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
