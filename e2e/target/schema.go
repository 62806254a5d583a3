package target

import (
	"encoding/json"
	"reflect"
)

//go:generate go run ./internal/schemagen target.schema.json

// SchemaID is the $id of the target file's JSON Schema.
const SchemaID = "https://stampede.dev/schemas/target/v1alpha1.json"

// JSONSchema returns the JSON Schema (draft 2020-12) of the target file, derived from the Go
// types and their tags as the decoder reads them; target.schema.json is its committed copy.
func JSONSchema() ([]byte, error) {
	defs := map[string]any{}
	root := schemaOf(reflect.TypeFor[Target](), nil, defs)
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "stampede target file (" + APIVersion + ")"
	root["$defs"] = defs
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// schemaOf is the schema of a value of type t; a struct other than the root goes into defs
// under its name and is referenced.
func schemaOf(t reflect.Type, enum []string, defs map[string]any) map[string]any {
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), enum, defs)
	case reflect.Struct:
		props := map[string]any{}
		required := []string{}
		for _, f := range fieldsOf(t) {
			props[f.name] = schemaOf(t.Field(f.index).Type, f.enum, defs)
			if f.required {
				required = append(required, f.name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		if t == reflect.TypeFor[Target]() {
			return s
		}
		defs[t.Name()] = s
		return map[string]any{"$ref": "#/$defs/" + t.Name()}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), enum, defs)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), nil, defs)}
	case reflect.String:
		if len(enum) > 0 {
			return map[string]any{"type": "string", "enum": enum}
		}
		return map[string]any{"type": "string"}
	case reflect.Int:
		return map[string]any{"type": "integer"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	}
	panic("target: no schema for " + t.String()) // a field type the decoder does not handle either
}
