package check

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stampede-e2e/stampede/e2e/history"
)

// perCustomer is the requests per customer of the synthetic history: a burst of six, as the
// e2e suite sends by default.
const perCustomer = 6

// syntheticPods are the replicas that serve the synthetic history.
var syntheticPods = []string{"widgets-6b7f9c8d4-2xkqp", "widgets-6b7f9c8d4-9mzlt", "widgets-6b7f9c8d4-h4wrc", "widgets-6b7f9c8d4-tq8vn"}

// synthetic is a valid history of n requests and its rows.
type synthetic struct {
	ops  []history.Op
	rows []Row
}

// syntheticHistory is a valid history of n requests and its rows, as stampede check holds
// them: written as ops.jsonl (writeSynthetic) to a temporary file and read back from it with
// history.ReadJSONL.
func syntheticHistory(tb testing.TB, n int) synthetic {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ops.jsonl")
	rows := writeSyntheticFile(tb, path, n)
	return synthetic{ops: readHistoryFile(tb, path), rows: rows}
}

// writeSyntheticFile writes writeSynthetic's history of n requests to path and returns its rows.
func writeSyntheticFile(tb testing.TB, path string, n int) []Row {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	rows := writeSynthetic(tb, f, n)
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return rows
}

// readHistoryFile reads a history from path as stampede check does (report.Load).
func readHistoryFile(tb testing.TB, path string) []history.Op {
	tb.Helper()
	ops, err := history.ReadJSONLFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return ops
}

// writeSynthetic writes a valid history of n requests to out with history.WriteJSONL, as a run
// saves it, and returns its rows: a burst of perCustomer requests per customer over the four
// syntheticPods, overlapping, each on a connection of its own, each with the handler interval
// the pod reported, the first created=true, every body as the service writes it (json.Marshal
// and a newline). Bodies repeat as a real run's do: a customer's replicas answer with one token.
func writeSynthetic(tb testing.TB, out io.Writer, n int) []Row {
	tb.Helper()
	customers := (n + perCustomer - 1) / perCustomer
	rows := make([]Row, customers)
	tokens := make([]string, customers)
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < customers; i += workers {
				row := Row{ID: fmt.Sprintf("0b6c8a52-0000-4000-8000-%012d", i), Tenant: fmt.Sprintf("m-%d", i%97),
					Key: fmt.Sprintf("c-%d", i), CreatedAt: base.Add(time.Duration(i) * 1234567 * time.Nanosecond)}
				tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, serviceClaims(row, nil))
				tok.Header["kid"] = testKid
				signed, err := tok.SignedString(suiteKey)
				if err != nil {
					panic(err)
				}
				rows[i], tokens[i] = row, signed
			}
		})
	}
	wg.Wait()
	bw := bufio.NewWriterSize(out, 1<<20)
	ops := make([]history.Op, 0, 1024*perCustomer)
	flush := func() {
		if err := history.WriteJSONL(bw, ops); err != nil {
			tb.Fatal(err)
		}
		ops = ops[:0]
	}
	for i, row := range rows {
		c := history.Customer{Index: i, Tenant: row.Tenant, EntityKey: row.Key}
		at := time.Duration(i) * time.Millisecond
		for seq := range perCustomer {
			body, err := json.Marshal(tokenResponse{Token: tokens[i], CustomerID: row.ID, Created: new(seq == 0)})
			if err != nil {
				tb.Fatal(err)
			}
			call, ret := at+time.Duration(seq)*time.Microsecond, at+5*time.Millisecond+time.Duration(seq)*time.Microsecond
			port := 32768 + (i*perCustomer+seq)%28232 // Linux's ephemeral ports
			ops = append(ops, history.Op{Customer: c, Seq: seq, Phase: history.PhaseBurst, KeyTenant: c.Tenant,
				Call: call, Return: ret, Status: 200, Body: string(body) + "\n", Pod: syntheticPods[seq%len(syntheticPods)],
				LocalAddr: fmt.Sprintf("10.244.0.1:%d", port), ServerStart: call + time.Millisecond, ServerEnd: ret - time.Millisecond,
				ContentType: ContentTypeJSON, CacheControl: "no-store", HeadersRecorded: true})
		}
		if len(ops) == cap(ops) {
			flush()
		}
	}
	flush()
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	return rows
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus reads a size field of /proc/self/status, in bytes.
func procStatus(b *testing.B, field string) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatalf("read the process's memory figures: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				b.Fatalf("/proc/self/status %s: %q: %v", field, v, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("/proc/self/status has no %s", field)
	return 0
}

// resetPeakRSS makes the kernel count the peak resident size (VmHWM) from now, and returns the
// resident size now.
func resetPeakRSS(b *testing.B) int64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak resident size (Linux's /proc/self/clear_refs): %v", err)
	}
	return procStatus(b, "VmRSS")
}

// reportCPU adds the CPU seconds per op since start: on a machine shared with other work the
// wall time says more about the neighbours than about the code.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric((cpuTime(b)-start).Seconds()/float64(b.N), "cpu-s/op")
}

// benchParams are the params that judge the synthetic history.
func benchParams(b *testing.B) Params {
	return Params{API: fixtureAPI, PublicKey: suiteKey.Public().(ed25519.PublicKey), JWKS: suiteJWKS(), Issuer: issuer, Audience: audience, TokenTTL: tokenTTL,
		Base: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Contract: contract(b, modeAtomic),
		Coverage: CoverageParams{ReadyPods: syntheticPods}}
}

// judgeSynthetic judges ops and rows, the synthetic history of benchmarkCheck, and fails b
// unless they pass.
func judgeSynthetic(b *testing.B, ops []history.Op, rows []Row, p Params) {
	res, err := Check(ops, rows, p)
	if err != nil {
		b.Fatal(err)
	}
	if res.Verdict != VerdictPass || res.Requests != len(ops) {
		b.Fatalf("synthetic history judged %s over %d requests: %v %s", res.Verdict, res.Requests, res.Counts, res.Coverage)
	}
}

// forgetGarbage collects the garbage of building a benchmark's input and gives its memory back
// to the kernel, then makes the peak resident size count from now and returns the resident
// size now: the peak of what comes next, with what is held already.
func forgetGarbage(b *testing.B) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	return resetPeakRSS(b)
}

// reportMemory adds the resident size before the benchmark's work (held-MB) and its peak.
func reportMemory(b *testing.B, held int64) {
	b.ReportMetric(float64(held)/(1<<20), "held-MB")
	b.ReportMetric(float64(procStatus(b, "VmHWM"))/(1<<20), "peak-rss-MB")
}

func benchmarkCheck(b *testing.B, n int) {
	s := syntheticHistory(b, n)
	p := benchParams(b)
	b.ReportAllocs()
	// The peak counts from here: the history held in memory, as stampede check holds it, and
	// what judging it adds, not the garbage of building it.
	held := forgetGarbage(b)
	b.ResetTimer()
	defer reportCPU(b, cpuTime(b))
	defer reportMemory(b, held)
	for b.Loop() {
		judgeSynthetic(b, s.ops, s.rows, p)
	}
	b.ReportMetric(float64(len(s.ops))*float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "wall-s/op")
}

// benchmarkCheckFile does what stampede check does with a saved history of n requests: reads
// ops.jsonl from disk and judges it. The peak counts both, from the rows alone in memory; the
// peak and the time of reading are reported apart (read-peak-rss-MB, read-s/op).
func benchmarkCheckFile(b *testing.B, n int) {
	path := filepath.Join(b.TempDir(), "ops.jsonl")
	rows := writeSyntheticFile(b, path, n)
	p := benchParams(b)
	b.ReportAllocs()
	held := forgetGarbage(b)
	b.ResetTimer()
	defer reportCPU(b, cpuTime(b))
	defer reportMemory(b, held)
	var read time.Duration
	for b.Loop() {
		start := time.Now()
		ops := readHistoryFile(b, path)
		read += time.Since(start)
		b.ReportMetric(float64(procStatus(b, "VmHWM"))/(1<<20), "read-peak-rss-MB")
		judgeSynthetic(b, ops, rows, p)
	}
	b.ReportMetric(read.Seconds()/float64(b.N), "read-s/op")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "wall-s/op")
}

// benchmarkVerifyFloor does only what Check cannot avoid on the same history: one Ed25519
// verification per customer, by the key's tables in batches of judgeBatch, on GOMAXPROCS
// goroutines. Check's time over this one is its overhead.
func benchmarkVerifyFloor(b *testing.B, n int) {
	s := syntheticHistory(b, n)
	var toks []signedMsg
	for i := 0; i < len(s.ops); i += perCustomer {
		var resp tokenResponse
		if err := json.Unmarshal([]byte(s.ops[i].Body), &resp); err != nil {
			b.Fatal(err)
		}
		dot := strings.LastIndexByte(resp.Token, '.')
		sig, err := base64.RawURLEncoding.DecodeString(resp.Token[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		toks = append(toks, signedMsg{resp.Token[:dot], sig})
	}
	key := edKeyFor(suiteKey.Public().(ed25519.PublicKey))
	b.ResetTimer()
	defer reportCPU(b, cpuTime(b))
	for b.Loop() {
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Go(func() {
				for i := w * judgeBatch; i < len(toks); i += workers * judgeBatch {
					for _, ok := range key.verifyBatch(toks[i:min(i+judgeBatch, len(toks))]) {
						if !ok {
							panic("synthetic token does not verify")
						}
					}
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(len(s.ops))*float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

// BenchmarkVerifyFloor100k is the floor of BenchmarkCheck100k.
func BenchmarkVerifyFloor100k(b *testing.B) { benchmarkVerifyFloor(b, 100_000) }

// BenchmarkVerifyFloor1M is the floor of BenchmarkCheck1M.
func BenchmarkVerifyFloor1M(b *testing.B) { benchmarkVerifyFloor(b, 1_000_000) }

// BenchmarkCheck100k judges a valid history of 100,000 requests.
func BenchmarkCheck100k(b *testing.B) { benchmarkCheck(b, 100_000) }

// BenchmarkCheck1M judges a valid history of 1,000,000 requests: the target is 4 s and 1 GB.
func BenchmarkCheck1M(b *testing.B) { benchmarkCheck(b, 1_000_000) }

// BenchmarkCheckFile1M reads a saved history of 1,000,000 requests from disk and judges it, as
// stampede check does: the 1 GB holds for both.
func BenchmarkCheckFile1M(b *testing.B) { benchmarkCheckFile(b, 1_000_000) }
