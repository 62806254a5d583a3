package attack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// bearerRequest is a create request whose key goes as a bearer token and whose body names the
// entity; headerRequest one whose key goes in a header of its own and whose entity is named by
// an Idempotency-Key header.
var (
	bearerRequest = request.Template{
		Observe: request.Observe{PodHeader: testPodHeader},
		Method:  "POST",
		Path:    "/create",
		Headers: map[string]string{"Content-Type": "application/json"},
		Auth:    request.Auth{Header: traffic.AuthorizationHeader, Bearer: true},
		Body:    map[string]string{"tenant": "{{tenant}}", "key": "{{key}}", "email": "{{email}}", "name": "{{name}}"},
	}
	headerRequest = request.Template{
		Observe: request.Observe{PodHeader: testPodHeader},
		Method:  "PUT",
		Path:    "/shops/{{tenant}}/orders",
		Headers: map[string]string{"Idempotency-Key": "{{key}}", "Accept": "application/json"},
		Auth:    request.Auth{Header: "X-Api-Key"},
		Body:    map[string]string{"item": "{{name}}", "contact": "{{email}}"},
	}
)

// registerRequest is bearerRequest's body as the stand-in services read it.
type registerRequest struct {
	Tenant    string `json:"tenant"`
	EntityKey string `json:"key"`
}

func plan(customers []history.Customer) Plan {
	return Plan{
		URL:       "http://app.ns.svc:8080",
		Request:   bearerRequest,
		Customers: customers,
		Burst:     6,
		Gap:       100 * time.Millisecond,
		Timeout:   7 * time.Second,
		Retry:     traffic.RetryParams{MaxAttempts: 5, MaxWait: 2 * time.Second, Backoff: 50 * time.Millisecond, Statuses: []int{409, 503}, Concurrency: 4, NoRetryOnError: true},
		Start:     time.Unix(0, 1_700_000_000_123_456_789),
		MaxLate:   2 * time.Second,
		Shard:     traffic.Shard{Index: 2, Count: 3},
	}
}

// TestPlanArgsRoundTrip checks that what the suite puts in the Job's arguments is what each
// pod reads back, the shard's index coming from the Job's completion index.
func TestPlanArgsRoundTrip(t *testing.T) {
	seeded := traffic.Customers(12345, 40, 4)
	explicit := []history.Customer{{Index: 0, Tenant: "m", EntityKey: "a"}, {Index: 1, Tenant: "m", EntityKey: "b,\"c\""}}
	for name, cs := range map[string][]history.Customer{"seeded": seeded, "explicit": explicit} {
		t.Run(name, func(t *testing.T) {
			want := plan(cs)
			args := want.Args()
			joined := strings.Join(args, " ")
			if name == "seeded" && (!strings.Contains(joined, "-seed=12345") || strings.Contains(joined, "customer-list")) {
				t.Errorf("seeded customers not passed as their seed: %s", joined)
			}
			if name == "explicit" && !strings.Contains(joined, "-customer-list=") {
				t.Errorf("explicit customers not passed as a list: %s", joined)
			}
			if strings.Contains(joined, "-index") {
				t.Errorf("the index is each pod's own, not the plan's: %s", joined)
			}
			got, err := ParseArgs(args, env(map[string]string{IndexEnv: "2"}), io.Discard)
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", args, err)
			}
			if !got.Start.Equal(want.Start) {
				t.Errorf("start %v, want %v", got.Start, want.Start)
			}
			got.Start = want.Start
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\ngot  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseArgsRefuses(t *testing.T) {
	good := plan(traffic.Customers(1, 3, 1)).Args()
	withIndex := map[string]string{IndexEnv: "0"}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no index", good, nil, "which shard"},
		{"index out of range", slices.Concat(good, []string{"-index=3"}), nil, "shard 3 of 3"},
		{"bad index env", good, map[string]string{IndexEnv: "x"}, IndexEnv},
		{"no customers", []string{"-url=http://x:1", "-burst=2", "-start=1", "-shards=1"}, withIndex, "no customers"},
		{"seed without count", []string{"-url=http://x:1", "-burst=2", "-start=1", "-seed=4"}, withIndex, "-customers"},
		{"both", slices.Concat(good, []string{"-customer-list=[]"}), withIndex, "give one"},
		{"no start", []string{"-url=http://x:1", "-burst=2", "-seed=1", "-customers=1", "-tenants=1"}, withIndex, "no start"},
		{"bad url", []string{"-url=app:8080", "-burst=2", "-start=1", "-seed=1", "-customers=1", "-tenants=1"}, withIndex, "url"},
		{"too many tenants", []string{"-url=http://x:1", "-burst=2", "-start=1", "-seed=1", "-customers=20", "-tenants=9"}, withIndex, "at most 8"},
		{"bad status", slices.Concat(good, []string{"-retry-statuses=409,abc"}), withIndex, "not an HTTP status"},
		{"unknown field", []string{"-url=http://x:1", "-burst=2", "-start=1", `-customer-list=[{"idx":1}]`}, withIndex, "unknown field"},
		{"stray argument", slices.Concat(good, []string{"extra"}), withIndex, "unexpected"},
		{"missing keys file", slices.Concat(good, []string{"-api-keys=/nonexistent/api-keys"}), withIndex, "-api-keys"},
		{"foreign keys without keys", slices.Concat(good, []string{"-foreign-customers=0.5"}), withIndex, "no API keys"},
		{"foreign fraction above 1", slices.Concat(good, []string{"-foreign-customers=2"}), withIndex, "want 0 to 1"},
		{"no request", slices.DeleteFunc(slices.Clone(good), func(a string) bool { return strings.HasPrefix(a, "-request=") }), withIndex, "request: no method"},
		{"bad request", slices.Concat(good, []string{`-request={"method":"POST","verb":"x"}`}), withIndex, "-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseArgs(tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseArgs(%q) = %v, want an error about %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestCustomerSeed(t *testing.T) {
	for _, tc := range []struct{ n, tenants int }{{40, 4}, {3, 1}, {2, 4}, {1, 1}} {
		cs := traffic.Customers(987, tc.n, tc.tenants)
		seed, m, ok := CustomerSeed(cs)
		if !ok || seed != 987 || !reflect.DeepEqual(traffic.Customers(seed, tc.n, m), cs) {
			t.Errorf("%d customers over %d tenants: seed %d, tenants %d, ok %v", tc.n, tc.tenants, seed, m, ok)
		}
	}
	cs := traffic.Customers(5, 4, 2)
	cs[3].EntityKey = "c-5-99"
	if _, _, ok := CustomerSeed(cs); ok {
		t.Error("a list that is not the seed's derivation was taken for it")
	}
	if _, _, ok := CustomerSeed(traffic.Customers(5, 4, 2)[1:]); ok {
		t.Error("a list that does not start at customer 0 was taken for a derivation")
	}
}

func op(c history.Customer, seq, attempt int, call, ret time.Duration) history.Op {
	phase := history.PhaseBurst
	if attempt > 0 {
		phase = history.PhaseRetry
	}
	return history.Op{Customer: c, Seq: seq, Attempt: attempt, Phase: phase, Call: call, Return: ret, Status: 200, Pod: "p"}
}

func TestOutputRoundTrip(t *testing.T) {
	cs := traffic.Customers(1, 2, 1)
	ops := []history.Op{op(cs[0], 0, 0, time.Millisecond, 3*time.Millisecond), op(cs[1], 0, 0, 100*time.Millisecond, 0)}
	ops[1].Error = "timeout"
	var stdout bytes.Buffer
	tr := Trailer{Index: 1, Shards: 2, Start: 42, Pod: "attacker-1-x", Node: "worker", Slack: 3 * time.Second}
	if err := WriteOutput(&stdout, ops, tr); err != nil {
		t.Fatal(err)
	}
	// The kubelet interleaves stderr's lines with stdout's.
	lines := strings.SplitAfter(stdout.String(), "\n")
	log := "time=... level=INFO msg=plan\n" + lines[0] + "time=... level=INFO msg=\"bursts sent\"\n" + strings.Join(lines[1:], "")
	out, err := ParseOutput([]byte(log))
	if err != nil {
		t.Fatal(err)
	}
	tr.Ops = 2
	if out.Trailer != tr || !reflect.DeepEqual(out.Ops, ops) || len(out.Log) != 2 {
		t.Errorf("read back %+v, ops %+v, log %q", out.Trailer, out.Ops, out.Log)
	}

	cut := strings.Join(lines[1:], "") // the first op's line lost
	if _, err := ParseOutput([]byte(cut)); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("a log missing an op line: %v", err)
	}
	if _, err := ParseOutput([]byte(lines[0])); !errors.Is(err, ErrNoTrailer) {
		t.Errorf("a log without its trailer: %v", err)
	}
	if _, err := ParseOutput([]byte(`{"customer":{},"surprise":1}` + "\n" + lines[2])); err == nil {
		t.Error("an op line with an unknown field was accepted")
	}
}

func TestRebase(t *testing.T) {
	o := history.Op{Call: 10, Return: 20, ServerStart: 12, ServerEnd: 18}
	got := Rebase(o, 1000)
	if got.Call != 1010 || got.Return != 1020 || got.ServerStart != 1012 || got.ServerEnd != 1018 {
		t.Errorf("rebased %+v", got)
	}
	never := Rebase(history.Op{Call: 10}, 1000)
	if never.Call != 1010 || never.Return != 0 || never.HasServerInterval() {
		t.Errorf("an op that never returned, with no server interval: %+v", never)
	}
}

// TestCorrect: a skewed attacker's call and return move onto the suite's clock; the handler
// interval, the serving pod's clock, does not move with them.
func TestCorrect(t *testing.T) {
	o := history.Op{Call: 60, Return: 70, ServerStart: 12, ServerEnd: 18}
	got := Correct(o, 50)
	if got.Call != 10 || got.Return != 20 || got.ServerStart != 12 || got.ServerEnd != 18 {
		t.Errorf("corrected %+v, want call 10 return 20 and the handler's 12..18 untouched", got)
	}
	never := Correct(history.Op{Call: 60}, 50)
	if never.Call != 10 || never.Return != 0 {
		t.Errorf("an op that never returned: %+v", never)
	}
}

// TestCorrectSkewedAttackers: shard 1's node clock runs 50 ms ahead. Uncorrected, its request
// seems sent (at 55 ms) after shard 0's 2xx returned (at 20 ms), which RuleCreated would take
// for a created=true sent after the customer existed; corrected, it was sent at 5 ms, before.
func TestCorrectSkewedAttackers(t *testing.T) {
	cs := traffic.Customers(3, 1, 1)
	p := plan(cs)
	p.Shard = traffic.Shard{Count: 2}
	base := p.Start
	outs := []Output{
		{Trailer: Trailer{Index: 0, Shards: 2, Start: p.Start.UnixNano()}, Ops: []history.Op{
			{Customer: cs[0], Seq: 0, Phase: history.PhaseBurst, Call: 0, Return: 20, Status: 200, ServerStart: 2, ServerEnd: 18}}},
		{Trailer: Trailer{Index: 1, Shards: 2, Start: p.Start.UnixNano()}, Ops: []history.Op{
			{Customer: cs[0], Seq: 1, Phase: history.PhaseBurst, Call: 55, Return: 80, Status: 200, ServerStart: 7, ServerEnd: 28}}},
	}
	shifts := []time.Duration{0, 50}
	for i := range outs {
		for j := range outs[i].Ops {
			outs[i].Ops[j] = Correct(outs[i].Ops[j], shifts[outs[i].Index])
		}
	}
	ops, err := Merge(outs, p, base, ReserveSeqs(history.NewSeqs(), cs, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[1].Call != 5 || ops[1].Return != 30 || ops[1].ServerStart != 7 || ops[1].ServerEnd != 28 {
		t.Fatalf("merged %+v, want shard 1's request at 5..30 with its handler's 7..28", ops)
	}
	if !(ops[1].Call < ops[0].Return) {
		t.Errorf("shard 1's request (%v) still seems sent after shard 0's 2xx returned (%v)", ops[1].Call, ops[0].Return)
	}
}

// TestMeasureClock reads this process's own clock through ClockHandler: the offset is within
// its bound of zero; a server that answers no clock is an error.
func TestMeasureClock(t *testing.T) {
	srv := httptest.NewServer(ClockHandler())
	t.Cleanup(srv.Close)
	offset, bound, err := MeasureClock(context.Background(), srv.Client(), srv.URL+ClockPath, 4)
	if err != nil {
		t.Fatal(err)
	}
	if offset > bound || offset < -bound {
		t.Errorf("offset %v beyond its bound %v of one clock", offset, bound)
	}
	if _, _, err := MeasureClock(context.Background(), srv.Client(), srv.URL+"/nothing", 2); err == nil {
		t.Error("a 404 gave a clock reading")
	}
}

// TestMergeSharesBodies merges two pods' answers to one customer, alike but read apart, and
// wants the merged history to hold the body once, as a history read from one file does.
func TestMergeSharesBodies(t *testing.T) {
	cs := traffic.Customers(3, 1, 1)
	p := plan(cs)
	p.Shard = traffic.Shard{Count: 2}
	p.Burst = 2
	reserved := ReserveSeqs(history.NewSeqs(), cs, p.Burst)
	body := `{"token":"t","id":"id","created":false}` + "\n"
	outs := []Output{
		{Trailer: Trailer{Index: 0, Shards: 2, Start: p.Start.UnixNano()}, Ops: []history.Op{op(cs[0], 0, 0, time.Millisecond, 2*time.Millisecond)}},
		{Trailer: Trailer{Index: 1, Shards: 2, Start: p.Start.UnixNano()}, Ops: []history.Op{op(cs[0], 1, 0, time.Millisecond, 3*time.Millisecond)}},
	}
	for i := range outs {
		outs[i].Ops[0].Body = strings.Clone(body)
	}
	ops, err := Merge(outs, p, p.Start, reserved)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0].Body != body || unsafe.StringData(ops[0].Body) != unsafe.StringData(ops[1].Body) {
		t.Errorf("merged %d ops whose bodies are not one copy: %q, %q", len(ops), ops[0].Body, ops[len(ops)-1].Body)
	}
}

// TestMerge checks that three pods' histories land on the spec's base and numbering, sorted,
// and that anything that does not fit the plan is refused.
func TestMerge(t *testing.T) {
	cs := traffic.Customers(3, 2, 1)
	p := plan(cs)
	p.Shard = traffic.Shard{Count: 3}
	p.Burst = 3
	base := p.Start.Add(-5 * time.Second) // the spec's clock started 5 s before the Job's start
	seqs := history.NewSeqs()
	for _, c := range cs { // an earlier run of the spec took request 0 of every customer
		seqs.Next(c)
	}
	reserved := ReserveSeqs(seqs, cs, p.Burst)
	if fmt.Sprint(reserved[cs[0].Key()]) != "[1 2 3]" {
		t.Fatalf("reserved %v", reserved)
	}
	ms := time.Millisecond
	outs := []Output{
		{Trailer: Trailer{Index: 2, Shards: 3, Start: p.Start.UnixNano()}, Ops: []history.Op{op(cs[0], 2, 0, 2*ms, 9*ms), op(cs[1], 2, 0, 101*ms, 105*ms)}},
		{Trailer: Trailer{Index: 0, Shards: 3, Start: p.Start.UnixNano()}, Ops: []history.Op{op(cs[0], 0, 0, 1*ms, 8*ms), op(cs[0], 0, 1, 300*ms, 310*ms), op(cs[1], 0, 0, 100*ms, 104*ms)}},
		{Trailer: Trailer{Index: 1, Shards: 3, Start: p.Start.UnixNano()}, Ops: []history.Op{op(cs[0], 1, 0, 1*ms, 7*ms), op(cs[1], 1, 0, 100*ms, 103*ms)}},
	}
	outs[1].Ops[0].ServerStart, outs[1].Ops[0].ServerEnd = 3*ms, 6*ms
	ops, err := Merge(outs, p, base, reserved)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range ops {
		got = append(got, fmt.Sprintf("%s@%s", o.ID(), o.Call-5*time.Second))
	}
	want := "[0/1/0@1ms 0/2/0@1ms 0/3/0@2ms 1/1/0@100ms 1/2/0@100ms 1/3/0@101ms 0/1/1@300ms]"
	if fmt.Sprint(got) != want {
		t.Errorf("merged %v\nwant   %s", got, want)
	}
	if o := ops[0]; o.Return != 5*time.Second+8*ms || o.ServerStart != 5*time.Second+3*ms || o.ServerEnd != 5*time.Second+6*ms {
		t.Errorf("op %s not moved onto the spec's base whole: %+v", o.ID(), o)
	}

	bad := func(mutate func([]Output) []Output, want string) {
		t.Helper()
		cp := make([]Output, len(outs))
		for i, o := range outs {
			cp[i] = o
			cp[i].Ops = append([]history.Op(nil), o.Ops...)
		}
		if _, err := Merge(mutate(cp), p, base, reserved); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error about %q, got %v", want, err)
		}
	}
	bad(func(o []Output) []Output { return o[:2] }, "no output of shard 1")
	bad(func(o []Output) []Output { return append(o, o[0]) }, "two outputs of shard 2")
	bad(func(o []Output) []Output { o[0].Start++; return o }, "started from")
	bad(func(o []Output) []Output { o[0].Ops[0].Seq = 1; return o }, "not its to send")
	bad(func(o []Output) []Output { o[0].Ops[0].Customer.EntityKey = "x"; return o }, "not in the plan")
	bad(func(o []Output) []Output { o[1].Ops[1].Attempt = 0; return o }, "told twice")
	bad(func(o []Output) []Output { o[2].Shards = 4; return o }, "the plan has 3 shards")
}

// TestPlanCarriesKeysByFile checks that a plan's API keys reach a pod only through the file its
// arguments name: the arguments hold the file's path and the foreign-key pick, never a key, and
// the pod reads the keys back from the file.
func TestPlanCarriesKeysByFile(t *testing.T) {
	keys := map[string]string{"m-0": "sk_zero", "m-1": "sk_one"}
	file, err := FormatKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	want := plan(traffic.Customers(8, 10, 2))
	want.KeysFile, want.Keys = path, keys
	want.Foreign = traffic.ForeignKeys{Customers: 0.3, Every: 2}
	want.Wrong = traffic.WrongKeys{Customers: 0.25, Every: 3}
	args := want.Args()
	for _, k := range keys {
		if strings.Contains(strings.Join(args, " "), k) {
			t.Fatalf("the arguments hold a key: %q", args)
		}
	}
	got, err := ParseArgs(args, env(map[string]string{IndexEnv: "2"}), io.Discard)
	if err != nil {
		t.Fatalf("ParseArgs(%q): %v", args, err)
	}
	got.Start = want.Start
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got, want)
	}
}

func TestKeysFile(t *testing.T) {
	keys := map[string]string{"m-1": "k1", "m-0": "k0"}
	b, err := FormatKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), "m-0 k0\nm-1 k1\n") {
		t.Errorf("file %q: want its tenants in order", b)
	}
	back, err := ParseKeys(bytes.NewReader(append(b, "\n  # a comment\n\tm-2   k2  \n"...)))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != "map[m-0:k0 m-1:k1 m-2:k2]" {
		t.Errorf("read back %v", back)
	}
	for name, bad := range map[string]map[string]string{
		"no key":           {},
		"an empty key":     {"m-0": ""},
		"a blank in a key": {"m-0": "a b"},
		"a newline":        {"m-0": "a\nm-1 b"},
		"a comment id":     {"#m": "k"},
		"a blank in an id": {"m 0": "k"},
	} {
		if _, err := FormatKeys(bad); err == nil {
			t.Errorf("%s: formatted", name)
		}
	}
	p := plan(traffic.Customers(1, 6, 3))
	p.Keys = map[string]string{"m-0": "k0", "m-1": "k1"}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "[m-2]") {
		t.Errorf("a plan whose keys miss a tenant of its customers: %v", err)
	}
	for name, file := range map[string]string{
		"three fields":   "m-0 sk_secret extra\n",
		"one field":      "sk_secret\n",
		"two keys":       "m-0 sk_secret\nm-0 sk_secret2\n",
		"comments alone": "# nothing\n",
	} {
		_, err := ParseKeys(strings.NewReader(file))
		if err == nil {
			t.Errorf("%s: parsed", name)
			continue
		}
		if strings.Contains(err.Error(), "sk_secret") {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
}

// A target's create request reaches every attacker pod and round server whole, whichever way
// it carries its key and names its entity.
func TestPlanCreateRequest(t *testing.T) {
	cs := traffic.Customers(1, 4, 2)
	for name, req := range map[string]request.Template{"bearer": bearerRequest, "header": headerRequest} {
		want := plan(cs)
		want.Request = req
		got, err := ParseArgs(want.Args(), env(map[string]string{IndexEnv: "2"}), io.Discard)
		if err != nil {
			t.Fatalf("%s: ParseArgs: %v", name, err)
		}
		got.Start = want.Start
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: from the arguments\ngot  %+v\nwant %+v", name, got, want)
		}
		b, err := EncodePlan(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err = DecodePlan(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: DecodePlan: %v", name, err)
		}
		got.Start = want.Start
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: from the JSON\ngot  %+v\nwant %+v", name, got, want)
		}
	}
}
