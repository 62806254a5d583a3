package apikey_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/service/apikey"
)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := apikey.Generate()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(k, apikey.Prefix))
		if !strings.HasPrefix(k, apikey.Prefix) || err != nil || len(raw) != 32 {
			t.Fatalf("Generate() = %q; want sk_ and base64url of 32 bytes (%v)", k, err)
		}
		if seen[k] {
			t.Fatalf("Generate returned %q twice", k)
		}
		seen[k] = true
	}
}

func TestHash(t *testing.T) {
	// FIPS 180-2 test vector: SHA-256("abc").
	if got, want := apikey.Hash("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Fatalf("Hash(abc) = %s, want %s", got, want)
	}
}

// TestFileRoundTrip: what FileLine writes, ParseFile reads and Authenticate accepts, for the
// right merchant only; several keys per merchant (rotation), comments and blank lines.
func TestFileRoundTrip(t *testing.T) {
	keys := map[string][]string{"m-1": nil, "m-2": nil}
	var file strings.Builder
	file.WriteString("# tokensvc API keys\n\n")
	for _, m := range []string{"m-1", "m-2", "m-1"} {
		k, err := apikey.Generate()
		if err != nil {
			t.Fatal(err)
		}
		keys[m] = append(keys[m], k)
		fmt.Fprintf(&file, "  %s\r\n", apikey.FileLine(m, k))
	}
	set, err := apikey.ParseFile(strings.NewReader(file.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 3 || set.Merchants() != 2 || set[0].Line != 3 || set[2].Line != 5 {
		t.Fatalf("parsed %+v; want 3 entries for 2 merchants on lines 3 to 5", set)
	}
	for m, ks := range keys {
		for _, k := range ks {
			if got, ok := set.Authenticate(k); !ok || got != m {
				t.Errorf("Authenticate(key of %s) = %q, %v", m, got, ok)
			}
		}
	}
	other, _ := apikey.Generate()
	for _, k := range []string{other, "", keys["m-1"][0] + "x", strings.TrimPrefix(apikey.Hash(keys["m-1"][0]), apikey.HashPrefix)} {
		if got, ok := set.Authenticate(k); ok {
			t.Errorf("Authenticate(%q) = %q; want no merchant", k, got)
		}
	}
}

func TestParseFileRefuses(t *testing.T) {
	const secret = "sk_b3BlbnNlc2FtZW9wZW5zZXNhbWVvcGVuc2VzYW1lMTI"
	good := apikey.FileLine("m-1", "k1")
	hex := strings.TrimPrefix(apikey.Hash("k2"), apikey.HashPrefix)
	for name, tc := range map[string]struct {
		file, want string
	}{
		"empty":            {"", "no keys"},
		"comments only":    {"# nothing\n\n", "no keys"},
		"one field":        {good + "\nm-2\n", "line 2: 1 fields"},
		"three fields":     {"m-2 " + apikey.Hash("k2") + " extra\n", "line 1: 3 fields"},
		"no algorithm":     {"m-2 " + hex + "\n", "line 1: want"},
		"other algorithm":  {"m-2 md5:" + hex + "\n", "line 1: want"},
		"uppercase hex":    {"m-2 sha256:" + strings.ToUpper(hex) + "\n", "line 1: want"},
		"short hex":        {"m-2 sha256:" + hex[:63] + "\n", "line 1: want"},
		"not hex":          {"m-2 sha256:" + strings.Repeat("g", 64) + "\n", "line 1: want"},
		"key not its hash": {"# rotated\nm-2 " + secret + "\n", "line 2: a key where its hash belongs"},
		"long merchant":    {strings.Repeat("m", apikey.MaxMerchantIDLen+1) + " " + apikey.Hash("k2") + "\n", "line 1: merchant_id"},
		"control char":     {"m\x01 " + apikey.Hash("k2") + "\n", "line 1: merchant_id"},
		"duplicate key":    {good + "\n" + apikey.FileLine("m-2", "k1") + "\n", "line 2: the same key as line 1"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := apikey.ParseFile(strings.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseFile = %v; want one line containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), hex) {
				t.Fatalf("the error quotes the file: %v", err)
			}
		})
	}
}

func ExampleFileLine() {
	fmt.Println(apikey.FileLine("merchant-1", "sk_example"))
	// Output: merchant-1 sha256:2408e9af1eb560a89e91ab5aca980fe0d50583214de6afc73b0bb9eceaecd844
}

// BenchmarkAuthenticate is the cost authentication adds to every registration: one SHA-256 of
// the key and a constant-time comparison with every entry, here the suite's eight merchants.
func BenchmarkAuthenticate(b *testing.B) {
	var file strings.Builder
	var last string
	for i := range 8 {
		k, err := apikey.Generate()
		if err != nil {
			b.Fatal(err)
		}
		file.WriteString(apikey.FileLine(fmt.Sprintf("m-%d", i), k) + "\n")
		last = k
	}
	set, err := apikey.ParseFile(strings.NewReader(file.String()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := set.Authenticate(last); !ok {
			b.Fatal("the key did not authenticate")
		}
	}
}
