package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/stampede-e2e/stampede/e2e/check"
	"github.com/stampede-e2e/stampede/e2e/history"
)

// Load reads back the judged run that Write wrote into dir: its history, rows, params and the
// result it was given. A run saved before judge.json kept the API is judged by defaultAPI
// (check.SavedParams.Params).
func Load(dir string, defaultAPI check.API) (Run, error) {
	var (
		r    Run
		jf   judgeFile
		errs []error
	)
	read := func(name string, decode func([]byte) error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			err = decode(b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	read(JudgeFile, func(b []byte) error { return json.Unmarshal(b, &jf) })
	read(RowsFile, func(b []byte) (err error) { r.Rows, err = decodeRows(b); return err })
	read(ViolationsJSONFile, func(b []byte) error { return json.Unmarshal(b, &r.Result) })
	ops, err := readHistory(dir)
	if err != nil {
		errs = append(errs, err)
	}
	r.History = ops
	if err := errors.Join(errs...); err != nil {
		return Run{}, fmt.Errorf("load %s: %w", dir, err)
	}
	p, err := jf.Params.Params(defaultAPI)
	if err != nil {
		return Run{}, fmt.Errorf("load %s: %w", dir, err)
	}
	// The checker judges each token at the instant its response arrived, on this base.
	p.Base = jf.Base
	r.Params, r.Base, r.Repro, r.Format = p, jf.Base, jf.Repro, jf.Params.Version
	// The saved result's prose reads the words and rules of the params it was judged by, as
	// check.Check's does.
	r.Result.Names, r.Result.Rules = p.API.Nouns(), p.AppliedRules()
	return r, nil
}

// readHistory reads the history saved in dir, decoding it as the file is read
// (history.ReadJSONLFile): it is the one big file of a run (some 780 bytes a request), which
// read whole would sit in memory next to the ops it becomes.
func readHistory(dir string) ([]history.Op, error) {
	ops, err := history.ReadJSONLFile(filepath.Join(dir, HistoryFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", HistoryFile, err)
	}
	return ops, nil
}

// Recheck is one saved run judged again.
type Recheck struct {
	Dir string
	// Saved is the result the live run wrote; Fresh is the checker's result now.
	Saved, Fresh check.Result
	// Same says that the two are identical: verdict, counts, violations and coverage.
	Same bool
}

// RecheckDir judges the run saved in dir again with the checker, from its artifacts alone; by
// defaultAPI when it was saved before judge.json kept the API.
func RecheckDir(dir string, defaultAPI check.API) (Recheck, error) {
	r, err := Load(dir, defaultAPI)
	if err != nil {
		return Recheck{}, err
	}
	fresh, err := check.Check(r.History, r.Rows, r.Params)
	if err != nil {
		return Recheck{}, fmt.Errorf("recheck %s: %w", dir, err)
	}
	// Compared as their JSON, the form the live run saved: a result is the same when nothing
	// a reader of violations.json could see differs.
	saved, err1 := json.Marshal(r.Result)
	now, err2 := json.Marshal(fresh)
	if err := errors.Join(err1, err2); err != nil {
		return Recheck{}, fmt.Errorf("recheck %s: %w", dir, err)
	}
	if r.Format < check.SavedFormat {
		// A run saved by an older checker lacks the figures added since (such as the answers
		// judged without their headers): they were not part of its verdict, so only the members
		// it saved are compared. A current file is compared whole: there an absent member is a
		// zero that must stay zero.
		if saved, now, err = savedMembers(saved, now); err != nil {
			return Recheck{}, fmt.Errorf("recheck %s: %w", dir, err)
		}
	}
	return Recheck{Dir: dir, Saved: r.Result, Fresh: fresh, Same: bytes.Equal(saved, now)}, nil
}

// savedMembers returns saved and fresh, two Results as JSON, with fresh's top-level members
// that saved lacks left out, both encoded alike (members by key) for the comparison.
func savedMembers(saved, fresh []byte) (s2, f2 []byte, err error) {
	var s, f map[string]json.RawMessage
	if err := errors.Join(json.Unmarshal(saved, &s), json.Unmarshal(fresh, &f)); err != nil {
		return nil, nil, err
	}
	for k := range f {
		if _, ok := s[k]; !ok {
			delete(f, k)
		}
	}
	s2, err1 := json.Marshal(s)
	f2, err2 := json.Marshal(f)
	return s2, f2, errors.Join(err1, err2)
}

// JudgedDirs returns every directory under root (root included) that holds a judged run, in
// lexical order, named under root as given. root may be a symbolic link, as _artifacts/latest
// is: the walk starts from what it points at (filepath.WalkDir alone would see a link, not a
// directory, and find nothing).
func JudgedDirs(root string) ([]string, error) {
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("find judged runs under %s: %w", root, err)
	}
	var dirs []string
	err = filepath.WalkDir(resolved, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == JudgeFile {
			rel, err := filepath.Rel(resolved, filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs = append(dirs, filepath.Join(root, rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find judged runs under %s: %w", root, err)
	}
	slices.Sort(dirs)
	return dirs, nil
}
