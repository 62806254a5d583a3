package netpol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Nft puts a ruleset in place and tells whether Table is there.
type Nft interface {
	// Apply loads ruleset, the text of a Ruleset, in one transaction.
	Apply(ctx context.Context, ruleset string) error
	// Present reports whether Table exists.
	Present(ctx context.Context) (bool, error)
}

// NftCommand is Nft by the nft binary.
type NftCommand struct {
	// Prefix runs nft through another command, e.g. ip netns exec NAME; empty runs it directly.
	Prefix []string
}

func (n NftCommand) run(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	argv := append(append(append([]string{}, n.Prefix...), "nft"), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// Apply runs nft -f - with ruleset on its input.
func (n NftCommand) Apply(ctx context.Context, ruleset string) error {
	if out, err := n.run(ctx, ruleset, "-f", "-"); err != nil {
		return fmt.Errorf("nft -f: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Present lists Table: nft says "No such file or directory" when it does not exist.
func (n NftCommand) Present(ctx context.Context) (bool, error) {
	out, err := n.run(ctx, "", "list", "table", "inet", Table)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && bytes.Contains(out, []byte("No such file or directory")):
		return false, nil
	}
	return false, fmt.Errorf("nft list table: %w: %s", err, strings.TrimSpace(string(out)))
}

// Delete removes Table, if it exists, lifting all enforcement.
func (n NftCommand) Delete(ctx context.Context) error {
	present, err := n.Present(ctx)
	if err != nil || !present {
		return err
	}
	if out, err := n.run(ctx, "", "delete", "table", "inet", Table); err != nil {
		return fmt.Errorf("nft delete table: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
