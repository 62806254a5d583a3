//go:build selftest

package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/service/mutants"
)

// registerContact registers customer externalID of merchant "m" with m's own key, sending an
// email and a name, and returns the answer and the row's email and name.
func registerContact(t *testing.T, e mutantEnv, externalID, email, name string) (r reply, rowEmail, rowName *string) {
	t.Helper()
	body := `{"merchant_id":"m","external_id":"` + externalID + `","email":"` + email + `","name":"` + name + `"}`
	req := httptest.NewRequest(http.MethodPost, "/v1/tokens", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testKey)
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, req)
	r = reply{status: w.Code, header: w.Header()}
	if err := json.Unmarshal(w.Body.Bytes(), &r.TokenResponse); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	mustOK(t, r)
	if err := e.pool.QueryRow(context.Background(), "SELECT email, name FROM customers WHERE id = $1", r.CustomerID).Scan(&rowEmail, &rowName); err != nil {
		t.Fatal(err)
	}
	return r, rowEmail, rowName
}

// issue 18, rows: the checks of its mutants, added to mutantChecks (TestMutants runs them).
func init() {
	mutantChecks[mutants.StrayRow] = func(t *testing.T, e mutantEnv) {
		first := mustOK(t, register(t, e.srv, "c1"))
		again := mustOK(t, register(t, e.srv, "c1"))
		lost := mustOK(t, register(t, e.loser, "c1"))
		if !first.Created || again.Created || lost.Created || again.Token != first.Token || lost.Token != first.Token {
			t.Fatalf("answers: first %+v, existing %+v, lost race %+v; want production's", first, again, lost)
		}
		// One row of c1, as the answers say, and one more that no request asked for.
		if n := rowCount(t, e.pool, "external_id = 'c1'"); n != 1 {
			t.Fatalf("%d rows of c1, want 1", n)
		}
		if n := rowCount(t, e.pool, "merchant_id = 'm' AND external_id = 'c1-shadow'"); n != 1 || rowCount(t, e.pool, "true") != 2 {
			t.Fatalf("%d shadow rows, %d rows in all; want one stray row beside c1's", n, rowCount(t, e.pool, "true"))
		}
	}
	mutantChecks[mutants.TruncatedName] = func(t *testing.T, e mutantEnv) {
		r, email, name := registerContact(t, e, "c1", "c1@example.com", "Customer Number 1")
		if _, err := verify(t, e.srv, r.Token); err != nil || !r.Created {
			t.Fatalf("answer %+v (%v); want a created customer with a valid token", r, err)
		}
		if email == nil || *email != "c1@example.com" || name == nil || *name != "Customer" {
			t.Fatalf("row: email %v, name %v; want the email as sent and the name cut to 8 bytes", email, name)
		}
	}
}
