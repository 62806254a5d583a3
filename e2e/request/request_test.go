package request

import (
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/history"
)

func TestTemplate(t *testing.T) {
	tmpl := Template{
		Method:  "PUT",
		Path:    "/t/{{ tenant }}/e/{{key}}",
		Headers: map[string]string{"X-Name": "{{name}}", "X-Note": "{{email}}", "X-Kind": "signup"},
		Auth:    Auth{Header: "Authorization", Bearer: true},
		Body:    map[string]string{"who": "{{name}}", "mail": "{{email}}", "unknown": "{{nope}}"},
	}
	c := history.Customer{Tenant: "m/1", EntityKey: "c 2", Name: "Ann"}
	if got := tmpl.URL("http://svc:80/", c); got != "http://svc:80/t/m%2F1/e/c%202" {
		t.Errorf("url %s: want the placeholders filled and path-escaped", got)
	}
	h := tmpl.Header(c)
	if h.Get("X-Name") != "Ann" || h.Get("X-Kind") != "signup" || h.Get("Content-Type") != "application/json" || len(h) != 3 {
		t.Errorf("headers %v: want X-Note left out (empty), Content-Type for the body", h)
	}
	if got := string(tmpl.BodyOf(c)); got != `{"unknown":"{{nope}}","who":"Ann"}` {
		t.Errorf("body %s", got)
	}
	if tmpl.Auth.Value("k") != "Bearer k" || (Auth{Header: "X-Api-Key"}).Value("k") != "k" {
		t.Error("key values")
	}
	if err := tmpl.Validate("X-Kind"); err == nil || !strings.Contains(err.Error(), "X-Kind") {
		t.Errorf("a reserved header passed: %v", err)
	}
	if err := (Template{Path: "v1", Auth: Auth{Bearer: true}}).Validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want three problems at once, got %v", err)
	}
}
