package config

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/service/apikey"
	"github.com/stampede-e2e/stampede/service/internal/token"
)

func testKeyPEM(t *testing.T) string {
	t.Helper()
	b, err := token.MarshalPrivateKeyPEM(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testKeyFile writes testKeyPEM to a file and returns its path.
func testKeyFile(t *testing.T) string {
	t.Helper()
	return writeFile(t, "signing.pem", testKeyPEM(t))
}

// writeFile writes text to a file name in a temporary directory and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keysFile writes a keys file with lines and returns its path.
func keysFile(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(nil, envOf(map[string]string{
		"TOKENSVC_DATABASE_URL":     "postgres://u:secret@db/x",
		"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
		"TOKENSVC_API_KEYS_FILE":    keysFile(t, apikey.FileLine("m-1", "k1"), apikey.FileLine("m-1", "k2")),
		"POD_NAME":                  "pod-a",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8080" || cfg.Strategy != StrategyAtomic || cfg.Issuer != "stampede-tokensvc" ||
		cfg.LegacyRecheckDelay != 0 || cfg.PodName != "pod-a" || len(cfg.SigningKey) != ed25519.PrivateKeySize ||
		cfg.ConnectTimeout != 5*time.Second || cfg.Audience != "stampede-merchant-api" || cfg.TokenTTL != 24*time.Hour ||
		cfg.MigrationLockTimeout != 30*time.Second || cfg.StatementTimeout != 2*time.Second ||
		cfg.DBCheckInterval != time.Second || cfg.MaxInFlight != 64 ||
		cfg.MetricsAddr != ":9090" || cfg.AuthDisabled || len(cfg.APIKeys) != 2 || cfg.MemoryLimit != 0 ||
		cfg.MaxHeaderBytes != 16<<10 || cfg.MaxConns != 512 || cfg.ReadHeaderTimeout != 5*time.Second ||
		cfg.ReadTimeout != 10*time.Second || cfg.IdleTimeout != 60*time.Second || cfg.LogLevel != slog.LevelInfo {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestLoadFlagsOverrideEnv(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, []byte(testKeyPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"-create-strategy=legacy", "-allow-broken-strategies", "-legacy-recheck-delay=5ms", "-addr=127.0.0.1:0", "-connect-timeout=2s", "-max-in-flight=8"}, envOf(map[string]string{
		"TOKENSVC_DATABASE_URL":     "postgres://db/x",
		"TOKENSVC_SIGNING_KEY_FILE": keyFile,
		"TOKENSVC_AUTH":             "disabled",
		"TOKENSVC_CREATE_STRATEGY":  "atomic",
		"TOKENSVC_ADDR":             ":9999",
		"TOKENSVC_CONNECT_TIMEOUT":  "9s",
		"TOKENSVC_MAX_IN_FLIGHT":    "99",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Strategy != StrategyLegacy || cfg.LegacyRecheckDelay != 5*time.Millisecond || cfg.Addr != "127.0.0.1:0" ||
		cfg.ConnectTimeout != 2*time.Second || cfg.MaxInFlight != 8 || !cfg.AuthDisabled {
		t.Fatalf("flags did not win: %+v", cfg)
	}
}

func TestLoadErrorsAreOneLine(t *testing.T) {
	key := testKeyFile(t)
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"no key":     {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db"}, "no signing key"},
		"bad key":    {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": writeFile(t, "junk.pem", "junk")}, "no PEM block"},
		"key in env": {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY": testKeyPEM(t)}, "TOKENSVC_SIGNING_KEY is not read: a key in the environment leaks"},
		"password twice": {map[string]string{"TOKENSVC_DATABASE_URL": "host=db password=p", "TOKENSVC_SIGNING_KEY_FILE": key,
			"TOKENSVC_DATABASE_PASSWORD_FILE": writeFile(t, "pw", "p")}, "TOKENSVC_DATABASE_URL has a password and TOKENSVC_DATABASE_PASSWORD_FILE is set"},
		"empty password":      {map[string]string{"TOKENSVC_DATABASE_URL": "host=db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_DATABASE_PASSWORD_FILE": writeFile(t, "pw", "\n")}, "pw is empty"},
		"no password file":    {map[string]string{"TOKENSVC_DATABASE_URL": "host=db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_DATABASE_PASSWORD_FILE": "/nonexistent/pw"}, "database password: open /nonexistent/pw"},
		"missing key file":    {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": "/nonexistent/k.pem"}, "no such file"},
		"no database":         {map[string]string{"TOKENSVC_SIGNING_KEY_FILE": key}, "TOKENSVC_DATABASE_URL"},
		"unknown strategy":    {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_CREATE_STRATEGY": "yolo"}, `unknown create strategy "yolo"`},
		"bad duration":        {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_SHUTDOWN_TIMEOUT": "soon"}, "TOKENSVC_SHUTDOWN_TIMEOUT"},
		"everything wrong":    {map[string]string{"TOKENSVC_CREATE_STRATEGY": "yolo"}, "no signing key"},
		"zero token ttl":      {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_TOKEN_TTL": "0s"}, "TOKENSVC_TOKEN_TTL is 0s, want at least 1s"},
		"bad max in flight":   {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MAX_IN_FLIGHT": "lots"}, "TOKENSVC_MAX_IN_FLIGHT"},
		"memory limit in MiB": {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MEMORY_LIMIT": "128"}, "divisor"},
		"memory limit text":   {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MEMORY_LIMIT": "128Mi"}, "TOKENSVC_MEMORY_LIMIT"},
		"zero in flight":      {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MAX_IN_FLIGHT": "0"}, "TOKENSVC_MAX_IN_FLIGHT is 0, want at least 1"},
		"no lock timeout":     {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MIGRATION_LOCK_TIMEOUT": "0"}, "TOKENSVC_MIGRATION_LOCK_TIMEOUT must be positive"},
		"headers too small":   {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MAX_HEADER_BYTES": "1024"}, "TOKENSVC_MAX_HEADER_BYTES is 1024, want 4096 to 1048576"},
		"headers too large":   {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MAX_HEADER_BYTES": "2000000"}, "TOKENSVC_MAX_HEADER_BYTES is 2000000"},
		"no conns":            {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MAX_CONNS": "0"}, "TOKENSVC_MAX_CONNS is 0, want at least 1"},
		"conns text":          {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MAX_CONNS": "many"}, `TOKENSVC_MAX_CONNS: "many" is not a whole number`},
		// 1024 x 64 KiB = 64 MiB, more than half of 100 MiB.
		"conns over memory": {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_MAX_CONNS": "1024", "TOKENSVC_MEMORY_LIMIT": "104857600"},
			"TOKENSVC_MAX_CONNS 1024 x 64 KiB per connection (with TOKENSVC_MAX_HEADER_BYTES 16384) is 64 MiB, more than half the memory limit of 100 MiB"},
		"no header timeout": {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_READ_HEADER_TIMEOUT": "0s"}, "TOKENSVC_READ_HEADER_TIMEOUT must be positive"},
		"no idle timeout":   {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_IDLE_TIMEOUT": "0s"}, "TOKENSVC_IDLE_TIMEOUT must be positive"},
		"bad log level":     {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_LOG_LEVEL": "loud"}, `TOKENSVC_LOG_LEVEL is "loud", want debug, info, warn or error`},
		"sub-second ttl":    {map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": key, "TOKENSVC_TOKEN_TTL": "500ms"}, "TOKENSVC_TOKEN_TTL"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(nil, envOf(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error = %q, want one line containing %q", err, tc.want)
			}
		})
	}
}

// TestBrokenStrategies: legacy and return-existing are refused at start, with one line that
// says what to set, unless TOKENSVC_ALLOW_BROKEN_STRATEGIES=true allows them; the fixed
// strategies need nothing.
func TestBrokenStrategies(t *testing.T) {
	for _, st := range Strategies {
		for _, allow := range []string{"", "false", "true"} {
			t.Run(fmt.Sprintf("%s/allow=%q", st, allow), func(t *testing.T) {
				cfg, err := Load(nil, envOf(map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
					"TOKENSVC_AUTH": "disabled", "TOKENSVC_CREATE_STRATEGY": string(st), AllowBrokenStrategiesEnv: allow}))
				broken := st == StrategyLegacy || st == StrategyReturnExisting
				switch {
				case broken && allow != "true":
					if err == nil || !strings.Contains(err.Error(), "create strategy "+string(st)+" is known broken") ||
						!strings.Contains(err.Error(), "set TOKENSVC_ALLOW_BROKEN_STRATEGIES=true") || strings.Contains(err.Error(), "\n") {
						t.Errorf("error = %v, want one line refusing %s and naming the setting", err, st)
					}
				case err != nil:
					t.Errorf("refused: %v", err)
				case cfg.Strategy != st || cfg.AllowBrokenStrategies != (allow == "true"):
					t.Errorf("strategy %s, allowed %v", cfg.Strategy, cfg.AllowBrokenStrategies)
				}
			})
		}
	}
	_, err := Load(nil, envOf(map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
		"TOKENSVC_AUTH": "disabled", AllowBrokenStrategiesEnv: "yes"}))
	if err == nil || !strings.Contains(err.Error(), `TOKENSVC_ALLOW_BROKEN_STRATEGIES is "yes", want true or false`) {
		t.Errorf("a setting neither true nor false: %v", err)
	}
}

// TestConnLimitsFitMemory: the defaults fit the manifests' 128 MiB container, at most half of it.
func TestConnLimitsFitMemory(t *testing.T) {
	if err := checkConnLimits(DefaultMaxHeaderBytes, DefaultMaxConns, 128<<20); err != nil {
		t.Errorf("the defaults do not fit 128 MiB: %v", err)
	}
	if got := ConnBudget(DefaultMaxHeaderBytes); got != 64<<10 {
		t.Errorf("ConnBudget(%d) = %d, want 64 KiB", DefaultMaxHeaderBytes, got)
	}
	if err := checkConnLimits(1<<20, DefaultMaxConns, 128<<20); err == nil {
		t.Error("1 MiB headers on 512 connections in 128 MiB: accepted")
	}
	if err := checkConnLimits(1<<20, 100000, 0); err != nil {
		t.Errorf("no memory limit known: %v", err)
	}
}

// TestLoadAPIKeys: the service fails closed. Without a keys file it starts only when told
// explicitly to run without authentication.
func TestLoadAPIKeys(t *testing.T) {
	base := map[string]string{"TOKENSVC_DATABASE_URL": "postgres://db", "TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t)}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	bad := keysFile(t, "# keys", apikey.FileLine("m-1", "k1"), "m-2 sha256:nothex")
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"no keys file":   {with(), "no API keys: set TOKENSVC_API_KEYS_FILE"},
		"missing file":   {with("TOKENSVC_API_KEYS_FILE", "/nonexistent/keys"), "no such file"},
		"malformed file": {with("TOKENSVC_API_KEYS_FILE", bad), "api keys file " + bad + ": line 3: want"},
		"both":           {with("TOKENSVC_AUTH", "disabled", "TOKENSVC_API_KEYS_FILE", bad), "both set"},
		"unknown mode":   {with("TOKENSVC_AUTH", "off"), `TOKENSVC_AUTH is "off", want enabled or disabled`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(nil, envOf(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error = %v, want one line containing %q", err, tc.want)
			}
		})
	}
	cfg, err := Load(nil, envOf(with("TOKENSVC_AUTH", "disabled")))
	if err != nil || !cfg.AuthDisabled || cfg.APIKeys != nil {
		t.Fatalf("TOKENSVC_AUTH=disabled: %+v, %v", cfg, err)
	}
}

func TestLoadHelp(t *testing.T) {
	if _, err := Load([]string{"-h"}, envOf(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Load(-h) = %v, want flag.ErrHelp", err)
	}
}

func TestLogValueMasksSecrets(t *testing.T) {
	cfg, err := Load(nil, envOf(map[string]string{
		"TOKENSVC_DATABASE_URL":     "postgres://user:hunter2@db:5432/x?sslmode=disable",
		"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
		"TOKENSVC_API_KEYS_FILE":    keysFile(t, "# rotation", apikey.FileLine("m-1", "k1"), apikey.FileLine("m-1", "k2"), apikey.FileLine("m-2", "k3")),
	}))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	slog.New(slog.NewTextHandler(&out, nil)).Info("config", "config", cfg)
	if strings.Contains(out.String(), "hunter2") || strings.Contains(out.String(), "PRIVATE") ||
		strings.Contains(out.String(), strings.TrimPrefix(apikey.Hash("k1"), apikey.HashPrefix)) {
		t.Fatalf("secret leaked: %s", out.String())
	}
	if !strings.Contains(out.String(), "create_strategy=atomic") || !strings.Contains(out.String(), "connect_timeout=5s") ||
		!strings.Contains(out.String(), "(3 keys for 2 merchants)") {
		t.Fatalf("config not logged: %s", out.String())
	}
}

// TestLoadDatabasePasswordFile: the password is read from its file, without a final line
// break, and logged as where it came from; the URL then carries none.
func TestLoadDatabasePasswordFile(t *testing.T) {
	for _, content := range []string{"s3cret pw", "s3cret pw\n", "s3cret pw\r\n"} {
		file := writeFile(t, "pw", content)
		cfg, err := Load(nil, envOf(map[string]string{
			"TOKENSVC_DATABASE_URL": "host=db user=tokensvc dbname=x", "TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
			"TOKENSVC_AUTH": "disabled", "TOKENSVC_DATABASE_PASSWORD_FILE": file,
		}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DatabasePassword != "s3cret pw" || cfg.DatabasePasswordInURL {
			t.Errorf("file %q: password %q, in URL %v; want %q from the file", content, cfg.DatabasePassword, cfg.DatabasePasswordInURL, "s3cret pw")
		}
		var out strings.Builder
		slog.New(slog.NewTextHandler(&out, nil)).Info("config", "config", cfg)
		if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), "database_password="+file) {
			t.Errorf("logged config: %s; want the file's path and not the password", out.String())
		}
	}
	for dsn, want := range map[string]bool{"postgres://u:p@h/db": true, "postgres://u@h/db?password=p": true,
		"host=h password=p": true, "postgres://u@h/db": false, "host=h user=u": false} {
		if got := hasPassword(dsn); got != want {
			t.Errorf("hasPassword(%q) = %v, want %v", dsn, got, want)
		}
	}
}

func TestRedactDatabaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h/db":                    "postgres://u:xxxxx@h/db",
		"postgresql://h/db?password=p&sslmode=x": "postgresql://h/db?password=xxxxx&sslmode=x",
		"host=h password=p dbname=d":             "host=h password=xxxxx dbname=d",
		"host=h password = 'a b\\' c' dbname=d":  "host=h password = xxxxx dbname=d",
		"postgres://u@h/db":                      "postgres://u@h/db",
	} {
		if got := RedactDatabaseURL(in); got != want {
			t.Errorf("RedactDatabaseURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func ExampleParseStrategy() {
	_, err := ParseStrategy("optimistic")
	fmt.Println(err)
	// Output: unknown create strategy "optimistic" (want one of legacy, return-existing, fail-fast, atomic)
}
