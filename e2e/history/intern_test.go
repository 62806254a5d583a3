package history

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// stringFields calls f with every string of v (a struct, through its nested structs) and its
// field path.
func stringFields(v reflect.Value, path string, f func(path string, s reflect.Value)) {
	switch v.Kind() {
	case reflect.String:
		f(path, v)
	case reflect.Struct:
		for i := range v.NumField() {
			stringFields(v.Field(i), path+"."+v.Type().Field(i).Name, f)
		}
	}
}

// TestReadJSONLSharesEveryString reads back two ops alike in every string (through a buffer,
// so that the decoder allocates each anew) and wants each string of the second to be the
// first's bytes: a string field added to Op and not to Interner.Op fails here by name.
func TestReadJSONLSharesEveryString(t *testing.T) {
	var op Op
	stringFields(reflect.ValueOf(&op).Elem(), "Op", func(path string, s reflect.Value) { s.SetString("value of " + path) })
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, []Op{op, op}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !reflect.DeepEqual(got[0], op) || !reflect.DeepEqual(got[1], op) {
		t.Fatalf("read back %+v, want twice %+v", got, op)
	}
	data := map[string]*byte{}
	stringFields(reflect.ValueOf(got[0]), "Op", func(path string, s reflect.Value) { data[path] = unsafe.StringData(s.String()) })
	stringFields(reflect.ValueOf(got[1]), "Op", func(path string, s reflect.Value) {
		if unsafe.StringData(s.String()) != data[path] {
			t.Errorf("%s: the second op holds a copy of its own; Interner.Op does not intern it", path)
		}
	})
	if len(data) < 9 {
		t.Fatalf("found %d string fields in Op, want at least 9: %v", len(data), data)
	}
}

func TestInterner(t *testing.T) {
	var in Interner
	a := in.String(strings.Repeat("x", 3))
	if b := in.Bytes([]byte("xxx")); unsafe.StringData(b) != unsafe.StringData(a) {
		t.Error("Bytes of a value kept returned a copy")
	}
	if b := in.String(strings.Clone(a)); unsafe.StringData(b) != unsafe.StringData(a) {
		t.Error("String of a value kept returned a copy")
	}
	if c := in.Bytes([]byte("yyy")); c != "yyy" || in.String("yyy") != c || unsafe.StringData(in.String("yyy")) != unsafe.StringData(c) {
		t.Errorf("Bytes of a new value: %q, not kept", c)
	}
	if in.String("") != "" || in.Bytes(nil) != "" {
		t.Error("the empty string is not empty")
	}
}

// TestReadJSONLFile reads back a saved history into a slice of exactly its ops, with or without
// the last newline, and says which file it could not read.
func TestReadJSONLFile(t *testing.T) {
	c := Customer{Index: 1, Tenant: "m-1", EntityKey: "c-1"}
	ops := []Op{{Customer: c, Seq: 0, Phase: PhaseBurst, Error: "EOF"}}
	for seq := 1; seq < 10; seq++ {
		ops = append(ops, Op{Customer: c, Seq: seq, Phase: PhaseBurst, Status: 200, Body: "{}\n", Pod: "a"})
	}
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, ops); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"ops.jsonl": buf.String(), "no-last-newline.jsonl": strings.TrimSuffix(buf.String(), "\n")} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadJSONLFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, ops) {
			t.Errorf("%s: read back %+v, want %+v", name, got, ops)
		}
		if cap(got) > len(ops)+2 {
			t.Errorf("%s: %d ops in a slice of capacity %d: grown, not counted", name, len(got), cap(got))
		}
	}
	if _, err := ReadJSONLFile(filepath.Join(dir, "absent.jsonl")); err == nil || !strings.Contains(err.Error(), "absent.jsonl") {
		t.Errorf("reading an absent file: %v, want an error naming it", err)
	}
}
