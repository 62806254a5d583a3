// Command stampede-target is `stampede target` alone: validate, init and images of a target file
// (e2e/target/targetcmd). scripts/e2e.sh validates a run's target file with it before host setup
// or any build; it compiles from the standard library, the YAML decoder and e2e/target, so on a
// machine with empty Go caches the run learns of a bad file in seconds, not after compiling
// everything stampede links.
//
//	stampede-target validate FILE|DIR   exit 1 on a file with problems (one a line)
//	stampede-target init [--name N] [FILE]
//	stampede-target images FILE|DIR
//
// Exit 2 on bad usage or an unreadable file.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/stampede-e2e/stampede/e2e/target/targetcmd"
)

func main() {
	err := targetcmd.Run(os.Args[1:], os.Stdout)
	switch {
	case err == nil:
	case errors.Is(err, targetcmd.ErrInvalid):
		fmt.Fprintln(os.Stderr, "stampede-target:", err)
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "stampede-target:", err)
		os.Exit(2)
	}
}
