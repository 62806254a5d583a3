package target

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// TestSkeleton: the skeleton as written is refused with one clear line per TODO and nothing
// else; with its TODOs filled in it is a valid target.
func TestSkeleton(t *testing.T) {
	sk := string(Skeleton("shop"))
	if !strings.Contains(sk, "name: \"shop\"\n") {
		t.Fatalf("the name is not in the skeleton:\n%s", sk)
	}
	_, err := Load(writeTarget(t, sk))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("the skeleton: err = %v, want an ErrorList", err)
	}
	if n := len(todos(sk)); len(list) != n {
		t.Errorf("%d problems for %d TODOs:\n%v", len(list), n, err)
	}
	for _, e := range list {
		if !strings.HasPrefix(e.Msg, "still TODO") {
			t.Errorf("a problem other than a TODO: %v", e)
		}
	}

	// What an author writes in place of each TODO; each old text is in the skeleton once.
	filled := sk
	for _, r := range [][2]string{
		{"kustomize: TODO", "kustomize: k"},
		{"workload: {kind: Deployment, name: TODO, container: TODO}", "workload: {kind: Deployment, name: shop, container: app}"},
		{"service: {name: TODO, port: TODO}", "service: {name: shop, port: 8080}"},
		{"- name: TODO", "- name: shop/app"},
		{"role: TODO", "role: shop"},
		{"database: TODO", "database: shop"},
		{"secret: TODO", "secret: shop-db"},
		{"userKey: TODO", "userKey: user"},
		{"databaseKey: TODO", "databaseKey: db"},
		{"passwordKey: TODO", "passwordKey: password"},
		{"readiness: {path: TODO}", "readiness: {path: /ready}"},
		{"path: TODO", "path: /v1/orders"},
		{`    TODO: "{{key}}"`, "    external_id: \"{{key}}\"\n    tenant: \"{{tenant}}\""},
		{"key: {field: TODO}", "key: {field: external_id}"},
		{"tenant: {field: TODO}", "tenant: {field: tenant}"},
		{"    id: TODO", "    id: id"},
		{"    key: TODO", "    key: external_id"},
		{"    tenant: TODO", "    tenant: tenant"},
		{"id: TODO", "id: /id"},
		{"codePointer: TODO", "codePointer: /error"},
		{"409, code: TODO", "409, code: in_progress"},
		{"503, code: TODO", "503, code: unavailable"},
		{"query: TODO", "query: SELECT id, external_id, tenant, created_at FROM orders WHERE tenant = ANY($1)"},
		{"createdAt: TODO", "createdAt: created_at"},
	} {
		if strings.Count(filled, r[0]) != 1 {
			t.Fatalf("%q is not in the skeleton exactly once", r[0])
		}
		filled = strings.Replace(filled, r[0], r[1], 1)
	}
	if left := todos(filled); len(left) > 0 {
		t.Fatalf("%d TODOs left after filling:\n%s", len(left), filled)
	}
	if _, err := Load(writeTarget(t, filled)); err != nil {
		t.Errorf("the filled-in skeleton is refused:\n%v\n%s", err, filled)
	}
}

// todos finds the TODO markers of a file outside its comments.
func todos(file string) []string {
	var out []string
	for _, line := range strings.Split(file, "\n") {
		line, _, _ = strings.Cut(line, "#")
		out = append(out, regexp.MustCompile(`\bTODO\b`).FindAllString(line, -1)...)
	}
	return out
}
