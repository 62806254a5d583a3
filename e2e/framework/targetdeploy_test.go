package framework

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// The verifier's settings are the target's defaults, unless the mode or the spec's extra
// settings set their variables.
func TestVerifierOf(t *testing.T) {
	tg := loadTestTarget(t)
	v := tg.Response.Verifier
	def, err := verifierOf(tg, tg.Modes[0].Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ttl, _ := time.ParseDuration(v.TTL.Default); def.Issuer != v.Issuer.Default || def.Audience != v.Audience.Default || def.TTL != ttl {
		t.Errorf("defaults %+v, want the target's %q %q %s", def, v.Issuer.Default, v.Audience.Default, v.TTL.Default)
	}
	set, err := verifierOf(tg, tg.Modes[0].Name, map[string]string{v.TTL.Env: "1h", v.Issuer.Env: "iss"})
	if err != nil || set.TTL != time.Hour || set.Issuer != "iss" || set.Audience != def.Audience {
		t.Errorf("with settings: %+v, %v", set, err)
	}
	if _, err := verifierOf(tg, tg.Modes[0].Name, map[string]string{v.TTL.Env: "a day"}); err == nil {
		t.Error("a ttl that is no duration was accepted")
	}
}

// The generated Secrets are what each target's deploy section asks for: a signing key whose
// public half the suite keeps, and the keys file in the target's own line format.
func TestGeneratedSecrets(t *testing.T) {
	orders, err := target.Load(filepath.Join(repoRoot(), "manifests", "testdata", "orders", target.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tg          *target.Target
		keysSecret  string
		wantSigning bool
		linePrefix  string
	}{
		{loadTestTarget(t), "widgets-keys", true, "tenant=m-1 hash="},
		{orders, "orders-keys", false, ""},
	} {
		keys, err := NewAPIKeys(keyFormat(tc.tg), []string{"m-1"})
		if err != nil {
			t.Fatal(err)
		}
		secrets, key, err := generatedSecrets(tc.tg, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(secrets) != len(tc.tg.Deploy.Secrets) || (key.Public != nil) != tc.wantSigning {
			t.Errorf("%s: secrets %d, signing key %v", tc.tg.Name, len(secrets), key.Public != nil)
		}
		file := string(secrets[tc.keysSecret])
		if want := keyFormat(tc.tg).FileLine("m-1", keys["m-1"]) + "\n"; file != want || !strings.HasPrefix(file, tc.linePrefix) {
			t.Errorf("%s: keys file %q, want %q", tc.tg.Name, file, want)
		}
		if !strings.HasPrefix(keys["m-1"], keyFormat(tc.tg).Prefix) {
			t.Errorf("%s: key %q lacks the prefix %q", tc.tg.Name, keys["m-1"], keyFormat(tc.tg).Prefix)
		}
	}
}
