package check

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestClaimKeys: plainClaims knows every field of tokenClaims by its JSON name, so that a
// field added to tokenClaims cannot be left out of the fast path unnoticed.
func TestClaimKeys(t *testing.T) {
	var tags []string
	for f := range reflect.TypeFor[tokenClaims]().Fields() {
		if tag, ok := f.Tag.Lookup("json"); ok {
			tags = append(tags, strings.Split(tag, ",")[0])
		}
	}
	if !reflect.DeepEqual(tags, claimKeys) {
		t.Fatalf("tokenClaims' JSON names are %q, claimKeys %q", tags, claimKeys)
	}
}

// claimSeeds are payloads at the edges of what plainClaims reads itself.
var claimSeeds = []string{
	`{"iss":"widgets-issuer","sub":"0b6c8a52-0000-4000-8000-00000000000a","aud":"widgets-clients","ten":"m-9-0","ref":"c-9-0","iat":1777636800,"exp":1777723200,"kid":"test"}`,
	`{"iss":"widgets-issuer","sub":"","aud":["a"],"exp":1,"iat":0}`,
	`{}`, ``, `{`, `}`, `{,}`, `{"iss":"a",}`, `{"iss":"a"}x`, ` {"iss":"a"}`, `{"iss" :"a"}`, `{"iss": "a"}`,
	`{"iss":"a","iss":"b"}`, `{"ISS":"a"}`, `{"iss":"a","Iss":"b"}`, `{"Kid":"x","iss":"a"}`,
	`{"iss":"a\"b"}`, `{"iss":"a\u0041"}`, `{"iss":"\u00e9"}`, "{\"iss\":\"\xff\"}", "{\"iss\":\"é\"}",
	`{"iat":01}`, `{"iat":-0}`, `{"iat":-1}`, `{"iat":1.5}`, `{"iat":1e3}`, `{"iat":"123"}`, `{"iat":"x"}`, `{"iat":-}`,
	`{"iat":99999999999999999999999}`, `{"iss":1}`, `{"iss":null}`, `{"iat":null}`, `{"aud":null}`, `{"aud":1}`,
	`{"iss":true}`, `{"x":{"iss":"a"}}`, `{"x":[1,2]}`, `{"x":1,"y":"z"}`, `{"iss":"a","nbf":5}`, `{"iss":"a"}}`,
	`{"iss":"a","":"b"}`, `{"":1}`, `{"iss":"}"}`, `{"iss":"a,b"}`, `{"iss":"a\":"}`,
}

// jsonClaims reads claims with encoding/json alone: the registered ones into tokenClaims' fields,
// the other string claims by name, sorted.
func jsonClaims(b []byte, cl *tokenClaims) error {
	if err := json.Unmarshal(b, cl); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for name, raw := range all {
		var s string
		if !isRegistered(name) && json.Unmarshal(raw, &s) == nil {
			cl.others = append(cl.others, member{name: name, raw: s})
		}
	}
	sortOthers(cl)
	return nil
}

// normalize lists the claims beyond the registered ones in others, sorted, as jsonClaims lists
// them.
func normalize(cl *tokenClaims) {
	cl.others = append(cl.others, cl.inline[:cl.n]...)
	cl.inline, cl.n = [4]member{}, 0
	sortOthers(cl)
}

func sortOthers(cl *tokenClaims) {
	slices.SortFunc(cl.others, func(a, b member) int { return strings.Compare(a.name, b.name) })
}

// FuzzParseClaims: parseClaims gives what json.Unmarshal gives, the claims and whether it
// fails, for any payload.
func FuzzParseClaims(f *testing.F) {
	for _, s := range claimSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want tokenClaims
		gotErr := parseClaims([]byte(s), &got)
		wantErr := jsonClaims([]byte(s), &want)
		normalize(&got)
		if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: parseClaims gives %+v, %v; json.Unmarshal %+v, %v", s, got, gotErr, want, wantErr)
		}
	})
}

// TestPlainClaimsReadsTheService: the service's claims take the fast path (a fast path never
// taken would cost nothing in correctness and all of its speed), and what it reads is json's.
func TestPlainClaimsReadsTheService(t *testing.T) {
	var cl, want tokenClaims
	if !plainClaims(claimSeeds[0], &cl) {
		t.Fatalf("the service's claims %s go to json.Unmarshal", claimSeeds[0])
	}
	if err := jsonClaims([]byte(claimSeeds[0]), &want); err != nil {
		t.Fatal(err)
	}
	if normalize(&cl); !reflect.DeepEqual(cl, want) {
		t.Fatalf("plainClaims reads %+v, json.Unmarshal %+v", cl, want)
	}
}
