package target

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/request"
)

// TestRequestOfAFile: goodFile's orders request becomes a template whose key goes bare in
// X-Api-Key and whose entity is named by Idempotency-Key, whether create.headers lists that
// header or leaves it to identity.key.header alone.
func TestRequestOfAFile(t *testing.T) {
	want := request.Template{
		Method:  "POST",
		Path:    "/v1/orders",
		Headers: map[string]string{"Idempotency-Key": "{{key}}"},
		Auth:    request.Auth{Header: "X-Api-Key"},
		Body:    map[string]string{"tenant": "{{tenant}}", "email": "{{email}}"},
	}
	for name, file := range map[string]string{
		"listed":  goodFile,
		"implied": strings.Replace(goodFile, "  headers:\n    Idempotency-Key: \"{{key}}\"\n", "", 1),
	} {
		tg, err := Load(writeTarget(t, file))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "implied" && len(tg.Create.Headers) != 0 {
			t.Fatalf("implied: create.headers %v still there", tg.Create.Headers)
		}
		if got := tg.Request(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v\nwant %+v", name, got, want)
		}
		if err := tg.Request().Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
