package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// containerMemoryLimit is the tokensvc container's memory limit in manifests/tokensvc/tokensvc.yaml.
const containerMemoryLimit = 128 << 20

// TestHeaderFloodStaysUnderMemoryLimit floods a real replica from loopback with 300 connections
// at once, each sending about 1 MB of headers and no API key (the measurement), and
// checks that the process's peak resident set stays under the container's memory limit and
// that normal registrations are answered during the flood and after it. The same flood on a
// replica with Go's defaults (1 MiB headers, no connection cap) must go over the limit, or the
// flood is too weak to prove anything.
func TestHeaderFloodStaysUnderMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("floods replicas with 300 MB of headers; run without -short")
	}
	if raceEnabled {
		t.Skip("the replicas are race-instrumented, which multiplies their memory: their RSS says nothing of the service's; run without -race")
	}
	flood := floodParams{conns: 300, headerLines: 1000, lineBytes: 1000, deadline: 30 * time.Second}
	t.Run("defaults", func(t *testing.T) {
		hwm := floodReplica(t, flood, map[string]string{"TOKENSVC_MEMORY_LIMIT": strconv.Itoa(containerMemoryLimit)})
		if hwm >= containerMemoryLimit {
			t.Errorf("peak RSS %.1f MiB during the header flood, at or over the container's limit of %d MiB: the kernel would have killed the pod",
				float64(hwm)/(1<<20), containerMemoryLimit>>20)
		}
	})
	t.Run("go-defaults", func(t *testing.T) {
		// Without TOKENSVC_MEMORY_LIMIT, which would refuse a connection budget this large.
		hwm := floodReplica(t, flood, map[string]string{"TOKENSVC_MAX_HEADER_BYTES": "1048576", "TOKENSVC_MAX_CONNS": "100000"})
		if hwm < containerMemoryLimit {
			t.Errorf("inconclusive: with 1 MiB headers and no connection cap the flood peaked at %.1f MiB, under the limit of %d MiB: it is too weak to test the limits",
				float64(hwm)/(1<<20), containerMemoryLimit>>20)
		}
	})
}

// floodReplica starts a replica with env, floods it with p while registering customers one
// after another, checks that every registration during and after the flood got 200, and
// returns the replica's peak RSS.
func floodReplica(t *testing.T, p floodParams, env map[string]string) int64 {
	env["TOKENSVC_DATABASE_URL"] = pg.NewDatabase(t)
	env["TOKENSVC_SIGNING_KEY_FILE"] = testKeyFile(t)
	env["GOMEMLIMIT"] = "" // whatever the test's environment says
	r := startReplica(t, "replica-flood", env)
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	if res := send(ctx, client, r, `{"merchant_id":"m","external_id":"before"}`); res.Err != nil || res.Status != http.StatusOK {
		t.Fatalf("registration before the flood = %+v", res)
	}
	var (
		sent, failed int
		firstFailure result
		stopProbe    = make(chan struct{})
		probeDone    = make(chan struct{})
	)
	go func() {
		defer close(probeDone)
		for i := 0; ; i++ {
			select {
			case <-stopProbe:
				return
			default:
			}
			res := send(ctx, client, r, fmt.Sprintf(`{"merchant_id":"m","external_id":"during-%d"}`, i))
			sent++
			if res.Err != nil || res.Status != http.StatusOK {
				if failed == 0 {
					firstFailure = res
				}
				failed++
			}
		}
	}()
	stats := floodHeaders(t, r.addr, p)
	close(stopProbe)
	<-probeDone

	hwm := vmHWM(t, r.cmd.Process.Pid)
	t.Logf("flood: %d connections x %d KB of headers in %s: %d answered %v, %d reset or cut; peak RSS (VmHWM) %.1f MiB, limit %d MiB; registrations during the flood: %d, %d failed",
		p.conns, p.headerLines*p.lineBytes/1000, stats.elapsed.Round(time.Millisecond), stats.answered, stats.statuses,
		stats.cut, float64(hwm)/(1<<20), containerMemoryLimit>>20, sent, failed)
	if sent == 0 {
		t.Error("no registration was sent during the flood: the check saw nothing")
	}
	if failed > 0 {
		t.Errorf("%d of %d registrations during the flood failed; the first: %+v", failed, sent, firstFailure)
	}
	if res := send(ctx, client, r, `{"merchant_id":"m","external_id":"after"}`); res.Err != nil || res.Status != http.StatusOK {
		t.Errorf("registration after the flood = %+v, want 200", res)
	}
	r.stop(t)
	return hwm
}

// floodParams size a header flood.
type floodParams struct {
	conns       int           // connections, all sending at once
	headerLines int           // header lines per request
	lineBytes   int           // bytes of each header's value
	deadline    time.Duration // bound on the whole flood
}

// floodStats is what a header flood saw.
type floodStats struct {
	answered int            // connections that got a status line
	cut      int            // connections reset or closed before one
	statuses map[string]int // status code -> connections
	elapsed  time.Duration
}

// floodHeaders dials p.conns connections to addr and makes each send a registration without an
// API key whose headers are p.headerLines lines of p.lineBytes bytes, in two steps: every
// connection sends all its header lines, and only once the server has read all of them (or
// closed the connection) does each one end its headers and read the status line. So every
// connection's headers are in the server at once: the worst case for its memory. Everything is
// bounded by p.deadline.
func floodHeaders(t *testing.T, addr string, p floodParams) floodStats {
	t.Helper()
	if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("flood target %s: only loopback may be flooded", addr)
	}
	var head strings.Builder
	head.WriteString("POST /v1/tokens HTTP/1.1\r\nHost: tokensvc\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n")
	value := strings.Repeat("a", p.lineBytes)
	for i := range p.headerLines {
		fmt.Fprintf(&head, "X-Flood-%05d: %s\r\n", i, value)
	}
	headers, end := []byte(head.String()), []byte("\r\n{}")

	deadline := time.Now().Add(p.deadline)
	conns := make([]net.Conn, 0, p.conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range p.conns {
		c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
		if err != nil {
			t.Fatalf("dial for the flood: %v", err)
		}
		_ = c.SetDeadline(deadline)
		conns = append(conns, c)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		// The server may answer 431 and close before all is written: a write error is expected.
		wg.Go(func() { _, _ = c.Write(headers) })
	}
	wg.Wait()
	waitDrained(t, conns, deadline)
	var (
		mu       sync.Mutex
		answered atomic.Int64
		statuses = map[string]int{}
	)
	for _, c := range conns {
		wg.Go(func() {
			_, _ = c.Write(end)
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			answered.Add(1)
			code := strings.Fields(line + " ?")[1]
			mu.Lock()
			statuses[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	n := int(answered.Load())
	return floodStats{answered: n, cut: p.conns - n, statuses: statuses, elapsed: time.Since(start)}
}

// waitDrained waits until none of conns, while open, has bytes queued in either direction
// (/proc/net/tcp's tx_queue and rx_queue of both ends): the server has read everything sent on
// them, or closed them.
func waitDrained(t *testing.T, conns []net.Conn, deadline time.Time) {
	t.Helper()
	ports := map[string]bool{}
	for _, c := range conns {
		ports[fmt.Sprintf(":%04X", c.LocalAddr().(*net.TCPAddr).Port)] = true
	}
	for {
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatalf("read socket queues: %v", err)
		}
		var queued []string
		for line := range strings.SplitSeq(string(b), "\n") {
			// sl local_address rem_address st tx_queue:rx_queue ...
			f := strings.Fields(line)
			if len(f) < 5 || len(f[1]) < 5 || len(f[2]) < 5 || (!ports[f[1][len(f[1])-5:]] && !ports[f[2][len(f[2])-5:]]) {
				continue
			}
			// Only open connections: one the server has closed (a slow replica's header timeout)
			// has nothing more for it to read, and counts its peer's FIN as a byte queued.
			if f[3] == "01" && f[4] != "00000000:00000000" {
				queued = append(queued, strings.Join(f[1:5], " "))
			}
		}
		if len(queued) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flood: %d sockets still had bytes queued at the deadline (local remote state tx:rx): %s",
				len(queued), strings.Join(queued[:min(5, len(queued))], "; "))
		}
		time.Sleep(10 * time.Millisecond) // polling the queues, bounded by the deadline
	}
}

// vmHWM returns the peak resident set size of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read peak RSS: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("read peak RSS: %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("read peak RSS: no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestConnectionCap: with TOKENSVC_MAX_CONNS open connections held by clients that never finish
// their headers, a registration is not answered; once one of them closes, it is.
func TestConnectionCap(t *testing.T) {
	const maxConns = 4
	r := startReplica(t, "replica-cap", map[string]string{
		"TOKENSVC_DATABASE_URL":        pg.NewDatabase(t),
		"TOKENSVC_SIGNING_KEY_FILE":    testKeyFile(t),
		"TOKENSVC_MAX_CONNS":           strconv.Itoa(maxConns),
		"TOKENSVC_READ_HEADER_TIMEOUT": "1m", // the held connections stay held for the test
	})
	held := make([]net.Conn, maxConns)
	for i := range held {
		c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST /v1/tokens HTTP/1.1\r\nHost: tokensvc\r\n"); err != nil {
			t.Fatal(err)
		}
		held[i] = c
	}
	ctx := context.Background()
	// Bounded on purpose: this checks that no answer comes while the cap is full.
	if res := send(ctx, &http.Client{Timeout: time.Second}, r, `{"merchant_id":"m","external_id":"capped"}`); res.Err == nil {
		t.Errorf("registration with %d connections held = %+v, want no answer within 1s", maxConns, res)
	}
	held[0].Close()
	if res := send(ctx, &http.Client{Timeout: 10 * time.Second}, r, `{"merchant_id":"m","external_id":"freed"}`); res.Err != nil || res.Status != http.StatusOK {
		t.Errorf("registration once a held connection closed = %+v, want 200", res)
	}
}
