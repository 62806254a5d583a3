package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// WhoamiPackage is the import path of Smoke's test workload.
const WhoamiPackage = "github.com/stampede-e2e/stampede/e2e/cluster/whoami"

// BuildWhoamiImage builds whoami as a static binary into an image FROM scratch, tagged
// stampede/whoami:<hash of the binary>, and returns the image name. Nothing is pulled: the legacy
// builder with no network. An image with that tag is reused. It needs the go tool and must run
// inside the stampede module.
func BuildWhoamiImage(ctx context.Context) (string, error) {
	dir, err := os.MkdirTemp("", "stampede-whoami-")
	if err != nil {
		return "", fmt.Errorf("build whoami: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "whoami")
	// -trimpath and no VCS stamp: the same source gives the same bytes, hence the same tag.
	gobuild := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, WhoamiPackage)
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := gobuild.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build whoami: go build: %w: %s", err, strings.TrimSpace(string(out)))
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("build whoami: %w", err)
	}
	sum := sha256.Sum256(raw)
	image := "stampede/whoami:" + hex.EncodeToString(sum[:])[:12]
	if _, err := imageID(ctx, image); err == nil {
		return image, nil
	}
	dockerfile := "FROM scratch\nCOPY whoami /whoami\nENTRYPOINT [\"/whoami\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", fmt.Errorf("build whoami: %w", err)
	}
	build := exec.CommandContext(ctx, "docker", "build", "--network", "none", "-q", "-t", image, dir)
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	var out bytes.Buffer
	build.Stdout, build.Stderr = &out, &out
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build whoami: docker build: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return image, nil
}
