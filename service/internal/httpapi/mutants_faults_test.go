//go:build selftest

package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stampede-e2e/stampede/service/mutants"
)

// issue 18, faults: the checks of its mutants, added to mutantChecks (TestMutants runs them).
func init() {
	mutantChecks[mutants.ReadyBeforePool] = func(t *testing.T, e mutantEnv) {
		// Just started: /readyz says ready, yet a registration fails as if the database were down
		// (it is up: the check pings it).
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("/readyz %d, want 200: the mutant reports ready", w.Code)
		}
		if err := e.srv.p.DBCheck.Ping(t.Context()); err != nil {
			t.Fatalf("the database is up: %v", err)
		}
		if r := register(t, e.srv, "c1"); r.status != 503 || r.err.Code != "unavailable" || r.header.Get("Retry-After") != "1" {
			t.Fatalf("registration while ready: %d %+v %v, want 503 unavailable with Retry-After", r.status, r.err, r.header)
		}
		if n := rowCount(t, e.pool, "true"); n != 0 {
			t.Fatalf("%d rows, want none", n)
		}
	}
	mutantChecks[mutants.ConflictWithoutRace] = func(t *testing.T, e mutantEnv) {
		// One request at a time, each for a new customer: no race, so no 409 is due; the mutant
		// answers about half of them 409 and creates nothing for those.
		conflicts := 0
		for i := range 40 {
			ext := fmt.Sprintf("c%d", i)
			r := register(t, e.srv, ext)
			switch {
			case r.status == 409 && r.err.Code == "conflict" && r.header.Get("Retry-After") == "1":
				conflicts++
				if n := rowCount(t, e.pool, "external_id = '"+ext+"'"); n != 0 {
					t.Fatalf("a 409 created %d rows", n)
				}
			case r.status != 200:
				t.Fatalf("%s: %d %+v, want 200 or 409 conflict with Retry-After", ext, r.status, r.err)
			}
		}
		if conflicts == 0 || conflicts == 40 {
			t.Fatalf("%d of 40 lone first registrations answered 409, want some, not all", conflicts)
		}
		// A customer that exists is found, never refused.
		first := mustOK(t, registerUntilOK(t, e.srv, "c-exists"))
		for range 10 {
			if r := mustOK(t, register(t, e.srv, "c-exists")); r.Token != first.Token {
				t.Fatalf("an existing customer got another token")
			}
		}
	}
}

// registerUntilOK registers externalID again while it is answered 409, at most 64 times.
func registerUntilOK(t *testing.T, h http.Handler, externalID string) reply {
	t.Helper()
	var r reply
	for range 64 {
		if r = register(t, h, externalID); r.status != 409 {
			return r
		}
	}
	return r
}
