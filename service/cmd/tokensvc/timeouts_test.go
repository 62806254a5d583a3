package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestServerTimeouts: a real replica, with its timeouts set small, closes a connection that
// sends its headers too slowly after TOKENSVC_READ_HEADER_TIMEOUT, one that sends its body too
// slowly after TOKENSVC_READ_TIMEOUT, and an idle keep-alive connection after
// TOKENSVC_IDLE_TIMEOUT; none of them before its timeout.
func TestServerTimeouts(t *testing.T) {
	const (
		headerTimeout = 500 * time.Millisecond
		readTimeout   = 1500 * time.Millisecond
		idleTimeout   = 2500 * time.Millisecond
		// Bounds the wait for each close; far below the defaults (5s, 10s, 60s), so a replica
		// that ignored the settings fails.
		slack = 2 * time.Second
	)
	r := startReplica(t, "replica-timeouts", map[string]string{
		"TOKENSVC_DATABASE_URL":        pg.NewDatabase(t),
		"TOKENSVC_SIGNING_KEY_FILE":    testKeyFile(t),
		"TOKENSVC_READ_HEADER_TIMEOUT": headerTimeout.String(),
		"TOKENSVC_READ_TIMEOUT":        readTimeout.String(),
		"TOKENSVC_IDLE_TIMEOUT":        idleTimeout.String(),
	})
	// The replica with the defaults (5s, 10s, 60s) shows that closedAfter sees a connection
	// the server keeps open: each case's wait ends at its bound there.
	defaults := startReplica(t, "replica-default-timeouts", map[string]string{
		"TOKENSVC_DATABASE_URL":     pg.NewDatabase(t),
		"TOKENSVC_SIGNING_KEY_FILE": testKeyFile(t),
	})
	for _, tc := range slowClients(headerTimeout, readTimeout, idleTimeout) {
		t.Run("defaults/"+tc.name, func(t *testing.T) {
			t.Parallel()
			if elapsed, err := closedAfter(defaults.addr, tc.send, tc.answers, tc.timeout); err == nil {
				t.Errorf("with the default timeouts the connection closed after %s, before %s", elapsed.Round(time.Millisecond), tc.timeout)
			}
		})
	}
	for _, tc := range slowClients(headerTimeout, readTimeout, idleTimeout) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			elapsed, err := closedAfter(r.addr, tc.send, tc.answers, tc.timeout+slack)
			if err != nil {
				t.Fatal(err)
			}
			// The server's clock starts a little before the client's (at accept, or once it has
			// written the response the client is still reading): early allows for that, and
			// is far below the gaps between the three timeouts, so a close by the wrong one fails.
			const early = 200 * time.Millisecond
			if elapsed < tc.timeout-early || elapsed > tc.timeout+slack {
				t.Errorf("connection closed %s after the client went quiet, want between %s (the timeout, less %s) and %s",
					elapsed.Round(time.Millisecond), tc.timeout-early, early, tc.timeout+slack)
			}
		})
	}
	t.Cleanup(func() {
		if res := send(context.Background(), &http.Client{Timeout: 10 * time.Second}, r, `{"merchant_id":"m","external_id":"after"}`); res.Err != nil || res.Status != http.StatusOK {
			t.Errorf("registration after the slow clients = %+v, want 200", res)
		}
	})
}

// slowClient is a client that sends something and then goes quiet.
type slowClient struct {
	name    string
	send    string // what the client sends, then nothing more
	answers int    // responses to read before the wait for the close starts
	timeout time.Duration
}

// slowClients are a client slow to send its headers, one slow to send its body, and an idle
// keep-alive connection, each with the timeout that should close it.
func slowClients(header, read, idle time.Duration) []slowClient {
	return []slowClient{
		{"slow headers", "POST /v1/tokens HTTP/1.1\r\nHost: tokensvc\r\nContent-Type: application/json\r\n", 0, header},
		{"slow body", "POST /v1/tokens HTTP/1.1\r\nHost: tokensvc\r\nContent-Type: application/json\r\n" +
			"Authorization: Bearer " + keyFor("m") + "\r\nContent-Length: 100\r\n\r\n{\"merchant_id\":", 0, read},
		{"idle keep-alive", "GET /livez HTTP/1.1\r\nHost: tokensvc\r\n\r\n", 1, idle},
	}
}

// closedAfter dials addr, sends req, reads answers responses, and then returns how long the
// server took to close the connection from then on. It reads until EOF (or a reset), and gives
// up at limit.
func closedAfter(addr, req string, answers int, limit time.Duration) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		return 0, err
	}
	br := bufio.NewReader(c)
	for range answers {
		_ = c.SetReadDeadline(time.Now().Add(limit))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	// Whatever the server says on its way out (a 400 for a body cut short) is read and dropped.
	_, err = io.Copy(io.Discard, br)
	elapsed := time.Since(start)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return elapsed, errors.New("the server did not close the connection within " + limit.String())
	case err != nil && !strings.Contains(err.Error(), "reset"):
		return elapsed, err
	}
	return elapsed, nil
}
