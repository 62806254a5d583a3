package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"time"
)

// ProbeResult is what `stampede-attacker probe` prints, one JSON line: whether a TCP connection
// to Addr opened within the timeout. The network-policy spec runs it in a pod of its own and
// reads it from the pod's log.
type ProbeResult struct {
	Addr      string `json:"addr"`
	Connected bool   `json:"connected"`
	Error     string `json:"error,omitempty"`
	TookMS    int64  `json:"took_ms"`
}

// probe dials -addr once (TCP, -timeout) and prints a ProbeResult. The exit status is 0 whether
// or not the connection opened: the result is the line, and a refused or dropped connection is
// an answer, not a failure of the probe. Bad flags exit 2.
func probe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stampede-attacker probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "host:port to open a TCP connection to (required)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the connection")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil || fs.NArg() > 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "stampede-attacker probe: want -addr host:port and a positive -timeout")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", *addr)
	r := ProbeResult{Addr: *addr, Connected: err == nil, TookMS: time.Since(start).Milliseconds()}
	if err != nil {
		r.Error = err.Error()
	} else {
		_ = conn.Close()
	}
	line, _ := json.Marshal(r)
	fmt.Fprintln(stdout, string(line))
	return 0
}
