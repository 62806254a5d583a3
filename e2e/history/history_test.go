package history

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestJSONLRoundTrip(t *testing.T) {
	c := Customer{Index: 3, Tenant: "m-7-0", EntityKey: "c-7-3"}
	ops := []Op{
		{Customer: c, Seq: 0, Phase: PhaseBurst, Call: time.Millisecond, Return: 5 * time.Millisecond,
			KeyTenant: "m-7-0", KeyKind: KeyOwn, Status: 200, Body: `{"token":"x"}`, Pod: "tokensvc-a", LocalAddr: "127.0.0.1:5000"},
		{Customer: c, Seq: 1, Phase: PhaseBurst, Call: time.Millisecond, Error: "context deadline exceeded"},
		{Customer: c, Seq: 1, Attempt: 1, Phase: PhaseRetry, Call: time.Second, Return: 2 * time.Second,
			Status: 409, Body: "{\"error\":\"conflict\"}\n", RetryAfter: "1", Pod: "tokensvc-b", ConnReused: true},
		{Customer: c, Seq: 2, Phase: PhaseBurst, Call: time.Millisecond, Return: 3 * time.Millisecond, Status: 401,
			Body: `{"error":"unauthenticated"}`, ContentType: "application/json", CacheControl: "no-store",
			WWWAuthenticate: "Bearer", HeadersRecorded: true},
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, ops); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != len(ops) {
		t.Fatalf("got %d lines, want %d", n, len(ops))
	}
	got, err := ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ops) {
		t.Fatalf("round trip changed the history:\ngot  %+v\nwant %+v", got, ops)
	}
}

func TestReadJSONLRejectsGarbage(t *testing.T) {
	for _, in := range []string{"{\"seq\":1}\nnot json\n", "{\"bogus\":1}\n"} {
		if _, err := ReadJSONL(strings.NewReader(in)); err == nil {
			t.Errorf("ReadJSONL(%q) = nil error, want one", in)
		}
	}
}

func TestOverlaps(t *testing.T) {
	a := Op{Call: 10, Return: 20}
	for _, tc := range []struct {
		b    Op
		want bool
	}{
		{Op{Call: 15, Return: 30}, true},
		{Op{Call: 0, Return: 11}, true},
		{Op{Call: 20, Return: 30}, false},
		{Op{Call: 0, Return: 10}, false},
		{Op{Call: 12, Return: 0}, false}, // never returned: no interval to compare
	} {
		if got := a.Overlaps(tc.b); got != tc.want {
			t.Errorf("%v.Overlaps(%v) = %v, want %v", a, tc.b, got, tc.want)
		}
	}
}

// TestReadJSONLOfAnOlderHistory: a line written before the recorder kept the answers' headers
// reads, and says they were not recorded.
func TestReadJSONLOfAnOlderHistory(t *testing.T) {
	ops, err := ReadJSONL(strings.NewReader(`{"customer":{"index":1,"merchant_id":"m","external_id":"c"},"seq":0,"attempt":0,"phase":"burst","call_ns":1,"return_ns":2,"status":200,"body":"{}","retry_after":"1"}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].HeadersRecorded || ops[0].ContentType != "" || ops[0].RetryAfter != "1" {
		t.Fatalf("read %+v", ops)
	}
}

// TestSentKey: the key kind a request carried, recorded or, in an older history, derived.
func TestSentKey(t *testing.T) {
	c := Customer{Index: 1, Tenant: "m-1", EntityKey: "c-9-0"}
	for _, tc := range []struct {
		name string
		op   Op
		want KeyKind
	}{
		{"recorded kind wins", Op{Customer: c, KeyKind: KeyMalformed}, KeyMalformed},
		{"recorded unknown key names no tenant", Op{Customer: c, KeyKind: KeyUnknown}, KeyUnknown},
		// Histories from before KeyKind: derived from KeyTenant.
		{"old: own tenant", Op{Customer: c, KeyTenant: "m-1"}, KeyOwn},
		{"old: another tenant", Op{Customer: c, KeyTenant: "m-2"}, KeyForeign},
		{"old: no key", Op{Customer: c}, KeyNone},
	} {
		if got := tc.op.SentKey(); got != tc.want {
			t.Errorf("%s: SentKey() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestReadJSONLWithoutKeyKind reads a line as a run before KeyKind wrote it: the field is
// missing, the history is readable, and the kind is derived.
func TestReadJSONLWithoutKeyKind(t *testing.T) {
	line := `{"customer":{"index":0,"merchant_id":"m-0","external_id":"c-1-0"},"seq":0,"attempt":0,"phase":"burst","key_merchant":"m-1","call_ns":1,"return_ns":2,"status":403}` + "\n"
	ops, err := ReadJSONL(strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].KeyKind != "" || ops[0].SentKey() != KeyForeign {
		t.Fatalf("got %+v (sent %q), want one op whose key is derived as foreign", ops, ops[0].SentKey())
	}
}
