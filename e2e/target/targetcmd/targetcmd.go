// Package targetcmd is the `target` subcommands (validate, init, images) of the stampede command,
// and of stampede-target, which has only them: a run validates its target file before any
// build, and this package needs none of the suite's heavy dependencies, so the validator
// compiles in seconds on a machine with empty Go caches.
package targetcmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/stampede-e2e/stampede/e2e/target"
)

// ErrInvalid is target validate's finding that the file has problems (printed above it).
var ErrInvalid = errors.New("the target file is not valid")

// Usage is the subcommands' usage lines, as the stampede command's usage lists them.
const Usage = `  target validate FILE|DIR
                 check a target file (a directory: its target.yaml): its problems one a line
                 (exit 1), or that it is valid
  target init [--name N] [FILE]
                 write a commented skeleton target file (default target.yaml)
  target images FILE|DIR
                 the target's images, one a line: name, build script, args (tab-separated)`

// usage ends every usage error.
var usage = "usage:\n" + Usage

// Run runs `target validate FILE|DIR`, `target init [--name N] [FILE]` and
// `target images FILE|DIR`; args start after "target". A file with problems is ErrInvalid.
func Run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("target: name a subcommand, validate, init or images\n%s", usage)
	}
	switch args[0] {
	case "validate":
		if len(args) != 2 {
			return fmt.Errorf("target validate: name one target file, or a directory holding %s\n%s", target.FileName, usage)
		}
		return validateTarget(target.FileOf(args[1]), out)
	case "init":
		return initTarget(args[1:], out)
	case "images":
		if len(args) != 2 {
			return fmt.Errorf("target images: name one target file, or a directory holding %s\n%s", target.FileName, usage)
		}
		return targetImages(target.FileOf(args[1]), out)
	}
	return fmt.Errorf("target: unknown subcommand %q (want validate, init or images)\n%s", args[0], usage)
}

// validateTarget prints one line for a valid file, or its problems one a line.
func validateTarget(file string, out io.Writer) error {
	t, err := target.Load(file)
	var list target.ErrorList
	switch {
	case errors.As(err, &list):
		fmt.Fprintln(out, list.Error())
		return fmt.Errorf("%w: %s: %d problems", ErrInvalid, file, len(list))
	case err != nil:
		return err
	}
	fmt.Fprintf(out, "%s: valid (target %s, %d modes, digest %s)\n", file, t.Name, len(t.Modes), t.Digest())
	return nil
}

// targetImages prints each of the target's images and its build recipe, tab-separated on one
// line: the name as the manifests write it, then the build script resolved against the file
// and its args; the name alone for an image the suite cannot build (no recipe, or a
// Dockerfile), which the run must be given. A file with problems is refused, as validate does.
func targetImages(file string, out io.Writer) error {
	t, err := target.Load(file)
	if err != nil {
		return fmt.Errorf("target images: %w", err)
	}
	for _, img := range t.Deploy.Images {
		fields := []string{img.Name}
		if b := img.Build; b != nil && b.Script != "" {
			fields = append(append(fields, t.Resolve(b.Script)), b.Args...)
		}
		fmt.Fprintln(out, strings.Join(fields, "\t"))
	}
	return nil
}

// initTarget writes a commented skeleton to FILE (default target.yaml), never over a file.
func initTarget(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("target init", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "the service's name (default my-service)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("target init: %w\n%s", err, usage)
	}
	file := "target.yaml"
	switch fs.NArg() {
	case 0:
	case 1:
		file = fs.Arg(0)
	default:
		return fmt.Errorf("target init: name at most one file\n%s", usage)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("target init: %w", err)
	}
	if _, err := f.Write(target.Skeleton(*name)); err != nil {
		f.Close()
		return fmt.Errorf("target init: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("target init: %w", err)
	}
	fmt.Fprintf(out, "%s: written; fill in its TODOs, then: stampede target validate %s\n", file, file)
	return nil
}
