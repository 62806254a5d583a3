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

// member is one member of a JSON object: its name and its value as JSON text.
type member struct{ name, raw string }

// object is a body read as a JSON object.
type object []member

// readObject reads body as a JSON object.
func readObject(body string) (object, error) {
	if o, ok := readFlat(strings.TrimSuffix(body, "\n")); ok {
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
		o = append(o, member{name, string(raw)})
	}
	return o, nil
}

// readFlat reads s when it is a flat JSON object that encoding/json would read alike: no
// whitespace, each name once and plain (printable ASCII without escapes), each value a plain
// string, true, false, null or an integer.
func readFlat(s string) (object, bool) {
	rest, ok := strings.CutPrefix(s, "{")
	rest, ok2 := strings.CutSuffix(rest, "}")
	if !ok || !ok2 {
		return nil, false
	}
	o := make(object, 0, 4)
	for rest != "" {
		if rest[0] != '"' {
			return nil, false
		}
		name, after, ok := cutPlain(rest[1:], `":`)
		if !ok || len(after) == 0 {
			return nil, false
		}
		var raw string
		if after[0] == '"' {
			v, _, ok := cutPlain(after[1:], `"`)
			if !ok {
				return nil, false
			}
			raw, after = after[:len(v)+2], after[len(v)+2:]
		} else {
			n := strings.IndexByte(after, ',')
			if n < 0 {
				n = len(after)
			}
			raw, after = after[:n], after[n:]
			if raw != "true" && raw != "false" && raw != "null" && !jsonInteger(raw) {
				return nil, false
			}
		}
		for _, m := range o {
			if m.name == name {
				return nil, false
			}
		}
		o = append(o, member{name, raw})
		if after != "" {
			if after[0] != ',' || len(after) == 1 {
				return nil, false
			}
			after = after[1:]
		}
		rest = after
	}
	return o, true
}

// get returns the value of the member name, as JSON text.
func (o object) get(name string) (string, bool) {
	for _, m := range o {
		if m.name == name {
			return m.raw, true
		}
	}
	return "", false
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
