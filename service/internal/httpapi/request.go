package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a registration request.
const (
	MaxBodyBytes  = 8 << 10 // a valid request is far smaller
	MaxIDLen      = 128     // characters of merchant_id and external_id
	MaxEmailBytes = 254     // RFC 5321 path limit
	MaxNameLen    = 256     // characters
)

// Request is a decoded and validated POST /v1/tokens body.
type Request struct {
	MerchantID string `json:"merchant_id"`
	ExternalID string `json:"external_id"`
	Email      string `json:"email,omitempty"`
	Name       string `json:"name,omitempty"`
}

// Error is an error the API reports to the client as {"error": Code, ...}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

func invalidJSON(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: msg}
}

func invalidField(field, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: field, Message: field + " " + msg}
}

type fieldSpec struct {
	dst      func(*Request) *string
	required bool
	check    func(string) string // returns what is wrong, or ""
}

var fields = map[string]fieldSpec{
	"merchant_id": {func(r *Request) *string { return &r.MerchantID }, true, checkID},
	"external_id": {func(r *Request) *string { return &r.ExternalID }, true, checkID},
	"email":       {func(r *Request) *string { return &r.Email }, false, checkEmail},
	"name":        {func(r *Request) *string { return &r.Name }, false, checkName},
}

// requiredOrder fixes which missing field is reported first.
var requiredOrder = []string{"merchant_id", "external_id"}

// DecodeRequest decodes and validates a registration body. It is stricter than
// encoding/json: field names match exactly, duplicates and unknown fields are
// rejected, and the body must be exactly one JSON object. Errors are *Error.
func DecodeRequest(body []byte) (Request, error) {
	var req Request
	if !utf8.Valid(body) {
		return req, invalidJSON("body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return req, invalidJSON("body must be a JSON object")
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, invalidJSON("malformed JSON object")
		}
		key, _ := tok.(string)
		spec, ok := fields[key]
		if !ok {
			return req, &Error{Status: http.StatusBadRequest, Code: "unknown_field", Field: key,
				Message: fmt.Sprintf("unknown field %q", key)}
		}
		if seen[key] {
			return req, invalidJSON(fmt.Sprintf("duplicate field %q", key))
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return req, invalidJSON("malformed JSON value")
		}
		if string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, spec.dst(&req)); err != nil {
			return req, invalidField(key, "must be a string")
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return req, invalidJSON("malformed JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, invalidJSON("body must hold exactly one JSON object")
	}
	for _, key := range requiredOrder {
		if *fields[key].dst(&req) == "" {
			return req, invalidField(key, "is required")
		}
	}
	for _, key := range []string{"merchant_id", "external_id", "email", "name"} {
		v := *fields[key].dst(&req)
		if v == "" {
			continue // optional and absent; required ones were checked above
		}
		if problem := fields[key].check(v); problem != "" {
			return req, invalidField(key, problem)
		}
	}
	return req, nil
}

// printable reports whether s has only printable characters (letters, marks,
// numbers, punctuation, symbols, ASCII space) and no surrounding space.
func printable(s string) bool {
	if strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func checkID(s string) string {
	if n := utf8.RuneCountInString(s); n > MaxIDLen || !printable(s) {
		return fmt.Sprintf("must be 1 to %d printable characters without surrounding spaces", MaxIDLen)
	}
	return ""
}

func checkEmail(s string) string {
	at := strings.LastIndexByte(s, '@')
	if len(s) > MaxEmailBytes || !printable(s) || strings.ContainsRune(s, ' ') || at < 1 || at == len(s)-1 {
		return fmt.Sprintf("must be an address like user@example.com of at most %d bytes", MaxEmailBytes)
	}
	return ""
}

func checkName(s string) string {
	if utf8.RuneCountInString(s) > MaxNameLen || !printable(s) {
		return fmt.Sprintf("must be at most %d printable characters without surrounding spaces", MaxNameLen)
	}
	return ""
}
