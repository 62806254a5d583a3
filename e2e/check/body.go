package check

// Reading an answer's body: a JSON object, read once, and the values the API's pointers name.
// A big run reads a million bodies; the flat bodies services write (plain strings, booleans,
// integers, no whitespace) are read without the reflection of encoding/json, which would
// otherwise cost as much as a third of the signature checks. Any other body goes to
// encoding/json, with the same result.
import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// member is one member of a JSON object: its name and its value as JSON text; plain says
// readFlat read it, so that a string value's text is its value.
type member struct {
	name, raw string
	plain     bool
}

// object is a body read as a JSON object.
type object []member

// readObject reads body as a JSON object, into buf's array when it is large enough: a caller
// that keeps the object no longer than its call passes a stack array, and reading allocates
// nothing.
func readObject(body string, buf object) (object, error) {
	if o, ok := readFlat(strings.TrimSuffix(body, "\n"), buf[:0]); ok {
		return o, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &members); err != nil {
		return nil, err
	}
	if members == nil {
		return nil, errors.New("null, not an object")
	}
	o := make(object, 0, len(members))
	for name, raw := range members {
		o = append(o, member{name: name, raw: string(raw)})
	}
	return o, nil
}

// flatScanner reads the members of a flat JSON object one at a time (readFlat's grammar).
type flatScanner struct{ rest string }

// newFlatScanner starts reading s; ok is false when s is not braced.
func newFlatScanner(s string) (flatScanner, bool) {
	rest, ok := strings.CutPrefix(s, "{")
	rest, ok2 := strings.CutSuffix(rest, "}")
	return flatScanner{rest}, ok && ok2
}

// next returns the next member; done when there is none, ok false when what follows is not
// readFlat's grammar.
func (f *flatScanner) next() (m member, done, ok bool) {
	if f.rest == "" {
		return member{}, true, true
	}
	if f.rest[0] != '"' {
		return member{}, false, false
	}
	name, after, ok := cutPlain(f.rest[1:], `":`)
	if !ok || len(after) == 0 {
		return member{}, false, false
	}
	var raw string
	if after[0] == '"' {
		v, _, ok := cutPlain(after[1:], `"`)
		if !ok {
			return member{}, false, false
		}
		raw, after = after[:len(v)+2], after[len(v)+2:]
	} else {
		n := strings.IndexByte(after, ',')
		if n < 0 {
			n = len(after)
		}
		raw, after = after[:n], after[n:]
		if raw != "true" && raw != "false" && raw != "null" && !jsonInteger(raw) {
			return member{}, false, false
		}
	}
	if after != "" {
		if after[0] != ',' || len(after) == 1 {
			return member{}, false, false
		}
		after = after[1:]
	}
	f.rest = after
	return member{name: name, raw: raw, plain: true}, false, true
}

// readFlat reads s when it is a flat JSON object that encoding/json would read alike: no
// whitespace, each name once and plain (printable ASCII without escapes), each value a plain
// string, true, false, null or an integer.
func readFlat(s string, o object) (object, bool) {
	f, ok := newFlatScanner(s)
	if !ok {
		return nil, false
	}
	for {
		m, done, ok := f.next()
		switch {
		case !ok:
			return nil, false
		case done:
			return o, true
		}
		for _, seen := range o {
			if seen.name == m.name {
				return nil, false
			}
		}
		o = append(o, m)
	}
}

// flatMember returns member name of s, a flat object (readFlat's grammar), without reading the
// rest into an object; ok false when s is not one, or names it twice.
func flatMember(s, name string) (m member, found, ok bool) {
	f, ok := newFlatScanner(s)
	if !ok {
		return member{}, false, false
	}
	for {
		next, done, ok := f.next()
		switch {
		case !ok:
			return member{}, false, false
		case done:
			return m, found, true
		case next.name == name && found:
			return member{}, false, false
		case next.name == name:
			m, found = next, true
		}
	}
}

// stringValue reads m's value as a string.
func (m member) stringValue() (string, bool) {
	if m.plain && len(m.raw) >= 2 && m.raw[0] == '"' {
		return m.raw[1 : len(m.raw)-1], true
	}
	return stringValue(m.raw)
}

// stringMember returns the string that pointer names in body: found false when absent, ok
// false when it is no string or body no JSON object. A flat body and a pointer to one of its
// members are read without allocating.
func stringMember(body, pointer string) (s string, found, ok bool) {
	if name, simple := strings.CutPrefix(pointer, "/"); simple && !strings.ContainsAny(name, "/~") {
		if m, found, flat := flatMember(strings.TrimSuffix(body, "\n"), name); flat {
			if !found {
				return "", false, true
			}
			s, ok = m.stringValue()
			return s, true, ok
		}
	}
	var buf [8]member
	o, err := readObject(body, buf[:0])
	if err != nil {
		return "", false, false
	}
	return o.stringAt(body, pointer)
}

// get returns the value of the member name, as JSON text.
func (o object) get(name string) (string, bool) {
	m, ok := o.member(name)
	return m.raw, ok
}

// member returns the member name.
func (o object) member(name string) (member, bool) {
	for _, m := range o {
		if m.name == name {
			return m, true
		}
	}
	return member{}, false
}

// lookup returns the JSON text of the value pointer (RFC 6901) names in body, read as o.
func (o object) lookup(body, pointer string) (string, bool) {
	if name, ok := strings.CutPrefix(pointer, "/"); ok && !strings.ContainsAny(name, "/~") {
		return o.get(name)
	}
	var v any
	d := json.NewDecoder(strings.NewReader(body))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return "", false
	}
	for tok := range strings.SplitSeq(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return "", false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return "", false
			}
			v = c[i]
		default:
			return "", false
		}
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}

// stringAt returns the string pointer names; found false when absent, ok false when it is no
// string.
func (o object) stringAt(body, pointer string) (s string, found, ok bool) {
	if name, simple := strings.CutPrefix(pointer, "/"); simple && !strings.ContainsAny(name, "/~") {
		m, found := o.member(name)
		if !found {
			return "", false, true
		}
		s, ok = m.stringValue()
		return s, true, ok
	}
	raw, found := o.lookup(body, pointer)
	if !found {
		return "", false, true
	}
	s, ok = stringValue(raw)
	return s, true, ok
}

// stringValue reads the JSON text raw as a string.
func stringValue(raw string) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' {
		// A string readFlat read is plain: its value is its text.
		if v, rest, ok := cutPlain(raw[1:], `"`); ok && rest == "" {
			return v, true
		}
	}
	var s string
	err := json.Unmarshal([]byte(raw), &s)
	return s, err == nil
}

// boolValue reads the JSON text raw as a boolean.
func boolValue(raw string) (b, ok bool) {
	switch raw {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return b, json.Unmarshal([]byte(raw), &b) == nil
}
