package chaos

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	toxiproxyserver "github.com/Shopify/toxiproxy/v2"
	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	toxiproxycomp "github.com/stampede-e2e/stampede/manifests/components/toxiproxy"
)

// echoServer answers every line with the same line, like a database answering a statement.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// proxied starts an in-process toxiproxy with the proxy toxiproxycomp.ProxyName in front of an echo server,
// and returns the Target that drives it and the proxy's listen address.
func proxied(t *testing.T) (*Target, string) {
	t.Helper()
	api := toxiproxyserver.NewServer(toxiproxyserver.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	srv := httptest.NewServer(api.Routes())
	t.Cleanup(srv.Close)
	client := toxiproxy.NewClient(srv.URL)
	p, err := client.CreateProxy(toxiproxycomp.ProxyName, "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Delete() })
	return &Target{Toxiproxy: client, ToxiproxyImage: "stampede/toxiproxy:test"}, p.Listen
}

// roundTrip sends one line through addr and returns how long the echo took.
func roundTrip(addr string, timeout time.Duration) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	start := time.Now()
	if _, err := io.WriteString(c, "SELECT 1\n"); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "SELECT 1\n" {
		return 0, errors.New("echo changed the line: " + line)
	}
	return time.Since(start), nil
}

func TestDBLatencyDelaysAnswersUntilRecovered(t *testing.T) {
	target, addr := proxied(t)
	if d, err := roundTrip(addr, time.Second); err != nil || d > 15*time.Millisecond {
		t.Fatalf("before the fault: %s, %v", d, err)
	}
	inj, err := AddLatency(context.Background(), target, 60*time.Millisecond, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !inj.Held || !strings.Contains(inj.Detail, "60ms") {
		t.Errorf("injection %+v", inj)
	}
	if d, err := roundTrip(addr, time.Second); err != nil || d < 45*time.Millisecond {
		t.Errorf("under db-latency: round trip %s, %v; want at least 50ms", d, err)
	}
	if err := inj.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, err := roundTrip(addr, time.Second); err != nil || d > 15*time.Millisecond {
		t.Errorf("after recovery: %s, %v", d, err)
	}
}

func TestDBCutCutsUntilRecovered(t *testing.T) {
	for variant, want := range map[uint64]string{0: "reset_peer", 1: "timeout"} {
		t.Run(want, func(t *testing.T) {
			target, addr := proxied(t)
			inj, err := DBCut{}.Inject(context.Background(), target, Plan{Fault: "db-cut", Draw2: variant})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(inj.Detail, want) {
				t.Errorf("variant %d: detail %q, want %s", variant, inj.Detail, want)
			}
			if _, err := roundTrip(addr, 300*time.Millisecond); err == nil {
				t.Errorf("%s: a statement got through the cut", want)
			}
			if err := inj.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := roundTrip(addr, time.Second); err != nil {
				t.Errorf("%s: after recovery: %v", want, err)
			}
		})
	}
}

func TestToxicFaultsNeedAProxy(t *testing.T) {
	_, err := DBCut{}.Inject(context.Background(), &Target{}, Plan{})
	if err == nil {
		t.Errorf("db-cut without toxiproxy must fail, not pretend")
	}
}
