// Package config loads the token service's configuration from TOKENSVC_* environment
// variables and command-line flags. A flag overrides its environment variable.
package config

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-e2e/stampede/service/apikey"
	"github.com/stampede-e2e/stampede/service/internal/token"
)

// Strategy names how the service creates a customer that its lookup did not find.
type Strategy string

// The create strategies. See service/README.md for what each one demonstrates.
const (
	// StrategyLegacy reproduces the seed's bug: create() re-checks, returns nil when
	// the row exists, and the handler signs a token from that nil.
	StrategyLegacy Strategy = "legacy"
	// StrategyReturnExisting is the seed's one-line fix: create() returns the row it
	// found on re-check. There is still no unique constraint.
	StrategyReturnExisting Strategy = "return-existing"
	// StrategyFailFast relies on a unique constraint; a concurrent loser gets 409.
	StrategyFailFast Strategy = "fail-fast"
	// StrategyAtomic relies on a unique constraint and INSERT ... ON CONFLICT DO NOTHING.
	StrategyAtomic Strategy = "atomic"
)

// Strategies lists every valid strategy, in documentation order.
var Strategies = []Strategy{StrategyLegacy, StrategyReturnExisting, StrategyFailFast, StrategyAtomic}

// AllowBrokenStrategiesEnv is the test-only setting that lets the service start with a broken
// strategy (see Strategy.Broken). The suite's modes for those strategies set it, because
// their canaries must show the bugs; a production deployment never should.
const AllowBrokenStrategiesEnv = "TOKENSVC_ALLOW_BROKEN_STRATEGIES"

// Broken returns what is known to be wrong with the strategy, or "" when nothing is: legacy and
// return-existing exist to demonstrate bugs, not to serve customers.
func (s Strategy) Broken() string {
	switch s {
	case StrategyLegacy:
		return "it signs tokens with an empty subject and can create duplicate customers"
	case StrategyReturnExisting:
		return "it can create duplicate customers, who then get different tokens"
	}
	return ""
}

// ParseStrategy returns the Strategy named s.
func ParseStrategy(s string) (Strategy, error) {
	for _, st := range Strategies {
		if string(st) == s {
			return st, nil
		}
	}
	names := make([]string, len(Strategies))
	for i, st := range Strategies {
		names[i] = string(st)
	}
	return "", fmt.Errorf("unknown create strategy %q (want one of %s)", s, strings.Join(names, ", "))
}

// Config is the effective configuration of one service process.
type Config struct {
	// Addr is the listen address, e.g. ":8080" or "127.0.0.1:0".
	Addr string
	// MetricsAddr is the listen address of /metrics, which the API's listener does not serve.
	MetricsAddr string
	// DatabasePasswordFile is the path of the file holding the database password, if set.
	DatabasePasswordFile string
	// DatabasePassword is the password read from DatabasePasswordFile; it is given to the
	// database driver apart from DatabaseURL.
	DatabasePassword string
	// DatabasePasswordInURL reports that DatabaseURL itself carries a password (the
	// environment holds it; start-up warns).
	DatabasePasswordInURL bool
	// DatabaseURL is a pgx connection string (URL or key=value); pool settings such as
	// pool_max_conns may be given in it.
	DatabaseURL string
	// Strategy is the create strategy.
	Strategy Strategy
	// SigningKeyFile is the path of the PEM PKCS#8 Ed25519 private key, if set.
	SigningKeyFile string
	// SigningKey is the Ed25519 private key loaded from SigningKeyFile.
	SigningKey ed25519.PrivateKey
	// Issuer is the iss claim.
	Issuer string
	// Audience is the aud claim: the API the tokens are meant for.
	Audience string
	// TokenTTL is how long a token is valid after its iat (exp = iat + TokenTTL).
	TokenTTL time.Duration
	// KeyID is the kid; empty means the RFC 7638 thumbprint of the public key.
	KeyID string
	// ShutdownTimeout bounds the graceful shutdown after SIGTERM.
	ShutdownTimeout time.Duration
	// DrainDelay is how long readiness reports false before the listener closes,
	// so that load balancers stop routing to the pod first.
	DrainDelay time.Duration
	// StartupTimeout bounds how long start-up waits for the database.
	StartupTimeout time.Duration
	// MigrationLockTimeout bounds the wait for the migration lock (and every lock the
	// migration takes) at start.
	MigrationLockTimeout time.Duration
	// ConnectTimeout bounds one attempt to open a database connection (TCP connect, TLS and
	// PostgreSQL start-up); 0 means no bound. A connect_timeout in DatabaseURL wins.
	ConnectTimeout time.Duration
	// StatementTimeout is the statement_timeout of every pooled connection; 0 leaves the
	// server's. A statement_timeout in DatabaseURL wins.
	StatementTimeout time.Duration
	// RequestTimeout bounds the database work of one request.
	RequestTimeout time.Duration
	// DBCheckInterval is how often a background check pings the database (each ping
	// bounded by it) for /readyz's report and the tokensvc_database_up gauge.
	DBCheckInterval time.Duration
	// MaxInFlight caps the registrations doing database work at once; more are shed
	// with 503 overloaded.
	MaxInFlight int
	// MaxHeaderBytes caps the request line and headers of one request; more is answered 431.
	MaxHeaderBytes int
	// MaxConns caps the API listener's open connections; more wait in the kernel's accept
	// queue until one closes.
	MaxConns int
	// ReadHeaderTimeout bounds reading one request's headers; IdleTimeout bounds a keep-alive
	// connection's wait for its next request; ReadTimeout bounds reading a whole request.
	ReadHeaderTimeout, IdleTimeout, ReadTimeout time.Duration
	// MemoryLimit is the container's memory limit in bytes (TOKENSVC_MEMORY_LIMIT, from the
	// downward API's limits.memory); 0 means unknown.
	MemoryLimit int64
	// LegacyRecheckDelay is a test knob: a deliberate pause between the lookup and
	// create() that widens the race window. It must stay 0 in production.
	LegacyRecheckDelay time.Duration
	// LogLevel is the lowest level logged: Info by default; Debug adds each refused
	// unauthenticated registration.
	LogLevel slog.Level
	// PodName goes into the X-Served-By header.
	PodName string
	// APIKeysFile is the path of the merchant API keys file (service/apikey's format).
	APIKeysFile string
	// APIKeys are the keys APIKeysFile lists.
	APIKeys apikey.Set
	// AuthDisabled is set by TOKENSVC_AUTH=disabled: registrations need no API key.
	AuthDisabled bool
	// AllowBrokenStrategies is set by TOKENSVC_ALLOW_BROKEN_STRATEGIES=true: a broken strategy
	// may run (the suite's canaries). Without it, one is refused at start.
	AllowBrokenStrategies bool
}

// Load builds a Config from args (without the program name) and the environment
// seen through getenv. It returns flag.ErrHelp when -h is given.
func Load(args []string, getenv func(string) string) (Config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var (
		cfg      Config
		strategy string
	)
	fs := flag.NewFlagSet("tokensvc", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", env("TOKENSVC_ADDR", ":8080"), "listen address (TOKENSVC_ADDR)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", env("TOKENSVC_METRICS_ADDR", ":9090"), "listen address of /metrics (TOKENSVC_METRICS_ADDR)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", getenv("TOKENSVC_DATABASE_URL"), "PostgreSQL connection string, required (TOKENSVC_DATABASE_URL)")
	fs.StringVar(&strategy, "create-strategy", env("TOKENSVC_CREATE_STRATEGY", string(StrategyAtomic)), "legacy|return-existing|fail-fast|atomic (TOKENSVC_CREATE_STRATEGY)")
	fs.StringVar(&cfg.DatabasePasswordFile, "database-password-file", getenv("TOKENSVC_DATABASE_PASSWORD_FILE"), "file holding the database password, e.g. a mounted Secret; keeps it out of the environment (TOKENSVC_DATABASE_PASSWORD_FILE)")
	fs.StringVar(&cfg.SigningKeyFile, "signing-key-file", getenv("TOKENSVC_SIGNING_KEY_FILE"), "Ed25519 private key, PEM PKCS#8, required (TOKENSVC_SIGNING_KEY_FILE)")
	fs.StringVar(&cfg.Issuer, "issuer", env("TOKENSVC_ISSUER", "stampede-tokensvc"), "iss claim (TOKENSVC_ISSUER)")
	fs.StringVar(&cfg.Audience, "audience", env("TOKENSVC_AUDIENCE", "stampede-merchant-api"), "aud claim (TOKENSVC_AUDIENCE)")
	fs.StringVar(&cfg.KeyID, "key-id", getenv("TOKENSVC_KEY_ID"), "kid; default is the RFC 7638 thumbprint of the public key (TOKENSVC_KEY_ID)")
	fs.StringVar(&cfg.PodName, "pod-name", getenv("POD_NAME"), "X-Served-By value; default is the hostname (POD_NAME)")
	fs.StringVar(&cfg.APIKeysFile, "api-keys-file", getenv("TOKENSVC_API_KEYS_FILE"), "merchant API keys, one \"<merchant_id> sha256:<hex>\" a line, required unless auth is disabled (TOKENSVC_API_KEYS_FILE)")
	var auth, logLevel string
	fs.BoolVar(&cfg.AllowBrokenStrategies, "allow-broken-strategies", getenv(AllowBrokenStrategiesEnv) == "true",
		"TEST ONLY: let the known-broken legacy and return-existing strategies run, for the suite's canaries ("+AllowBrokenStrategiesEnv+"=true)")
	fs.StringVar(&logLevel, "log-level", env("TOKENSVC_LOG_LEVEL", "info"), "debug, info, warn or error (TOKENSVC_LOG_LEVEL)")
	fs.StringVar(&auth, "auth", env("TOKENSVC_AUTH", "enabled"), "enabled, or disabled to accept registrations without an API key: never in production (TOKENSVC_AUTH)")
	durations := []struct {
		dst        *time.Duration
		flag, name string
		def        time.Duration
		usage      string
	}{
		{&cfg.TokenTTL, "token-ttl", "TOKENSVC_TOKEN_TTL", 24 * time.Hour, "exp minus iat of every token, at least 1s"},
		{&cfg.ShutdownTimeout, "shutdown-timeout", "TOKENSVC_SHUTDOWN_TIMEOUT", 20 * time.Second, "bound on graceful shutdown"},
		{&cfg.DrainDelay, "drain-delay", "TOKENSVC_DRAIN_DELAY", 0, "time /readyz reports false before the listener closes"},
		{&cfg.StartupTimeout, "startup-timeout", "TOKENSVC_STARTUP_TIMEOUT", 60 * time.Second, "bound on waiting for the database at start"},
		{&cfg.MigrationLockTimeout, "migration-lock-timeout", "TOKENSVC_MIGRATION_LOCK_TIMEOUT", 30 * time.Second, "bound on waiting for the migration lock at start, positive"},
		{&cfg.ConnectTimeout, "connect-timeout", "TOKENSVC_CONNECT_TIMEOUT", 5 * time.Second, "bound on one database connection attempt, 0 for none; a connect_timeout in the database URL wins"},
		{&cfg.StatementTimeout, "statement-timeout", "TOKENSVC_STATEMENT_TIMEOUT", 2 * time.Second, "statement_timeout of every database connection, 0 for the server's; a statement_timeout in the database URL wins"},
		{&cfg.RequestTimeout, "request-timeout", "TOKENSVC_REQUEST_TIMEOUT", 5 * time.Second, "bound on one request's database work"},
		{&cfg.DBCheckInterval, "db-check-interval", "TOKENSVC_DB_CHECK_INTERVAL", time.Second, "how often the database is pinged in the background (and the bound on each ping), positive"},
		{&cfg.ReadHeaderTimeout, "read-header-timeout", "TOKENSVC_READ_HEADER_TIMEOUT", 5 * time.Second, "bound on reading a request's headers; a slower client's connection is closed, positive"},
		{&cfg.ReadTimeout, "read-timeout", "TOKENSVC_READ_TIMEOUT", 10 * time.Second, "bound on reading a whole request, positive"},
		{&cfg.IdleTimeout, "idle-timeout", "TOKENSVC_IDLE_TIMEOUT", 60 * time.Second, "bound on a keep-alive connection's wait for its next request, positive"},
		{&cfg.LegacyRecheckDelay, "legacy-recheck-delay", "TOKENSVC_LEGACY_RECHECK_DELAY", 0, "TEST KNOB: pause between lookup and create() to widen the race window; keep 0"},
	}
	var errs []error
	for _, d := range durations {
		def := d.def
		if v := getenv(d.name); v != "" {
			parsed, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", d.name, err))
			}
			def = parsed
		}
		fs.DurationVar(d.dst, d.flag, def, d.usage+" ("+d.name+")")
	}
	ints := []struct {
		dst        *int
		flag, name string
		def        int
		usage      string
	}{
		{&cfg.MaxInFlight, "max-in-flight", "TOKENSVC_MAX_IN_FLIGHT", 64, "registrations doing database work at once; more are shed with 503 overloaded"},
		{&cfg.MaxHeaderBytes, "max-header-bytes", "TOKENSVC_MAX_HEADER_BYTES", DefaultMaxHeaderBytes, "cap on one request's line and headers; more is answered 431"},
		{&cfg.MaxConns, "max-conns", "TOKENSVC_MAX_CONNS", DefaultMaxConns, "cap on the API listener's open connections; more wait to be accepted"},
	}
	for _, n := range ints {
		def := n.def
		if v := getenv(n.name); v != "" {
			parsed, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a whole number", n.name, v))
			}
			def = parsed
		}
		fs.IntVar(n.dst, n.flag, def, n.usage+" ("+n.name+")")
	}
	if v := getenv("TOKENSVC_MEMORY_LIMIT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("TOKENSVC_MEMORY_LIMIT: %q is not a number of bytes (resourceFieldRef limits.memory, divisor 1)", v))
		case n != 0 && n < 1<<20:
			// A divisor of 1Mi in the manifest gives "128" for 128 MiB: a limit that would
			// make the garbage collector run without pause.
			errs = append(errs, fmt.Errorf("TOKENSVC_MEMORY_LIMIT is %d bytes, less than 1 MiB: is the resourceFieldRef divisor not 1?", n))
		}
		cfg.MemoryLimit = n
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	st, err := ParseStrategy(strategy)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Strategy = st
	if v := getenv(AllowBrokenStrategiesEnv); v != "" && v != "true" && v != "false" {
		errs = append(errs, fmt.Errorf("%s is %q, want true or false", AllowBrokenStrategiesEnv, v))
	}
	if why := st.Broken(); why != "" && !cfg.AllowBrokenStrategies {
		errs = append(errs, fmt.Errorf("create strategy %s is known broken (%s) and is refused: it exists to show the suite catching that bug; to run it for a test, set %s=true, never in production",
			st, why, AllowBrokenStrategiesEnv))
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("TOKENSVC_LOG_LEVEL is %q, want debug, info, warn or error", logLevel))
	}
	if cfg.DatabaseURL == "" {
		errs = append(errs, errors.New("no database: set TOKENSVC_DATABASE_URL"))
	}
	cfg.DatabasePasswordInURL = hasPassword(cfg.DatabaseURL)
	cfg.DatabasePassword, err = loadDatabasePassword(cfg.DatabasePasswordFile, cfg.DatabasePasswordInURL)
	if err != nil {
		errs = append(errs, err)
	}
	if getenv("TOKENSVC_SIGNING_KEY") != "" {
		errs = append(errs, errors.New("TOKENSVC_SIGNING_KEY is not read: a key in the environment leaks (/proc/PID/environ, kubectl describe, child processes); write the PEM to a file (a Secret mounted read-only) and set TOKENSVC_SIGNING_KEY_FILE"))
	}
	for _, d := range durations {
		if *d.dst < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", d.name))
		}
	}
	if cfg.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("TOKENSVC_MAX_IN_FLIGHT is %d, want at least 1", cfg.MaxInFlight))
	}
	for _, d := range []struct {
		v    time.Duration
		name string
	}{{cfg.DBCheckInterval, "TOKENSVC_DB_CHECK_INTERVAL"}, {cfg.ReadHeaderTimeout, "TOKENSVC_READ_HEADER_TIMEOUT"},
		{cfg.ReadTimeout, "TOKENSVC_READ_TIMEOUT"}, {cfg.IdleTimeout, "TOKENSVC_IDLE_TIMEOUT"}} {
		if d.v == 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", d.name))
		}
	}
	errs = append(errs, checkConnLimits(cfg.MaxHeaderBytes, cfg.MaxConns, cfg.MemoryLimit))
	if cfg.MigrationLockTimeout == 0 {
		errs = append(errs, errors.New("TOKENSVC_MIGRATION_LOCK_TIMEOUT must be positive: an unbounded wait is what it exists to prevent"))
	}
	if cfg.TokenTTL < time.Second {
		// exp is in whole seconds; less would make it iat, a token expired when issued.
		errs = append(errs, fmt.Errorf("TOKENSVC_TOKEN_TTL is %s, want at least 1s", cfg.TokenTTL))
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		errs = append(errs, errors.New("TOKENSVC_ISSUER and TOKENSVC_AUDIENCE must not be empty"))
	}
	if cfg.PodName == "" {
		cfg.PodName, _ = os.Hostname()
	}
	cfg.AuthDisabled, cfg.APIKeys, err = loadAPIKeys(auth, cfg.APIKeysFile)
	if err != nil {
		errs = append(errs, err)
	}
	key, err := loadKey(cfg.SigningKeyFile)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.SigningKey = key
	if err := errors.Join(errs...); err != nil {
		// One line: an operator reads this in `kubectl logs` of a crash-looping pod.
		return Config{}, fmt.Errorf("config: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return cfg, nil
}

// DefaultMaxHeaderBytes is the default cap on one request's line and headers: 16 KiB. A
// registration's headers (Host, Authorization with a ~40-byte key, Content-Type, Content-Length,
// and a proxy's X-Forwarded-* and traceparent) stay under 1 KiB, so this leaves 16 times that;
// it is Node.js's default too. Go's default, 1 MiB, lets 130 connections of 1 MB headers push a
// 128 MiB container past its limit.
const DefaultMaxHeaderBytes = 16 << 10

// DefaultMaxConns is the default cap on the API listener's open connections. With 16 KiB headers
// each costs at most ConnBudget = 64 KiB, so 512 cost 32 MiB: a quarter of the container's
// 128 MiB, which leaves the rest for the requests' own work, the pool and the runtime.
const DefaultMaxConns = 512

// ConnBudget is the memory one open connection may take in the server while its headers are
// read, for headers capped at maxHeaderBytes: net/http reads up to maxHeaderBytes plus 4 KiB
// (its bufio.Reader's size) and keeps them twice, as the line read and as the parsed header,
// plus its 4 KiB read and write buffers and the connection goroutine's stack (8 KiB to start,
// more once a handler runs): 24 KiB for those.
func ConnBudget(maxHeaderBytes int) int64 {
	return 2*(int64(maxHeaderBytes)+4<<10) + 24<<10
}

// checkConnLimits checks the header and connection caps, and that the connections' budget
// takes at most half of the container's memory limit when it is known.
func checkConnLimits(maxHeaderBytes, maxConns int, memoryLimit int64) error {
	switch {
	case maxHeaderBytes < 4<<10 || maxHeaderBytes > 1<<20:
		return fmt.Errorf("TOKENSVC_MAX_HEADER_BYTES is %d, want 4096 to 1048576 (the default %d fits any client of this API)", maxHeaderBytes, DefaultMaxHeaderBytes)
	case maxConns < 1:
		return fmt.Errorf("TOKENSVC_MAX_CONNS is %d, want at least 1", maxConns)
	}
	if budget := int64(maxConns) * ConnBudget(maxHeaderBytes); memoryLimit > 0 && budget > memoryLimit/2 {
		return fmt.Errorf("TOKENSVC_MAX_CONNS %d x %d KiB per connection (with TOKENSVC_MAX_HEADER_BYTES %d) is %d MiB, more than half the memory limit of %d MiB: lower either, or raise the container's limit",
			maxConns, ConnBudget(maxHeaderBytes)>>10, maxHeaderBytes, budget>>20, memoryLimit>>20)
	}
	return nil
}

// loadAPIKeys reads the keys file, or reports that authentication is disabled. It fails
// closed: without a file, only an explicit TOKENSVC_AUTH=disabled lets the service start.
func loadAPIKeys(auth, file string) (disabled bool, keys apikey.Set, err error) {
	switch {
	case auth == "disabled" && file != "":
		return false, nil, errors.New("TOKENSVC_AUTH=disabled and TOKENSVC_API_KEYS_FILE are both set: unset one, the service will not guess which you meant")
	case auth == "disabled":
		return true, nil, nil
	case auth != "enabled":
		return false, nil, fmt.Errorf("TOKENSVC_AUTH is %q, want enabled or disabled", auth)
	case file == "":
		return false, nil, errors.New(`no API keys: set TOKENSVC_API_KEYS_FILE to a file of "<merchant_id> sha256:<hex>" lines (or TOKENSVC_AUTH=disabled to accept unauthenticated registrations, never in production)`)
	}
	f, err := os.Open(file)
	if err != nil {
		return false, nil, fmt.Errorf("api keys: %w", err)
	}
	defer f.Close()
	keys, err = apikey.ParseFile(f)
	if err != nil {
		return false, nil, fmt.Errorf("api keys file %s: %w", file, err)
	}
	return false, keys, nil
}

func loadKey(file string) (ed25519.PrivateKey, error) {
	if file == "" {
		return nil, errors.New("no signing key: set TOKENSVC_SIGNING_KEY_FILE to an Ed25519 key, PEM PKCS#8 (e.g. from `openssl genpkey -algorithm ed25519`)")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return token.ParsePrivateKeyPEM(data)
}

// loadDatabasePassword reads the database password from file, without the line break an
// editor or `kubectl create secret --from-file` may leave at its end. "" without a file.
func loadDatabasePassword(file string, inURL bool) (string, error) {
	if file == "" {
		return "", nil
	}
	if inURL {
		return "", errors.New("TOKENSVC_DATABASE_URL has a password and TOKENSVC_DATABASE_PASSWORD_FILE is set: keep the password in the file only")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("database password: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("database password: %s is empty", file)
	}
	return pw, nil
}

// LogValue implements slog.LogValuer; secrets are masked.
func (c Config) LogValue() slog.Value {
	dbPassword := "none"
	switch {
	case c.DatabasePasswordFile != "":
		dbPassword = c.DatabasePasswordFile
	case c.DatabasePasswordInURL:
		dbPassword = "in TOKENSVC_DATABASE_URL"
	}
	apiKeys := "DISABLED"
	if !c.AuthDisabled {
		apiKeys = fmt.Sprintf("%s (%d keys for %d merchants)", c.APIKeysFile, len(c.APIKeys), c.APIKeys.Merchants())
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.String("database_url", RedactDatabaseURL(c.DatabaseURL)),
		slog.String("create_strategy", string(c.Strategy)),
		slog.Bool("allow_broken_strategies", c.AllowBrokenStrategies),
		slog.String("database_password", dbPassword),
		slog.String("signing_key", c.SigningKeyFile),
		slog.String("api_keys", apiKeys),
		slog.String("issuer", c.Issuer),
		slog.String("audience", c.Audience),
		slog.String("token_ttl", c.TokenTTL.String()),
		slog.String("key_id", c.KeyID),
		slog.String("shutdown_timeout", c.ShutdownTimeout.String()),
		slog.String("drain_delay", c.DrainDelay.String()),
		slog.String("startup_timeout", c.StartupTimeout.String()),
		slog.String("migration_lock_timeout", c.MigrationLockTimeout.String()),
		slog.String("connect_timeout", c.ConnectTimeout.String()),
		slog.String("statement_timeout", c.StatementTimeout.String()),
		slog.String("request_timeout", c.RequestTimeout.String()),
		slog.String("db_check_interval", c.DBCheckInterval.String()),
		slog.Int("max_in_flight", c.MaxInFlight),
		slog.Int("max_header_bytes", c.MaxHeaderBytes),
		slog.Int("max_conns", c.MaxConns),
		slog.String("read_header_timeout", c.ReadHeaderTimeout.String()),
		slog.String("read_timeout", c.ReadTimeout.String()),
		slog.String("idle_timeout", c.IdleTimeout.String()),
		slog.Int64("memory_limit", c.MemoryLimit),
		slog.String("legacy_recheck_delay", c.LegacyRecheckDelay.String()),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("pod_name", c.PodName),
	)
}

var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// hasPassword reports whether the URL or key=value connection string s carries a password.
func hasPassword(s string) bool {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, inUser := u.User.Password()
		return inUser || u.Query().Has("password")
	}
	return kvPassword.MatchString(s)
}

// RedactDatabaseURL masks the password in a URL or key=value connection string.
func RedactDatabaseURL(s string) string {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(s, "${1}xxxxx")
}
