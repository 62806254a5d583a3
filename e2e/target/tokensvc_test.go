package target_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
	"github.com/stampede-e2e/stampede/e2e/request"
	"github.com/stampede-e2e/stampede/e2e/target"
	"github.com/stampede-e2e/stampede/e2e/traffic"
	"github.com/stampede-e2e/stampede/manifests"
	"github.com/stampede-e2e/stampede/service/apikey"
)

// tokensvcFile is the bundled token service's target file.
const tokensvcFile = "../../targets/tokensvc/target.yaml"

func loadTokensvc(t *testing.T) *target.Target {
	t.Helper()
	tg, err := target.Load(tokensvcFile)
	if err != nil {
		t.Fatalf("the token service's target file is refused:\n%v", err)
	}
	return tg
}

// TestTokensvcDeploy holds the file's deploy section to the manifests' names.
func TestTokensvcDeploy(t *testing.T) {
	d := loadTokensvc(t).Deploy
	if d.Workload.Name != manifests.TokensvcName || d.Workload.Container != manifests.TokensvcName || d.Service.Name != manifests.TokensvcName {
		t.Errorf("workload/service %+v %+v, want %s", d.Workload, d.Service, manifests.TokensvcName)
	}
	if d.Service.Port != manifests.TokensvcServicePort {
		t.Errorf("service port %d, want %d", d.Service.Port, manifests.TokensvcServicePort)
	}
	image, _, _ := strings.Cut(manifests.TokensvcPlaceholderImage, ":")
	if len(d.Images) != 1 || d.Images[0].Name != image {
		t.Errorf("images %+v, want %s", d.Images, image)
	}
	if d.Database.Bundled == nil {
		t.Error("the token service runs on the bundled PostgreSQL")
	}
}

// TestTokensvcRequest holds the create request to the one the suite sent before requests were
// the target's: POST /v1/tokens, a JSON body of merchant_id, external_id, email and name (the
// last two left out when empty), and the tenant's key as a bearer token.
func TestTokensvcRequest(t *testing.T) {
	tg := loadTokensvc(t)
	r := target.RequestOf(tg.Create, tg.Identity)
	if r.Method != http.MethodPost || r.Path != "/v1/tokens" {
		t.Errorf("%s %s, want POST /v1/tokens", r.Method, r.Path)
	}
	if r.Auth != (request.Auth{Header: "Authorization", Bearer: true}) {
		t.Errorf("auth %+v, want a bearer key in Authorization", r.Auth)
	}
	quiet := history.Customer{Tenant: "m-1", EntityKey: "c-9-0"}
	for _, tc := range []struct {
		c    history.Customer
		want string // the body as the suite marshalled it before
	}{
		{traffic.Customers(7, 2, 2)[1], `{"merchant_id":"m-1","external_id":"c-7-0","email":"c-7-0@stampede.test","name":"Customer 1"}`},
		{quiet, `{"merchant_id":"m-1","external_id":"c-9-0"}`},
	} {
		var got, want map[string]any
		if err := json.Unmarshal(r.BodyOf(tc.c), &got); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal([]byte(tc.want), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("body of %s: %v, want %v", tc.c, got, want)
		}
		h := r.Header(tc.c)
		if len(h) != 1 || h.Get("Content-Type") != "application/json" {
			t.Errorf("headers of %s: %v, want Content-Type: application/json alone", tc.c, h)
		}
		if u := r.URL("http://svc:8080/", tc.c); u != "http://svc:8080/v1/tokens" {
			t.Errorf("url %s", u)
		}
	}
	if tg.Identity.Key.Field != "external_id" || tg.Identity.Tenant.Field != "merchant_id" {
		t.Errorf("identity %+v", tg.Identity)
	}
}

// TestTokensvcResponse holds the response section to the service's answer: its pointers name
// the members every success lists, in JSON, with Cache-Control no-store.
func TestTokensvcResponse(t *testing.T) {
	tg := loadTokensvc(t)
	r := tg.Response
	for name, a := range map[string]target.Answer{"new": r.Outcomes.New, "existing": r.Outcomes.Existing} {
		var pointers []string
		for _, m := range a.Members {
			name, _, _ := strings.Cut(m, ":")
			pointers = append(pointers, "/"+name)
		}
		if got := []string{r.Credential, r.ID, r.Created}; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(pointers))) {
			t.Errorf("%s: pointers %v, the answer's members %v", name, got, a.Members)
		}
		if a.Status != 200 || a.ContentType != "application/json" || a.Headers["Cache-Control"] != "no-store" {
			t.Errorf("%s: %+v, want 200 application/json, Cache-Control no-store", name, a)
		}
	}
	v := r.Verifier
	if v == nil || v.Type != "jwt" || v.JWKSPath != manifests.TokensvcJWKSPath || !slices.Equal(v.Algorithms, []string{"EdDSA"}) {
		t.Fatalf("verifier %+v", v)
	}
	if v.Issuer.Default != manifests.TokensvcIssuer || v.Audience.Default != manifests.TokensvcAudience {
		t.Errorf("issuer %q audience %q, the suite expects %q %q", v.Issuer.Default, v.Audience.Default, manifests.TokensvcIssuer, manifests.TokensvcAudience)
	}
	if ttl, err := time.ParseDuration(v.TTL.Default); err != nil || ttl != manifests.TokensvcTokenTTL {
		t.Errorf("ttl %q, the suite expects %s", v.TTL.Default, manifests.TokensvcTokenTTL)
	}
	if o := tg.Observability; o == nil || o.PodHeader != "X-Served-By" || o.HandlerIntervalHeader != traffic.ServerTimingHeader ||
		o.Metrics == nil || o.Metrics.Port != manifests.TokensvcMetricsPort {
		t.Errorf("observability %+v", o)
	}
}

// serviceStrings returns the string literals that re matches (its first group) in the token
// service's HTTP package, read from its source: the service is another module, whose internal
// packages this one cannot import.
func serviceStrings(t *testing.T, re string) []string {
	t.Helper()
	files, err := filepath.Glob("../../service/internal/httpapi/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("the service's sources: %v", err)
	}
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestTokensvcErrors holds the error codes to those the service writes, and the outcome
// counter's values to those it counts, so that a code or an outcome added to the service that
// this file does not follow fails here.
func TestTokensvcErrors(t *testing.T) {
	tg := loadTokensvc(t)
	if tg.Errors.CodePointer != "/error" || tg.Errors.ContentType != "application/json" {
		t.Errorf("code pointer %q, content type %q", tg.Errors.CodePointer, tg.Errors.ContentType)
	}
	var codes []string
	for _, a := range tg.Errors.Answers {
		if !slices.Contains(codes, a.Code) {
			codes = append(codes, a.Code)
		}
		if a.RetryAfter != (a.Status == 409 || a.Status == 503) {
			t.Errorf("%d %s: retryAfter %v: the service sends Retry-After with its 409 and 503 alone", a.Status, a.Code, a.RetryAfter)
		}
	}
	slices.Sort(codes)
	if want := serviceStrings(t, `Code: +"([a-z_]+)"`); !slices.Equal(codes, want) {
		t.Errorf("error codes %v, the service writes %v", codes, want)
	}
	v := tg.Observability.OutcomeCounter.Values
	values := []string{v.New, v.Existing, v.NoID, v.InvalidInput}
	for _, o := range v.Errors {
		values = append(values, o)
	}
	slices.Sort(values)
	if want := serviceStrings(t, `outcome[A-Z][A-Za-z]* += "([a-z_]+)"`); !slices.Equal(values, want) {
		t.Errorf("outcome values %v, the service counts %v", values, want)
	}
}

// TestTokensvcModes holds the modes to the service's strategies and the known bugs the canaries
// must find (check.KnownBugs); check's TestTokensvcContracts holds the contracts derived from
// them to the ones the token service's runs were judged by.
func TestTokensvcModes(t *testing.T) {
	tg := loadTokensvc(t)
	config, err := os.ReadFile("../../service/internal/config/config.go")
	if err != nil {
		t.Fatal(err)
	}
	var strategies []string
	for _, m := range regexp.MustCompile(`Strategy[A-Za-z]+ +Strategy = "([a-z-]+)"`).FindAllStringSubmatch(string(config), -1) {
		strategies = append(strategies, m[1])
	}
	slices.Sort(strategies)
	var names []string
	for _, m := range tg.Modes {
		names = append(names, m.Name)
	}
	if !slices.Equal(slices.Sorted(slices.Values(names)), strategies) {
		t.Fatalf("modes %v, strategies %v", names, strategies)
	}
	api, err := check.APIFromTarget(tg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range tg.Modes {
		if m.ConfigMap == nil || m.ConfigMap.Data["TOKENSVC_CREATE_STRATEGY"] != m.Name {
			t.Errorf("%s: configMap %+v does not set its strategy", m.Name, m.ConfigMap)
		}
		if _, err := api.Contract(m.Name); err != nil {
			t.Error(err)
		}
		bug, broken := check.KnownBugOf(m.Name)
		if m.Contract.ExactlyOnce == broken {
			t.Errorf("%s: exactlyOnce %v, but known broken: %v", m.Name, m.Contract.ExactlyOnce, broken)
		}
		if !broken {
			if m.Canary != nil {
				t.Errorf("%s: a canary for a mode without a known bug", m.Name)
			}
			continue
		}
		var kinds []string
		for _, k := range bug.Kinds {
			kinds = append(kinds, string(k))
		}
		if m.Canary == nil || !slices.Equal(m.Canary.Findings, kinds) {
			t.Errorf("%s: canary %+v, the known bug's kinds %v", m.Name, m.Canary, kinds)
		}
	}
}

// TestTokensvcTruth holds the truth's agree columns to the payload the suite sends: every
// request member beyond the identity is one the row must keep, in the column of its name.
func TestTokensvcTruth(t *testing.T) {
	tg := loadTokensvc(t)
	c := tg.Truth.Columns
	var payload []string
	for field := range tg.Create.Body {
		if field != tg.Identity.Key.Field && field != tg.Identity.Tenant.Field {
			payload = append(payload, field)
		}
	}
	if got := slices.Sorted(maps.Keys(c.Agree)); !slices.Equal(got, slices.Sorted(slices.Values(payload))) {
		t.Errorf("agree %v, the payload %v", got, payload)
	}
	for field, col := range c.Agree {
		if field != col {
			t.Errorf("agree %s: %s: the service keeps each request member in the column of its name", field, col)
		}
	}
}

// TestFindingKindsAreTheCheckers: the kinds a canary may name are exactly the checker's Kind
// constants, read from its source so that a new kind cannot be missed.
func TestFindingKindsAreTheCheckers(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../check/findings.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || vs.Type == nil || len(vs.Values) != 1 {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Kind" {
			if lit, ok := vs.Values[0].(*ast.BasicLit); ok {
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				kinds = append(kinds, s)
			}
		}
		return true
	})
	if len(kinds) == 0 {
		t.Fatal("no Kind constant found in e2e/check/findings.go")
	}
	if got := target.FindingKinds(); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(kinds))) {
		t.Errorf("canary kinds %v, the checker's %v", got, kinds)
	}
}

// TestTokensvcKeys holds the file's key format and generated Secrets to the service: a key the
// suite makes from the file is one service/apikey would make, and its keys file line is
// byte-identical to apikey.FileLine, which the service reads.
func TestTokensvcKeys(t *testing.T) {
	tg := loadTokensvc(t)
	k := tg.Create.Auth.Keys
	if k == nil || k.Prefix != apikey.Prefix {
		t.Fatalf("auth keys %+v, want prefix %s", k, apikey.Prefix)
	}
	key, err := k.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.FileLine("m-1", key), apikey.FileLine("m-1", key); got != want {
		t.Errorf("FileLine = %q, apikey.FileLine = %q", got, want)
	}
	set, err := apikey.ParseFile(bytes.NewReader(k.File(map[string]string{"m-1": key})))
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := set.Authenticate(key); !ok || m != "m-1" {
		t.Errorf("the key authenticates as %q, %v", m, ok)
	}
	var kinds []string
	for _, s := range tg.Deploy.Secrets {
		kinds = append(kinds, s.Name+"/"+s.Key+"="+s.Generate)
	}
	if want := []string{"tokensvc-signing-key/signing.pem=ed25519-pem", "tokensvc-api-keys/api-keys=tenant-keys"}; !slices.Equal(kinds, want) {
		t.Errorf("deploy.secrets %q, want %q (the Secrets tokensvc.yaml mounts)", kinds, want)
	}
	if e := tg.Deploy.Database.Bundled.Endpoint; e == nil || e.ConfigMap != "tokensvc-config" || e.HostKey != "TOKENSVC_DATABASE_HOST" || e.PortKey != "TOKENSVC_DATABASE_PORT" {
		t.Errorf("endpoint %+v, want the ConfigMap and keys TOKENSVC_DATABASE_URL is built from", e)
	}
}
