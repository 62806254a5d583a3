package target

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSchemaUpToDate: the committed schema is what the Go types generate now.
func TestSchemaUpToDate(t *testing.T) {
	want, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("target.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("target.schema.json differs from the Go types: run go generate ./e2e/target")
	}
}

// TestSchemaAgreesWithStructs walks the committed schema beside the Go types, reading the
// struct tags itself, not through the decoder's helpers: every field the decoder knows is in
// the schema and every property of the schema is a field, with the same required lists,
// enums and JSON types.
func TestSchemaAgreesWithStructs(t *testing.T) {
	b, err := os.ReadFile("target.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	if root["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", root["$schema"])
	}
	defs, _ := root["$defs"].(map[string]any)
	agree(t, "Target", reflect.TypeFor[Target](), nil, root, defs)
}

func agree(t *testing.T, path string, typ reflect.Type, enum []string, s map[string]any, defs map[string]any) {
	t.Helper()
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		s, _ = defs[name].(map[string]any)
		if s == nil {
			t.Errorf("%s: $ref %s names no definition", path, ref)
			return
		}
	}
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := map[reflect.Kind]string{reflect.Struct: "object", reflect.Map: "object", reflect.Slice: "array",
		reflect.String: "string", reflect.Int: "integer", reflect.Bool: "boolean"}[typ.Kind()]
	if s["type"] != want {
		t.Errorf("%s: schema type %v, Go %s", path, s["type"], typ)
		return
	}
	switch typ.Kind() {
	case reflect.Struct:
		props, _ := s["properties"].(map[string]any)
		var names, required []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := f.Tag.Get("yaml")
			if name == "" {
				continue
			}
			names = append(names, name)
			if f.Tag.Get("target") == "required" {
				required = append(required, name)
			}
			p, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s: the decoder knows %q, the schema does not", path, name)
				continue
			}
			var fenum []string
			if e := f.Tag.Get("enum"); e != "" {
				fenum = strings.Split(e, ",")
			}
			agree(t, path+"."+name, f.Type, fenum, p, defs)
		}
		for name := range props {
			if !slices.Contains(names, name) {
				t.Errorf("%s: the schema has %q, the decoder does not", path, name)
			}
		}
		if got := strings2(s["required"]); !slices.Equal(got, required) {
			t.Errorf("%s: schema requires %v, the decoder %v", path, got, required)
		}
		if s["additionalProperties"] != false {
			t.Errorf("%s: the schema allows unknown fields, the decoder refuses them", path)
		}
	case reflect.Slice:
		items, _ := s["items"].(map[string]any)
		agree(t, path+"[]", typ.Elem(), enum, items, defs)
	case reflect.Map:
		add, _ := s["additionalProperties"].(map[string]any)
		agree(t, path+".*", typ.Elem(), nil, add, defs)
	case reflect.String:
		if got := strings2(s["enum"]); !slices.Equal(got, enum) {
			t.Errorf("%s: schema enum %v, decoder %v", path, got, enum)
		}
	}
}

// strings2 reads a JSON array of strings.
func strings2(v any) []string {
	a, _ := v.([]any)
	var out []string
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
