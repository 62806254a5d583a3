package check

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
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

// synthetic is a valid history of n requests and its rows, built once per size: a burst of
// perCustomer requests per customer spread over three pods, overlapping, the first one
// created=true, every body a string of its own as a recorded history has.
type synthetic struct {
	ops  []history.Op
	rows []Row
}

var (
	syntheticMu    sync.Mutex
	syntheticCache = map[int]synthetic{}
)

func syntheticHistory(tb testing.TB, n int) synthetic {
	tb.Helper()
	syntheticMu.Lock()
	defer syntheticMu.Unlock()
	if s, ok := syntheticCache[n]; ok {
		return s
	}
	customers := (n + perCustomer - 1) / perCustomer
	s := synthetic{ops: make([]history.Op, 0, customers*perCustomer), rows: make([]Row, customers)}
	tokens := make([]string, customers)
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < customers; i += workers {
				row := Row{ID: fmt.Sprintf("0b6c8a52-0000-4000-8000-%012d", i), MerchantID: fmt.Sprintf("m-%d", i%97),
					ExternalID: fmt.Sprintf("c-%d", i), CreatedAt: base.Add(time.Duration(i) * 1234567 * time.Nanosecond)}
				tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, serviceClaims(row, nil))
				tok.Header["kid"] = testKid
				signed, err := tok.SignedString(suiteKey)
				if err != nil {
					panic(err)
				}
				s.rows[i], tokens[i] = row, signed
			}
		})
	}
	wg.Wait()
	pods := []string{"pod-a", "pod-b", "pod-c"}
	for i, row := range s.rows {
		c := history.Customer{Index: i, MerchantID: row.MerchantID, ExternalID: row.ExternalID}
		at := time.Duration(i) * time.Millisecond
		for seq := range perCustomer {
			body, err := json.Marshal(tokenResponse{Token: tokens[i], CustomerID: row.ID, Created: new(seq == 0)})
			if err != nil {
				tb.Fatal(err)
			}
			s.ops = append(s.ops, history.Op{Customer: c, Seq: seq, Phase: history.PhaseBurst, KeyMerchant: c.MerchantID,
				Call: at + time.Duration(seq)*time.Microsecond, Return: at + 5*time.Millisecond + time.Duration(seq)*time.Microsecond,
				Status: 200, Body: strings.Clone(string(body)), Pod: pods[seq%len(pods)],
				ContentType: ContentTypeJSON, CacheControl: "no-store", HeadersRecorded: true})
		}
	}
	syntheticCache[n] = s
	return s
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

func benchmarkCheck(b *testing.B, n int) {
	s := syntheticHistory(b, n)
	p := Params{PublicKey: suiteKey.Public().(ed25519.PublicKey), JWKS: suiteJWKS(), Issuer: issuer, Audience: audience, TokenTTL: tokenTTL,
		Base: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Contract: contract(b, StrategyAtomic)}
	b.ReportAllocs()
	// The peak counts from here: the history held in memory, as stampede check holds it, and
	// what judging it adds, not the garbage of building it.
	runtime.GC()
	debug.FreeOSMemory()
	held := resetPeakRSS(b)
	b.ResetTimer()
	defer reportCPU(b, cpuTime(b))
	defer func() {
		b.ReportMetric(float64(held)/(1<<20), "held-MB")
		b.ReportMetric(float64(procStatus(b, "VmHWM"))/(1<<20), "peak-rss-MB")
	}()
	for b.Loop() {
		res, err := Check(s.ops, s.rows, p)
		if err != nil {
			b.Fatal(err)
		}
		if res.Verdict != VerdictPass || res.Requests != len(s.ops) {
			b.Fatalf("synthetic history judged %s over %d requests: %v", res.Verdict, res.Requests, res.Counts)
		}
	}
	b.ReportMetric(float64(len(s.ops))*float64(b.N)/b.Elapsed().Seconds(), "requests/s")
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
