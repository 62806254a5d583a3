package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NodeImage returns the kind node image: $STAMPEDE_NODE_IMAGE, else the last line that
// scripts/node-image.sh under root prints (it builds the image when it is missing, stock or
// local as its STAMPEDE_NODE_IMAGE_SOURCE says; its progress goes to progress). This is the
// one place the suite, stampede-cluster and the cluster's own tests resolve it.
func NodeImage(ctx context.Context, root string, progress io.Writer) (string, error) {
	if img := os.Getenv("STAMPEDE_NODE_IMAGE"); img != "" {
		return img, nil
	}
	lines, err := runScript(ctx, root, progress, "node-image.sh")
	if err != nil {
		return "", fmt.Errorf("node image: %w", err)
	}
	if len(lines) == 0 {
		return "", errors.New("node image: scripts/node-image.sh printed no image name")
	}
	return lines[len(lines)-1], nil
}

// WorkloadImages builds the images the suite deploys with scripts/build-image.sh (each tagged
// by a hash of its inputs, so a present one is reused) and returns them by name.
func WorkloadImages(ctx context.Context, root string, progress io.Writer) (map[string]string, error) {
	return BuildImages(ctx, root, progress, "all")
}

// BuildImages builds the images called names with scripts/build-image.sh (such as
// tokensvc-selftest, which "all" leaves out) and returns them by name.
func BuildImages(ctx context.Context, root string, progress io.Writer, names ...string) (map[string]string, error) {
	lines, err := runScript(ctx, root, progress, "build-image.sh", names...)
	if err != nil {
		return nil, fmt.Errorf("images %s: %w", strings.Join(names, " "), err)
	}
	images := map[string]string{}
	for _, l := range lines {
		if name, image, ok := strings.Cut(l, "="); ok {
			images[name] = image
		}
	}
	return images, nil
}

// runScript runs scripts/NAME under root and returns the non-empty lines of its stdout.
func runScript(ctx context.Context, root string, progress io.Writer, name string, args ...string) ([]string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", name), args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, &out, progress
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scripts/%s: %w", name, err)
	}
	var lines []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}
