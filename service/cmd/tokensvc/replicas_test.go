package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/service/apikey"
	"github.com/stampede-e2e/stampede/service/internal/config"
	"github.com/stampede-e2e/stampede/service/internal/pgtest"
	"github.com/stampede-e2e/stampede/service/internal/store"
	"github.com/stampede-e2e/stampede/service/internal/token"
)

// runMainEnv makes the test binary act as tokensvc. The replicas are this binary
// re-executed rather than a separate `go build`: same code, no extra compile and
// link on a shared machine, and no dependence on a go toolchain at test time.
const runMainEnv = "TOKENSVC_TEST_RUN_MAIN"

var pg *pgtest.Server

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(pgtest.RunTests(m, func(s *pgtest.Server) { pg = s }))
}

func testKeyPEM(t testing.TB) string {
	t.Helper()
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	b, err := token.MarshalPrivateKeyPEM(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testKeyFile writes testKeyPEM to a file, as a mounted Secret would hold it, and returns its path.
func testKeyFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(path, []byte(testKeyPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testMerchants are the merchants the replicas' keys file lists, each with the key keyFor gives.
var testMerchants = []string{"m", "m-burst", "m-other"}

func keyFor(merchant string) string { return "sk_test_key_of_" + merchant }

// keysFile writes the keys file of testMerchants and returns its path.
func keysFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, m := range testMerchants {
		b.WriteString(apikey.FileLine(m, keyFor(m)) + "\n")
	}
	path := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replica is one running tokensvc process.
type replica struct {
	name        string
	addr        string
	metricsAddr string
	cmd         *exec.Cmd
	logs        *lockedBuffer
	// exited is closed once the process has been waited for; exitErr is then set.
	exited  chan struct{}
	exitErr error
}

// wait reports whether the process exited within d, and its exit error.
func (r *replica) wait(d time.Duration) (bool, error) {
	select {
	case <-r.exited:
		return true, r.exitErr
	case <-time.After(d):
		return false, nil
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startReplica starts tokensvc with env and waits for its "listening" log line. Unless env
// says otherwise, the replica reads the keys of testMerchants.
func startReplica(t *testing.T, name string, env map[string]string) *replica {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "POD_NAME="+name, "TOKENSVC_ADDR=127.0.0.1:0",
		"TOKENSVC_METRICS_ADDR=127.0.0.1:0")
	if _, set := env["TOKENSVC_API_KEYS_FILE"]; !set && env["TOKENSVC_AUTH"] == "" {
		cmd.Env = append(cmd.Env, "TOKENSVC_API_KEYS_FILE="+keysFile(t))
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r := &replica{name: name, cmd: cmd, logs: &lockedBuffer{}, exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = r.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = r.logs.Write(append(line, '\n'))
			var entry struct{ Msg, Addr string }
			if json.Unmarshal(line, &entry) != nil {
				continue
			}
			switch entry.Msg {
			case "metrics listening": // logged before "listening"
				r.metricsAddr = entry.Addr
			case "listening":
				select {
				case addr <- entry.Addr:
				default:
				}
			}
		}
		r.exitErr = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		if ok, _ := r.wait(0); !ok {
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		if t.Failed() {
			t.Logf("logs of %s:\n%s", name, tail(r.logs.String(), 20))
		}
	})
	select {
	case a := <-addr:
		r.addr = a
	case <-r.exited:
		t.Fatalf("%s exited at start: %v\n%s", name, r.exitErr, r.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start listening:\n%s", name, r.logs.String())
	}
	return r
}

// stop sends SIGTERM and waits for a clean exit.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ok, err := r.wait(15 * time.Second)
	switch {
	case !ok:
		t.Errorf("%s did not stop within 15s of SIGTERM", r.name)
	case err != nil:
		t.Errorf("%s exited with %v after SIGTERM", r.name, err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// result is the record of one request in a burst; checks run on these afterwards.
type result struct {
	Replica  string // the replica the request was sent to
	ServedBy string // X-Served-By
	Status   int
	Body     string
	Token    string
	Subject  string
	Created  bool
	Err      error
}

// burst sends perReplica identical registrations to every replica at once. Each
// sender dials its own connection before the release, so connections are never
// shared between senders or reused across bursts.
func burst(ctx context.Context, replicas []*replica, perReplica int, body string) []result {
	var (
		wg      sync.WaitGroup
		ready   sync.WaitGroup
		release = make(chan struct{})
		results = make([]result, len(replicas)*perReplica)
	)
	for i := range results {
		r := replicas[i%len(replicas)]
		ready.Add(1)
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DialContext: (&net.Dialer{}).DialContext}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			results[i] = result{Replica: r.name}
			warm, err := client.Get("http://" + r.addr + "/livez")
			if err == nil {
				_, _ = io.Copy(io.Discard, warm.Body)
				warm.Body.Close()
			}
			ready.Done()
			<-release
			if err != nil {
				results[i].Err = err
				return
			}
			results[i] = send(ctx, client, r, body)
		})
	}
	ready.Wait()
	close(release)
	wg.Wait()
	return results
}

// send registers body on r with the key of the body's merchant.
func send(ctx context.Context, client *http.Client, r *replica, body string) result {
	var b struct {
		MerchantID string `json:"merchant_id"`
	}
	_ = json.Unmarshal([]byte(body), &b)
	return sendAs(ctx, client, r, keyFor(b.MerchantID), body)
}

// sendAs registers body on r with key; "" sends no Authorization.
func sendAs(ctx context.Context, client *http.Client, r *replica, key, body string) result {
	res := result{Replica: r.name}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.addr+"/v1/tokens", strings.NewReader(body))
	if err != nil {
		res.Err = err
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		res.Err = err
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	res.Status, res.Body, res.ServedBy, res.Err = resp.StatusCode, string(b), resp.Header.Get("X-Served-By"), err
	if resp.StatusCode == http.StatusOK {
		var tr struct {
			Token   string `json:"token"`
			Created bool   `json:"created"`
		}
		if err := json.Unmarshal(b, &tr); err != nil {
			res.Err = fmt.Errorf("decode body: %w", err)
			return res
		}
		res.Token, res.Created = tr.Token, tr.Created
		c, err := token.UnmarshalClaims(tr.Token)
		if err != nil {
			res.Err = err
			return res
		}
		res.Subject = c.Subject
	}
	return res
}

// burstSummary is what one burst showed.
type burstSummary struct {
	OK, Conflicts, Errors int // 200s, 409s, anything else (including transport errors)
	NullSubjects          int // 200s whose token has an empty subject
	Tokens                int // distinct tokens among the 200s with a subject
	Created               int // 200s claiming they created the customer
	Replicas              int // distinct X-Served-By values
}

// summarize is a pure function over one burst's records.
func summarize(results []result) burstSummary {
	var s burstSummary
	tokens, pods := map[string]bool{}, map[string]bool{}
	for _, r := range results {
		switch {
		case r.Err != nil:
			s.Errors++
			continue
		case r.Status == http.StatusOK && r.Subject == "":
			s.OK++
			s.NullSubjects++
		case r.Status == http.StatusOK:
			s.OK++
			tokens[r.Token] = true
		case r.Status == http.StatusConflict:
			s.Conflicts++
		default:
			s.Errors++
		}
		if r.Created {
			s.Created++
		}
		if r.ServedBy != "" {
			pods[r.ServedBy] = true
		}
	}
	s.Tokens, s.Replicas = len(tokens), len(pods)
	return s
}

// violations lists what a fixed strategy must never do in a burst.
func violations(s burstSummary) []string {
	var v []string
	if s.NullSubjects > 0 {
		v = append(v, fmt.Sprintf("%d token(s) with an empty subject", s.NullSubjects))
	}
	if s.Errors > 0 {
		v = append(v, fmt.Sprintf("%d error response(s)", s.Errors))
	}
	if s.Tokens > 1 {
		v = append(v, fmt.Sprintf("%d different tokens for one customer", s.Tokens))
	}
	if s.Created > 1 {
		v = append(v, fmt.Sprintf("%d responses claim to have created the customer", s.Created))
	}
	if s.OK == 0 {
		v = append(v, "no request succeeded")
	}
	return v
}

func TestSummarizeAndViolations(t *testing.T) {
	good := []result{
		{ServedBy: "a", Status: 200, Token: "t1", Subject: "s", Created: true},
		{ServedBy: "b", Status: 200, Token: "t1", Subject: "s"},
		{ServedBy: "c", Status: 409},
	}
	if v := violations(summarize(good)); len(v) != 0 {
		t.Fatalf("good burst flagged: %v", v)
	}
	for name, bad := range map[string][]result{
		"null subject":  {{ServedBy: "a", Status: 200, Token: "t1", Subject: "s"}, {ServedBy: "b", Status: 200, Token: "t0"}},
		"two tokens":    {{ServedBy: "a", Status: 200, Token: "t1", Subject: "s"}, {ServedBy: "b", Status: 200, Token: "t2", Subject: "s2"}},
		"500":           {{ServedBy: "a", Status: 200, Token: "t1", Subject: "s"}, {ServedBy: "b", Status: 500}},
		"transport":     {{ServedBy: "a", Status: 200, Token: "t1", Subject: "s"}, {Err: errors.New("reset")}},
		"two creators":  {{ServedBy: "a", Status: 200, Token: "t1", Subject: "s", Created: true}, {ServedBy: "b", Status: 200, Token: "t1", Subject: "s", Created: true}},
		"all conflicts": {{ServedBy: "a", Status: 409}, {ServedBy: "b", Status: 409}},
	} {
		if v := violations(summarize(bad)); len(v) == 0 {
			t.Errorf("%s: not flagged", name)
		}
	}
	if s := summarize(good); s.Replicas != 3 || s.Conflicts != 1 || s.OK != 2 {
		t.Errorf("summary = %+v", s)
	}
}

// TestReplicasBurst is the seed's third lesson: three processes on three loopback
// ports share one PostgreSQL and receive synchronized bursts for one new customer.
// legacy must hand out tokens with an empty subject; the fixed strategies never.
func TestReplicasBurst(t *testing.T) {
	bursts := 200
	if testing.Short() {
		bursts = 40
	}
	for _, tc := range []struct {
		strategy config.Strategy
		delay    time.Duration
		bursts   int
	}{
		{config.StrategyLegacy, 0, bursts},
		{config.StrategyLegacy, 5 * time.Millisecond, bursts / 4},
		{config.StrategyReturnExisting, 0, bursts},
		{config.StrategyReturnExisting, 5 * time.Millisecond, bursts / 4},
		{config.StrategyFailFast, 0, bursts},
		{config.StrategyFailFast, 5 * time.Millisecond, bursts / 4},
		{config.StrategyAtomic, 0, bursts},
		{config.StrategyAtomic, 5 * time.Millisecond, bursts / 4},
	} {
		t.Run(fmt.Sprintf("%s/delay=%s", tc.strategy, tc.delay), func(t *testing.T) {
			runBursts(t, tc.strategy, tc.delay, tc.bursts)
		})
	}
}

func runBursts(t *testing.T, strategy config.Strategy, delay time.Duration, bursts int) {
	ctx := context.Background()
	dbURL := pg.NewDatabase(t)
	env := map[string]string{
		"TOKENSVC_DATABASE_URL":         dbURL,
		"TOKENSVC_CREATE_STRATEGY":      string(strategy),
		"TOKENSVC_SIGNING_KEY_FILE":     testKeyFile(t),
		"TOKENSVC_LEGACY_RECHECK_DELAY": delay.String(),
		"TOKENSVC_SHUTDOWN_TIMEOUT":     "10s",
		// legacy and return-existing are refused without it; the fixed strategies ignore it.
		config.AllowBrokenStrategiesEnv: "true",
	}
	replicas := make([]*replica, 3)
	var wg sync.WaitGroup
	for i := range replicas {
		// Start together: the migration advisory lock is part of what is tested.
		wg.Go(func() { replicas[i] = startReplica(t, fmt.Sprintf("replica-%d", i), env) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Record first, check afterwards.
	history := make([][]result, bursts)
	start := time.Now()
	for b := range history {
		body := fmt.Sprintf(`{"merchant_id":"m-burst","external_id":"c-%d","email":"c%d@example.com"}`, b, b)
		history[b] = burst(ctx, replicas, 2, body)
	}
	elapsed := time.Since(start)

	var (
		nullBursts, nullTokens, splitBursts, conflicts, narrow int
		problems                                               []string
	)
	for b, results := range history {
		s := summarize(results)
		if s.Replicas < 2 {
			narrow++
		}
		if s.NullSubjects > 0 {
			nullBursts++
			nullTokens += s.NullSubjects
		}
		if s.Tokens > 1 {
			splitBursts++
		}
		conflicts += s.Conflicts
		if v := violations(s); len(v) > 0 && len(problems) < 5 {
			problems = append(problems, fmt.Sprintf("burst %d: %s", b, strings.Join(v, ", ")))
		}
	}
	pool, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	dups, err := store.DuplicateKeys(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s delay=%s: %d bursts x 6 requests in %s; null-subject: %d/%d bursts (%.1f%%), %d tokens (%.2f per burst); customers with >1 token: %d; duplicate rows: %d customers; 409s: %d",
		strategy, delay, bursts, elapsed.Round(time.Millisecond), nullBursts, bursts, 100*float64(nullBursts)/float64(bursts),
		nullTokens, float64(nullTokens)/float64(bursts), splitBursts, dups, conflicts)

	// Refuse a result we cannot trust: every burst must have reached several pods.
	if narrow > 0 {
		t.Fatalf("inconclusive: %d bursts were served by fewer than 2 replicas", narrow)
	}
	switch strategy {
	case config.StrategyLegacy:
		if delay > 0 && nullBursts == 0 {
			t.Errorf("legacy with recheck delay %s showed no null-subject token in %d bursts: the bug was not reproduced", delay, bursts)
		}
	case config.StrategyReturnExisting:
		if nullTokens > 0 {
			t.Errorf("return-existing signed %d null-subject tokens", nullTokens)
		}
	default:
		if len(problems) > 0 || dups > 0 {
			t.Errorf("%s broke its guarantees (%d duplicate customers): %s", strategy, dups, strings.Join(problems, "; "))
		}
	}
	if broken := strategy.Broken() != ""; strings.Contains(replicas[0].logs.String(), "KNOWN-BROKEN CREATE STRATEGY") != broken {
		t.Errorf("%s: the start-up warning about a known-broken strategy is logged: %v, want %v", strategy, !broken, broken)
	}
	for _, r := range replicas {
		r.stop(t)
		if !strings.Contains(r.logs.String(), "database pool closed") {
			t.Errorf("%s did not close its pool on SIGTERM", r.name)
		}
	}
}
