package framework

import (
	"flag"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/traffic"
)

func outcome(ops ...history.Op) Outcome { return Outcome{Traffic: &traffic.Outcome{History: ops}} }

func answer(c history.Customer, seq int, token string, created bool) history.Op {
	body := `{"token":"` + token + `","customer_id":"x","created":false}`
	if created {
		body = strings.Replace(body, `"created":false`, `"created":true`, 1)
	}
	return history.Op{Customer: c, Seq: seq, Status: 200, Body: body, Pod: "pod-a"}
}

func TestSameTokens(t *testing.T) {
	a := history.Customer{Index: 0, MerchantID: "m", ExternalID: "a"}
	b := history.Customer{Index: 1, MerchantID: "m", ExternalID: "b"}
	before := outcome(answer(a, 0, "ta", true), answer(b, 0, "tb", true))
	if err := SameTokens(before, outcome(answer(a, 0, "ta", false), answer(a, 1, "ta", false), answer(b, 0, "tb", false))); err != nil {
		t.Errorf("same tokens: %v", err)
	}
	if err := SameTokens(before, outcome(answer(a, 0, "ta", false), answer(a, 1, "other", false))); err == nil {
		t.Error("a new token for an existing customer was not reported")
	}
	if err := SameTokens(outcome(answer(a, 0, "ta", true), answer(a, 1, "ta2", true)), outcome(answer(a, 0, "ta", false))); err == nil {
		t.Error("a customer with two tokens before was not reported")
	}
	if err := SameTokens(before, outcome(history.Op{Customer: a, Status: 409, Body: `{"error":"conflict"}`})); err != nil {
		t.Errorf("a clean error is not a token: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		var c Config
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			return c, err
		}
		return c, c.Validate()
	}
	if c, err := parse(); err != nil || c.ClusterName != "stampede-e2e" {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	if c, err := parse("-e2e.mode=reuse"); err != nil || c.ClusterName != "stampede" {
		t.Errorf("reuse: %+v, %v", c, err)
	}
	for _, bad := range [][]string{
		{"-e2e.mode=bogus"},
		{"-e2e.mode=existing"},
		{"-e2e.burst=1"},
		{"-e2e.replicas=1"},
		{"-e2e.customers=0"},
	} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
