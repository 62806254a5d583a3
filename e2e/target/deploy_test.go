package target

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// deployFile is goodFile with the deploy parts a bundled target gives: its database on the
// suite's PostgreSQL with the endpoint the suite repoints, generated Secrets, and a key format.
var deployFile = strings.NewReplacer(
	"    existing: {secret: db, urlKey: url}\n", `    bundled:
      role: shop
      database: shop
      secret: db
      userKey: u
      databaseKey: d
      passwordKey: p
      endpoint: {configMap: settings, hostKey: DB_HOST, portKey: DB_PORT}
`,
	"  readiness: {path: /ready}\n", `  readiness: {path: /ready}
  secrets:
    - {name: keys, key: keys.txt, generate: tenant-keys}
    - {name: signing, key: key.pem, generate: ed25519-pem}
`,
	"  auth: {scheme: header, header: X-Api-Key}\n", `  auth:
    scheme: header
    header: X-Api-Key
    keys: {prefix: shop_, line: "{{sha256}} {{tenant}}"}
`).Replace(goodFile)

func TestLoadDeploy(t *testing.T) {
	tg, err := Load(writeTarget(t, deployFile))
	if err != nil {
		t.Fatalf("a valid file is refused:\n%v", err)
	}
	d := tg.Deploy
	if e := d.Database.Bundled.Endpoint; e == nil || e.ConfigMap != "settings" || e.HostKey != "DB_HOST" || e.PortKey != "DB_PORT" {
		t.Errorf("endpoint %+v", e)
	}
	if len(d.Secrets) != 2 || d.Secrets[0] != (GeneratedSecret{Name: "keys", Key: "keys.txt", Generate: "tenant-keys"}) {
		t.Errorf("secrets %+v", d.Secrets)
	}
	k := tg.Create.Auth.Keys
	key, err := k.NewKey()
	if err != nil || !regexp.MustCompile(`^shop_[A-Za-z0-9_-]{43}$`).MatchString(key) {
		t.Errorf("NewKey = %q, %v: want shop_ and 32 bytes of base64url", key, err)
	}
	// sha256("k") in hex.
	if got, want := k.FileLine("t-1", "k"), "8254c329a92850f6d539dd376f4816ee2764517da5e0235514af433164480d7a t-1"; got != want {
		t.Errorf("FileLine = %q, want %q", got, want)
	}
	if got := string(k.File(map[string]string{"t-2": "k", "t-1": "k"})); !strings.HasSuffix(got, " t-2\n") || !strings.Contains(got, " t-1\n8254") {
		t.Errorf("File = %q: want one line per tenant, sorted", got)
	}
}

// TestLoadBadDeploy holds each mistake in the deploy parts to its one line: where, which field,
// what is wrong.
func TestLoadBadDeploy(t *testing.T) {
	for _, c := range []struct {
		name     string
		old, new string
		want     string // the line after "target.yaml:LINE:COL: "
	}{
		{"typo", "generate: tenant-keys", "generat: tenant-keys",
			`deploy.secrets[0]: unknown field "generat" (did you mean "generate"?)`},
		{"unknown kind of secret", "generate: ed25519-pem", "generate: rsa-pem",
			`deploy.secrets[1].generate: "rsa-pem" is not one of ed25519-pem, tenant-keys`},
		{"missing key", "{name: keys, key: keys.txt, ", "{name: keys, ",
			`deploy.secrets[0]: missing required field "key"`},
		{"secret named twice", "{name: signing,", "{name: keys,",
			`deploy.secrets[1].name: Secret "keys" generated twice`},
		{"the database's secret", "{name: keys,", "{name: db,",
			`deploy.secrets[0].name: "db" is the database's Secret, which the suite writes itself`},
		{"tenant keys without a format", `    keys: {prefix: shop_, line: "{{sha256}} {{tenant}}"}` + "\n", "",
			`deploy.secrets[0].generate: tenant-keys needs create.auth.keys: how a key is made and listed`},
		{"key line without tenant", `line: "{{sha256}} {{tenant}}"`, `line: "{{sha256}}"`,
			`create.auth.keys.line: "{{sha256}}" does not hold {{tenant}}: a key would act for no tenant`},
		{"key line without key", `line: "{{sha256}} {{tenant}}"`, `line: "{{tenant}}"`,
			`create.auth.keys.line: "{{tenant}}" holds neither {{key}} nor {{sha256}}: the service could not recognise a key`},
		{"key line placeholder", `line: "{{sha256}} {{tenant}}"`, `line: "{{sha512}} {{tenant}}"`,
			`create.auth.keys.line: unknown placeholder {{sha512}} (known: {{tenant}}, {{key}}, {{sha256}})`},
		{"key format typo", "keys: {prefix:", "keys: {prefx:",
			`create.auth.keys: unknown field "prefx" (did you mean "prefix"?)`},
		{"endpoint typo", "hostKey: DB_HOST", "hostkey: DB_HOST",
			`deploy.database.bundled.endpoint: unknown field "hostkey" (did you mean "hostKey"?)`},
		{"no image", "  images:\n    - name: shop/app\n      build: {script: build.sh, args: [app]}\n", "  images: []\n",
			`deploy.images: give at least the workload's image`},
		{"endpoint missing port", ", portKey: DB_PORT}", "}",
			`deploy.database.bundled.endpoint: missing required field "portKey"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if strings.Count(deployFile, c.old) != 1 {
				t.Fatalf("deployFile has %q %d times", c.old, strings.Count(deployFile, c.old))
			}
			_, err := Load(writeTarget(t, strings.Replace(deployFile, c.old, c.new, 1)))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v, want an ErrorList", err)
			}
			if !regexp.MustCompile(`^target\.yaml:\d+:\d+: ` + regexp.QuoteMeta(c.want) + `$`).MatchString(err.Error()) {
				t.Errorf("got:\n%s\nwant one line:\ntarget.yaml:LINE:COL: %s", err, c.want)
			}
		})
	}
}
