package framework

import (
	"bytes"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/target"
	"github.com/stampede-e2e/stampede/service/apikey"
)

// The file the suite writes in the bundled service's key format is one the service reads, and
// each key authenticates as its tenant and no other.
func TestAPIKeysFile(t *testing.T) {
	f := target.KeyFormat{Prefix: apikey.Prefix, Line: "{{tenant}} " + apikey.HashPrefix + "{{sha256}}"}
	keys, err := NewAPIKeys(f, []string{"m-0", "m-1"})
	if err != nil {
		t.Fatal(err)
	}
	set, err := apikey.ParseFile(bytes.NewReader(keys.File(f)))
	if err != nil {
		t.Fatal(err)
	}
	for m, k := range keys {
		if got, ok := set.Authenticate(k); !ok || got != m {
			t.Errorf("key of %s authenticates as %q, %v", m, got, ok)
		}
	}
	if _, ok := set.Authenticate("sk_not-a-key"); ok {
		t.Error("an unknown key authenticated")
	}
	if bytes.Contains(keys.File(f), []byte(keys["m-0"])) {
		t.Error("the file holds a key itself, not its hash")
	}
}
