package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeRequest(t *testing.T) {
	long := strings.Repeat("é", MaxIDLen) // 128 characters, 256 bytes: the limit is in characters
	for _, tc := range []struct {
		name      string
		body      string
		want      Request
		wantCode  string
		wantField string
	}{
		{name: "minimal", body: `{"merchant_id":"m","external_id":"e"}`, want: Request{MerchantID: "m", ExternalID: "e"}},
		{name: "full", body: ` {"merchant_id":"m 1","external_id":"e","email":"a@b.c","name":"Ann Lee"} `,
			want: Request{MerchantID: "m 1", ExternalID: "e", Email: "a@b.c", Name: "Ann Lee"}},
		{name: "null optionals", body: `{"merchant_id":"m","external_id":"e","email":null,"name":null}`, want: Request{MerchantID: "m", ExternalID: "e"}},
		{name: "id at limit", body: `{"merchant_id":"` + long + `","external_id":"e"}`, want: Request{MerchantID: long, ExternalID: "e"}},
		{name: "empty body", body: ``, wantCode: "invalid_json"},
		{name: "array", body: `[]`, wantCode: "invalid_json"},
		{name: "string", body: `"x"`, wantCode: "invalid_json"},
		{name: "truncated", body: `{"merchant_id":"m"`, wantCode: "invalid_json"},
		{name: "trailing object", body: `{"merchant_id":"m","external_id":"e"}{}`, wantCode: "invalid_json"},
		{name: "trailing garbage", body: `{"merchant_id":"m","external_id":"e"} x`, wantCode: "invalid_json"},
		{name: "duplicate field", body: `{"merchant_id":"m","merchant_id":"n","external_id":"e"}`, wantCode: "invalid_json"},
		{name: "invalid utf8", body: "{\"merchant_id\":\"m\xff\",\"external_id\":\"e\"}", wantCode: "invalid_json"},
		{name: "unknown field", body: `{"merchant_id":"m","external_id":"e","admin":true}`, wantCode: "unknown_field", wantField: "admin"},
		{name: "case differs", body: `{"Merchant_ID":"m","external_id":"e"}`, wantCode: "unknown_field", wantField: "Merchant_ID"},
		{name: "missing merchant", body: `{"external_id":"e"}`, wantCode: "invalid_field", wantField: "merchant_id"},
		{name: "empty external", body: `{"merchant_id":"m","external_id":""}`, wantCode: "invalid_field", wantField: "external_id"},
		{name: "null required", body: `{"merchant_id":null,"external_id":"e"}`, wantCode: "invalid_field", wantField: "merchant_id"},
		{name: "number id", body: `{"merchant_id":7,"external_id":"e"}`, wantCode: "invalid_field", wantField: "merchant_id"},
		{name: "id too long", body: `{"merchant_id":"` + long + `x","external_id":"e"}`, wantCode: "invalid_field", wantField: "merchant_id"},
		{name: "control char", body: `{"merchant_id":"m\u0000","external_id":"e"}`, wantCode: "invalid_field", wantField: "merchant_id"},
		{name: "newline", body: `{"merchant_id":"m","external_id":"e\n"}`, wantCode: "invalid_field", wantField: "external_id"},
		{name: "surrounding space", body: `{"merchant_id":" m","external_id":"e"}`, wantCode: "invalid_field", wantField: "merchant_id"},
		{name: "bad email", body: `{"merchant_id":"m","external_id":"e","email":"nope"}`, wantCode: "invalid_field", wantField: "email"},
		{name: "email with space", body: `{"merchant_id":"m","external_id":"e","email":"a b@c"}`, wantCode: "invalid_field", wantField: "email"},
		{name: "name too long", body: `{"merchant_id":"m","external_id":"e","name":"` + strings.Repeat("n", MaxNameLen+1) + `"}`, wantCode: "invalid_field", wantField: "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tc.body))
			if tc.wantCode == "" {
				if err != nil || got != tc.want {
					t.Fatalf("DecodeRequest = %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			var apiErr *Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("DecodeRequest error = %v, want *Error %s", err, tc.wantCode)
			}
			if apiErr.Code != tc.wantCode || apiErr.Field != tc.wantField || apiErr.Status != http.StatusBadRequest || apiErr.Message == "" {
				t.Fatalf("error = %+v, want code %s field %q", apiErr, tc.wantCode, tc.wantField)
			}
		})
	}
}

// FuzzDecodeRequest checks that no body panics the decoder, that every rejection is
// a well-formed 4xx, and that every accepted request is valid and survives a round trip.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"merchant_id":"m","external_id":"e"}`,
		`{"merchant_id":"m","external_id":"e","email":"a@b.c","name":"Ann"}`,
		`{"merchant_id":"m","external_id":"e","email":null}`,
		`{"merchant_id":"m","merchant_id":"m","external_id":"e"}`,
		`{"merchant_id":"m","external_id":"e"}{}`,
		`{"merchant_id":"\u00e9\u0000","external_id":"e"}`,
		`{"merchant_id":1}`,
		`[]`, `null`, `{`, ``, "\xff",
	} {
		f.Add([]byte(seed))
	}
	codes := map[string]bool{"invalid_json": true, "unknown_field": true, "invalid_field": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
		if err != nil {
			var apiErr *Error
			if !errors.As(err, &apiErr) || apiErr.Status < 400 || apiErr.Status > 499 || !codes[apiErr.Code] || apiErr.Message == "" {
				t.Fatalf("bad rejection %#v for %q", err, body)
			}
			return
		}
		for _, v := range []string{req.MerchantID, req.ExternalID} {
			if v == "" || utf8.RuneCountInString(v) > MaxIDLen || !printable(v) {
				t.Fatalf("accepted invalid id %q from %q", v, body)
			}
		}
		if strings.ContainsRune(req.MerchantID+req.ExternalID+req.Email+req.Name, 0) {
			t.Fatalf("accepted NUL (PostgreSQL text cannot hold it) from %q", body)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeRequest(again)
		if err != nil || back != req {
			t.Fatalf("round trip of %q: %+v, %v", again, back, err)
		}
	})
}
