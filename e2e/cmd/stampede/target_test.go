package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stampede-e2e/stampede/e2e/target/targetcmd"
)

func TestTargetValidate(t *testing.T) {
	var out strings.Builder
	file := "../../../targets/tokensvc/target.yaml"
	if err := run([]string{"target", "validate", file}, &out); err != nil {
		t.Fatalf("validate: %v\n%s", err, out.String())
	}
	if want := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `: valid \(target tokensvc, 4 modes, digest sha256:[0-9a-f]{64}\)\n$`); !want.MatchString(out.String()) {
		t.Errorf("output %q", out.String())
	}

	// A directory names its target.yaml, as make's TARGET= does.
	out.Reset()
	if err := run([]string{"target", "validate", "../../../targets/tokensvc"}, &out); err != nil || !strings.HasPrefix(out.String(), "../../../targets/tokensvc/target.yaml: valid") {
		t.Errorf("validate a directory: %v\n%s", err, out.String())
	}

	bad := filepath.Join(t.TempDir(), "target.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: stampede.dev/v1alpha1\nkind: Targt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := run([]string{"target", "validate", bad}, &out)
	if !errors.Is(err, targetcmd.ErrInvalid) {
		t.Fatalf("err = %v, want targetcmd.ErrInvalid (exit 1)", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 9 || lines[0] != `target.yaml:1:1: missing required field "name"` || lines[8] != `target.yaml:2:7: kind: "Targt" is not one of Target` {
		t.Errorf("output:\n%s", out.String())
	}

	for _, args := range [][]string{{"target"}, {"target", "validate"}, {"target", "check", "x"}, {"target", "validate", "/no/such/file.yaml"}} {
		if err := run(args, &out); err == nil || errors.Is(err, targetcmd.ErrInvalid) {
			t.Errorf("%v: err = %v, want a usage or read error (exit 2)", args, err)
		}
	}
}

func TestTargetInit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shop.yaml")
	var out strings.Builder
	if err := run([]string{"target", "init", "--name", "shop", file}, &out); err != nil {
		t.Fatalf("init: %v", err)
	}
	b, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(b), `name: "shop"`) || !strings.Contains(string(b), "TODO") {
		t.Fatalf("written (%v):\n%s", err, b)
	}
	// The skeleton is not valid until its TODOs are filled in, and says so.
	out.Reset()
	if err := run([]string{"target", "validate", file}, &out); !errors.Is(err, targetcmd.ErrInvalid) || !strings.Contains(out.String(), "deploy.kustomize: still TODO") {
		t.Errorf("validate the skeleton: %v\n%s", err, out.String())
	}
	// Never over an existing file.
	if err := run([]string{"target", "init", file}, &out); err == nil {
		t.Error("init wrote over an existing file")
	}
}

// target images lists each image with its build script resolved against the file, so that
// scripts/e2e.sh can run it from anywhere.
func TestTargetImages(t *testing.T) {
	for dir, want := range map[string]string{
		"../../../targets/tokensvc": "stampede/tokensvc\t../../../scripts/build-image.sh\ttokensvc\n",
		"../../../targets/orders":   "stampede/orders\t../../../targets/orders/build-image.sh\n",
	} {
		var out strings.Builder
		if err := run([]string{"target", "images", dir}, &out); err != nil || out.String() != want {
			t.Errorf("target images %s: %q, %v; want %q", dir, out.String(), err, want)
		}
	}
	var out strings.Builder
	if err := run([]string{"target", "images"}, &out); err == nil {
		t.Error("target images with no file: no usage error")
	}
}
