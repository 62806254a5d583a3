package target

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem of a target file, at a line and column, about the field at Path (such
// as "response.id" or "modes[1].canary"; empty for the file as a whole).
type Error struct {
	File         string
	Line, Column int
	Path         string
	Msg          string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Path, e.Msg)
}

// ErrorList is every problem of one target file, sorted by line; its Error is one line each.
type ErrorList []*Error

func (es ErrorList) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// pos is where a field's value starts in the file.
type pos struct{ line, col int }

// FileName is the file a target directory holds: a directory names its target by it.
const FileName = "target.yaml"

// FileOf returns the target file that path names: path itself, or path/target.yaml when path
// is a directory.
func FileOf(path string) string {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return filepath.Join(path, FileName)
	}
	return path
}

// Load reads, decodes and validates the target file at path; relative paths in it start from
// its directory. A file with problems gives an ErrorList, every problem at once.
func Load(path string) (*Target, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read target file: %w", err)
	}
	t, err := parse(path, filepath.Dir(path), b)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Parse decodes and validates a target file's bytes; name names it in errors. Relative paths
// in it start from name's directory.
func Parse(name string, b []byte) (*Target, error) {
	return parse(name, filepath.Dir(name), b)
}

func parse(name, dir string, b []byte) (*Target, error) {
	t := &Target{file: name, dir: dir, raw: slices.Clone(b), pos: map[string]pos{}}
	d := &decoder{file: filepath.Base(name), pos: t.pos, keyPos: map[string]pos{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, ErrorList{{File: d.file, Line: 1, Column: 1, Msg: "not YAML: " + err.Error()}}
	}
	if len(doc.Content) == 0 {
		return nil, ErrorList{{File: d.file, Line: 1, Column: 1, Msg: "empty file: want apiVersion " + APIVersion + ", kind " + Kind}}
	}
	d.decode(doc.Content[0], reflect.ValueOf(t).Elem(), "", nil)
	if len(d.errs) == 0 { // fields that failed to decode would only repeat as validation errors
		d.errs = append(d.errs, t.validate(d.file)...)
	}
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b *Error) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, d.errs
	}
	return t, nil
}

// File is the path the target was read from.
func (t *Target) File() string { return t.file }

// Dir is the directory the target's relative paths start from.
func (t *Target) Dir() string { return t.dir }

// Digest is the sha256 of the file's bytes, as "sha256:<hex>": what a report names the target by.
func (t *Target) Digest() string {
	sum := sha256.Sum256(t.raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Resolve returns a path of the file (such as Deploy.Kustomize) relative to the working
// directory.
func (t *Target) Resolve(rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(t.dir, rel)
}

// ModeNamed returns the mode called name.
func (t *Target) ModeNamed(name string) (Mode, bool) {
	i := slices.IndexFunc(t.Modes, func(m Mode) bool { return m.Name == name })
	if i < 0 {
		return Mode{}, false
	}
	return t.Modes[i], true
}

// ErrorClass returns the class of the clean error (status, code), false for none.
func (t *Target) ErrorClass(status int, code string) (ErrorAnswer, bool) {
	i := slices.IndexFunc(t.Errors.Answers, func(a ErrorAnswer) bool { return a.Status == status && a.Code == code })
	if i < 0 {
		return ErrorAnswer{}, false
	}
	return t.Errors.Answers[i], true
}

// decoder fills the Go types from a yaml.Node tree, recording where each field's value is and
// collecting every problem instead of stopping at the first.
type decoder struct {
	file string
	// pos is where each field's value is, keyPos where its key is.
	pos, keyPos map[string]pos
	errs        ErrorList
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// decode fills v from n; enum is the field's allowed values, if any.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, enum []string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = pos{n.Line, n.Column}
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Value, "TODO") {
		d.errorf(n, path, "still TODO: fill it in")
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			// An optional section written but left empty is more likely unfinished than absent.
			d.errorf(n, path, "is empty: fill it in or leave it out")
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		d.decode(n, v.Elem(), path, enum)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "want a list, got %s", describe(n))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
		for i, item := range n.Content {
			d.decode(item, v.Index(i), fmt.Sprintf("%s[%d]", path, i), enum)
		}
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			d.errorf(n, path, "want a string, got %s", describe(n))
			return
		}
		if len(enum) > 0 && !slices.Contains(enum, n.Value) {
			if to, ok := RenamedFindingKinds[n.Value]; ok && slices.Contains(enum, to) {
				d.errorf(n, path, "%q was renamed %q: write the new name", n.Value, to)
				return
			}
			d.errorf(n, path, "%q is not one of %s", n.Value, strings.Join(enum, ", "))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
			d.errorf(n, path, "want a whole number, got %s", describe(n))
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || (n.Value != "true" && n.Value != "false") {
			d.errorf(n, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true")
	default:
		panic(fmt.Sprintf("target: no decoder for %s", v.Type())) // a field type this file does not handle
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	// seen holds the fields given, guessed those a typo names ("did you mean"): a typo of a
	// required field is one problem, not also a missing field.
	seen, guessed := map[string]bool{}, map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		f, ok := fieldNamed(fields, k.Value)
		if !ok {
			guess := suggest(k.Value, fields)
			hint := ""
			if guess != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", guess)
				guessed[guess] = true
			}
			d.errorf(k, path, "unknown field %q%s", k.Value, hint)
			continue
		}
		d.keyPos[join(path, f.name)] = pos{k.Line, k.Column}
		if seen[f.name] {
			d.errorf(k, path, "field %q given twice", f.name)
			continue
		}
		seen[f.name] = true
		before := len(d.errs)
		d.decode(val, v.Field(f.index), join(path, f.name), f.enum)
		if f.required && v.Field(f.index).Kind() == reflect.String && v.Field(f.index).String() == "" && len(d.errs) == before {
			d.errorf(val, join(path, f.name), "must not be empty")
		}
	}
	// A missing field is reported where its parent's key is, the line a reader looks for.
	at := n
	if p, ok := d.keyPos[path]; ok {
		at = &yaml.Node{Line: p.line, Column: p.col}
	}
	for _, f := range fields {
		if f.required && !seen[f.name] && !guessed[f.name] {
			d.errorf(at, path, "missing required field %q", f.name)
		}
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		if strings.HasPrefix(key, "TODO") {
			d.errorf(k, join(path, key), "still TODO: name the member")
			continue
		}
		if v.MapIndex(reflect.ValueOf(key)).IsValid() {
			d.errorf(k, path, "key %q given twice", key)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, join(path, key), nil)
		v.SetMapIndex(reflect.ValueOf(key), elem)
	}
}

// field is one field of a struct as the file names it.
type field struct {
	name     string
	index    int
	required bool
	enum     []string
}

// fieldsOf lists the fields of a struct type that the file can set (those with a yaml tag).
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		name := sf.Tag.Get("yaml")
		if name == "" || !sf.IsExported() {
			continue
		}
		f := field{name: name, index: i, required: sf.Tag.Get("target") == "required"}
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, ",")
		}
		out = append(out, f)
	}
	return out
}

func fieldNamed(fields []field, name string) (field, bool) {
	i := slices.IndexFunc(fields, func(f field) bool { return f.name == name })
	if i < 0 {
		return field{}, false
	}
	return fields[i], true
}

// suggest names the known field closest to a typo, within an edit distance of 2; "" for none.
func suggest(name string, fields []field) string {
	best, bestDist := "", 3
	for _, f := range fields {
		if dist := editDistance(strings.ToLower(name), strings.ToLower(f.name)); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev = cur
	}
	return prev[len(b)]
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// describe names what a node is, for "want X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}
