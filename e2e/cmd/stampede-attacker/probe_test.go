package main

import (
	"bytes"
	"encoding/json"
	"net"
	"testing"
)

func TestProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().String()
	// A port that was just free and is closed again: refused at once.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln2.Addr().String()
	ln2.Close()
	defer ln.Close()
	for addr, want := range map[string]bool{open: true, closed: false} {
		var out, errb bytes.Buffer
		if rc := probe([]string{"-addr", addr, "-timeout", "2s"}, &out, &errb); rc != 0 {
			t.Fatalf("probe %s: rc %d, %s", addr, rc, errb.String())
		}
		var r ProbeResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("probe output %q: %v", out.String(), err)
		}
		if r.Connected != want || r.Addr != addr || (!want && r.Error == "") {
			t.Errorf("probe %s = %+v, want connected=%v", addr, r, want)
		}
	}
	var out, errb bytes.Buffer
	if rc := probe([]string{"-addr", "nohost"}, &out, &errb); rc != 2 || errb.Len() == 0 {
		t.Errorf("probe without a port: rc %d, stderr %q", rc, errb.String())
	}
}
