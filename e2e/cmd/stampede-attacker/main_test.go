package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/attack"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

// testRequest is a create request whose key goes as a bearer token and whose body names the
// entity; registerRequest its body as the stand-in service reads it.
var testRequest = request.Template{
	Method: http.MethodPost, Path: "/create", Headers: map[string]string{"Content-Type": "application/json"},
	Observe: request.Observe{PodHeader: testPodHeader, IntervalHeader: traffic.ServerTimingHeader},
	Auth:    request.Auth{Header: traffic.AuthorizationHeader, Bearer: true},
	Body:    map[string]string{"tenant": "{{tenant}}", "key": "{{key}}", "email": "{{email}}", "name": "{{name}}"},
}

type registerRequest struct {
	Tenant    string `json:"tenant"`
	EntityKey string `json:"key"`
}

// TestPodsShareEveryBurst runs the command three times at once, as the Job's three pods, each
// with its completion index, against a fake token service that answers 409 to the first
// request of every customer (so each pod's retry phase runs): the outputs, read back as from
// the pods' logs and merged onto a spec's clock, must hold every request of every burst once,
// each customer's burst leaving together at its scheduled instant.
func TestPodsShareEveryBurst(t *testing.T) {
	const customers, burst, pods = 5, 6, 3
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req registerRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("decode: %v", err)
		}
		mu.Lock()
		seen[req.Tenant+"/"+req.EntityKey]++
		n := seen[req.Tenant+"/"+req.EntityKey]
		mu.Unlock()
		w.Header().Set(testPodHeader, "pod-"+strconv.Itoa(n%2))
		if n == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error":"conflict"}`)
			return
		}
		fmt.Fprint(w, `{"token":"t","customer_id":"x","created":false}`)
	}))
	t.Cleanup(svc.Close)

	cs := traffic.Customers(77, customers, 2)
	clock := history.NewClock(time.Now()) // the spec's, started before the Job
	// A gap wide enough that a busy machine's scheduling delays cannot carry one burst into the
	// next: the test is about where each burst is anchored, not how tight it is.
	p := attack.Plan{URL: svc.URL, Request: testRequest, Customers: cs, Burst: burst, Gap: 250 * time.Millisecond,
		Retry: traffic.RetryParams{MaxAttempts: 2, Backoff: time.Millisecond}, Start: time.Now().Add(300 * time.Millisecond),
		Shard: traffic.Shard{Count: pods}}
	logs := make([]bytes.Buffer, pods)
	codes := make([]int, pods)
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			var stdout, stderr bytes.Buffer
			codes[i] = run(p.Args(), func(k string) string {
				return map[string]string{attack.IndexEnv: strconv.Itoa(i), "POD_NAME": fmt.Sprintf("attacker-%d", i)}[k]
			}, &stdout, &stderr)
			// A pod's log: both streams, stderr's lines first here.
			logs[i].Write(stderr.Bytes())
			logs[i].Write(stdout.Bytes())
		})
	}
	wg.Wait()
	var outs []attack.Output
	for i := range pods {
		if codes[i] != 0 {
			t.Fatalf("pod %d exited %d:\n%s", i, codes[i], logs[i].String())
		}
		out, err := attack.ParseOutput(logs[i].Bytes())
		if err != nil {
			t.Fatalf("pod %d: %v\n%s", i, err, logs[i].String())
		}
		if out.Pod != fmt.Sprintf("attacker-%d", i) || out.Slack <= 0 || len(out.Log) == 0 {
			t.Errorf("pod %d: trailer %+v, %d log lines", i, out.Trailer, len(out.Log))
		}
		outs = append(outs, out)
	}
	ops, err := attack.Merge(outs, p, clock.Base(), attack.ReserveSeqs(history.NewSeqs(), cs, burst))
	if err != nil {
		t.Fatal(err)
	}
	bursts := map[int][]time.Duration{}
	retries := 0
	for _, op := range ops {
		if op.Phase == history.PhaseRetry {
			retries++
			continue
		}
		bursts[op.Customer.Index] = append(bursts[op.Customer.Index], op.Call)
	}
	if retries != customers {
		t.Errorf("%d retries, want one per customer (its first request got 409)", retries)
	}
	offset := p.Start.Sub(clock.Base())
	for i, calls := range bursts {
		if len(calls) != burst {
			t.Errorf("customer %d: %d burst requests, want %d", i, len(calls), burst)
		}
		due := offset + time.Duration(i)*p.Gap
		for _, c := range calls {
			// Never before its instant; the upper bound only catches a wrong instant (seconds
			// off), not scheduling delay on a loaded machine, which is no defect.
			if c < due || c > due+2*time.Second {
				t.Errorf("customer %d: a request left at %s on the spec's clock, its burst was due at %s", i, c, due)
			}
		}
	}
	if !strings.Contains(outs[0].Log[0], "plan") {
		t.Errorf("the first log line should state the plan: %q", outs[0].Log[0])
	}
}

// TestPodsCarryKeys runs two pods with a keys file, as the Job mounts it: every request must
// carry the key its op names, own or foreign as the plan picks, the service must see which, and
// no key may appear in a pod's output.
func TestPodsCarryKeys(t *testing.T) {
	keys := map[string]string{"m-0": "sk_test_zero", "m-1": "sk_test_one"}
	tenantOf := map[string]string{"sk_test_zero": "m-0", "sk_test_one": "m-1"}
	// An orders API's request: the key bare in X-Api-Key, the entity named by Idempotency-Key.
	orders := request.Template{Method: http.MethodPost, Path: "/orders/{{tenant}}",
		Headers: map[string]string{"Idempotency-Key": "{{key}}"}, Auth: request.Auth{Header: "X-Api-Key"},
		Body: map[string]string{"item": "{{name}}"}}
	var (
		mu   sync.Mutex
		sent = map[string]string{} // request id -> tenant whose key arrived
	)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["item"] == "" || r.Header.Get("Idempotency-Key") == "" {
			t.Errorf("body %v (%v), Idempotency-Key %q: want the template's", body, err, r.Header.Get("Idempotency-Key"))
		}
		req := registerRequest{Tenant: strings.TrimPrefix(r.URL.Path, "/orders/")}
		m := tenantOf[r.Header.Get("X-Api-Key")]
		mu.Lock()
		sent[r.Header.Get(traffic.RequestHeader)] = m
		mu.Unlock()
		w.Header().Set(testPodHeader, "pod-0")
		if m != req.Tenant {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":"forbidden"}`)
			return
		}
		fmt.Fprint(w, `{"token":"t","customer_id":"x","created":false}`)
	}))
	t.Cleanup(svc.Close)
	file, err := attack.FormatKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(path, file, 0o400); err != nil {
		t.Fatal(err)
	}
	p := attack.Plan{URL: svc.URL, Request: orders, Customers: traffic.Customers(21, 8, 2), Burst: 4, Gap: 20 * time.Millisecond,
		Start: time.Now().Add(200 * time.Millisecond), Shard: traffic.Shard{Count: 2}, KeysFile: path,
		Foreign: traffic.ForeignKeys{Customers: 0.5, Every: 2}}
	outputs := make([]bytes.Buffer, 2)
	var wg sync.WaitGroup
	for i := range outputs {
		wg.Go(func() {
			var stderr bytes.Buffer
			if code := run(append(p.Args(), "-index="+strconv.Itoa(i)), func(string) string { return "" }, &outputs[i], &stderr); code != 0 {
				t.Errorf("pod %d exited %d:\n%s", i, code, stderr.String())
			}
			outputs[i].Write(stderr.Bytes())
		})
	}
	wg.Wait()
	foreign := 0
	for i := range outputs {
		for k := range keys {
			if strings.Contains(outputs[i].String(), keys[k]) {
				t.Errorf("pod %d's output holds %s's key", i, k)
			}
		}
		out, err := attack.ParseOutput(outputs[i].Bytes())
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		for _, op := range out.Ops {
			if sent[op.ID()] != op.KeyTenant || op.KeyTenant == "" {
				t.Errorf("pod %d, %s: the service saw %q's key, the history says %q", i, op.ID(), sent[op.ID()], op.KeyTenant)
			}
			if op.KeyTenant != op.Customer.Tenant {
				foreign++
			}
		}
	}
	if foreign == 0 {
		t.Error("no request carried a foreign key: the plan's pick did not reach the pods")
	}
}

func TestLatePodSendsNothing(t *testing.T) {
	p := attack.Plan{URL: "http://127.0.0.1:1", Request: testRequest, Customers: traffic.Customers(1, 1, 1), Burst: 2, Gap: time.Millisecond,
		Start: time.Now().Add(-time.Minute), Shard: traffic.Shard{Count: 1}}
	var stdout, stderr bytes.Buffer
	code := run(append(p.Args(), "-index=0"), func(string) string { return "" }, &stdout, &stderr)
	if code != 3 {
		t.Fatalf("exit %d, want 3:\n%s", code, stderr.String())
	}
	out, err := attack.ParseOutput(stdout.Bytes())
	if err != nil || len(out.Ops) != 0 || !strings.Contains(out.Error, "after the agreed start") || out.Slack > -time.Minute {
		t.Errorf("output %+v, err %v", out, err)
	}
}

// TestServeClock: a Job's pod answers clock readings while it runs, until closed.
func TestServeClock(t *testing.T) {
	addr, closeClock, err := serveClock("127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + attack.ClockPath
	offset, bound, err := attack.MeasureClock(context.Background(), &http.Client{}, url, 3)
	if err != nil || offset > bound || offset < -bound {
		t.Errorf("offset %v within %v, err %v: want this host's own clock", offset, bound, err)
	}
	closeClock()
	if _, _, err := attack.MeasureClock(context.Background(), &http.Client{}, url, 1); err == nil {
		t.Error("a closed clock still answered")
	}
}

func TestBadPlan(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-burst=0"}, func(string) string { return "0" }, &stdout, &stderr); code != 2 || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q", code, stdout.String())
	}
}

// TestImageTagCoversItsSources checks that the attacker image's tag (scripts/build-image.sh)
// hashes every directory of this module that the command is built from: a change the tag
// missed would leave an old attacker in the nodes under a tag that looks current.
func TestImageTagCoversItsSources(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "build-image.sh"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(script), "    attacker) ")
	if !ok {
		t.Fatal("build-image.sh has no attacker) case")
	}
	rule, _, _ := strings.Cut(rest, ";;")
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // another module's, pinned by go.sum
		}
		covered := false
		for d := rel; d != "." && !covered; d = filepath.Dir(d) {
			covered = strings.Contains(rule, `"${r}/`+d+`"`)
		}
		if !covered {
			t.Errorf("the attacker is built from %s, which its image tag does not hash: %s", rel, strings.TrimSpace(rule))
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if !strings.Contains(rule, `"${r}/`+f+`"`) {
			t.Errorf("the attacker's image tag does not hash %s", f)
		}
	}
}
