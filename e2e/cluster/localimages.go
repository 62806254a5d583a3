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
	return imageLines(lines), nil
}

// RecipeImages runs a target's build recipe (deploy.images[].build: script and args, the
// script's path as the target file resolves it) in dir and returns the images it printed,
// NAME=IMAGE a line, by NAME.
func RecipeImages(ctx context.Context, dir string, progress io.Writer, script string, args ...string) (map[string]string, error) {
	lines, err := runCommand(ctx, dir, progress, script, args...)
	if err != nil {
		return nil, fmt.Errorf("build recipe %s: %w", strings.Join(append([]string{script}, args...), " "), err)
	}
	return imageLines(lines), nil
}

// ImageNamed returns the image of images whose repository (the reference without its tag) is
// name, "" for none: a recipe's line is a target's image by what it builds, whatever NAME it
// printed (the orders API's script prints orders=stampede/orders:<hash>).
func ImageNamed(images map[string]string, name string) string {
	for _, ref := range images {
		if repo, _, ok := cutTag(ref); ok && repo == name {
			return ref
		}
	}
	return ""
}

// cutTag splits ref into its repository and tag; false when it has no tag (a colon after the
// last slash: a registry's port is no tag).
func cutTag(ref string) (repo, tag string, ok bool) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "", false
	}
	return ref[:i], ref[i+1:], true
}

// imageLines reads NAME=IMAGE lines into a map by NAME; other lines are ignored.
func imageLines(lines []string) map[string]string {
	images := map[string]string{}
	for _, l := range lines {
		if name, image, ok := strings.Cut(l, "="); ok {
			images[name] = image
		}
	}
	return images
}

// runScript runs scripts/NAME under root and returns the non-empty lines of its stdout.
func runScript(ctx context.Context, root string, progress io.Writer, name string, args ...string) ([]string, error) {
	lines, err := runCommand(ctx, root, progress, filepath.Join(root, "scripts", name), args...)
	if err != nil {
		return nil, fmt.Errorf("scripts/%s: %w", name, err)
	}
	return lines, nil
}

// runCommand runs path with args in dir, its stderr to progress, and returns the non-empty
// lines of its stdout.
func runCommand(ctx context.Context, dir string, progress io.Writer, path string, args ...string) ([]string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, progress
	if err := cmd.Run(); err != nil {
		return nil, err
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
