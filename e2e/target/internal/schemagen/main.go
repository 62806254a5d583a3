// Command schemagen writes the target file's JSON Schema (target.JSONSchema) to the file its
// argument names: `go generate ./e2e/target` keeps target.schema.json in step with the Go types.
package main

import (
	"fmt"
	"os"

	"github.com/stampede-e2e/stampede/e2e/target"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: schemagen FILE")
		os.Exit(2)
	}
	b, err := target.JSONSchema()
	if err == nil {
		err = os.WriteFile(os.Args[1], b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}
