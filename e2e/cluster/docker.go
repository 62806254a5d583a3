package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Docker runs the docker CLI and returns its stdout; stderr goes into the error.
func Docker(ctx context.Context, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// containerInfo is the part of `docker inspect` of a node container this package reads.
type containerInfo struct {
	Name  string
	State struct {
		Status  string
		Running bool
		Paused  bool
	}
	Config struct {
		Image  string
		Labels map[string]string
	}
	NetworkSettings struct {
		Ports map[string][]struct {
			HostIP   string `json:"HostIp"`
			HostPort string
		}
	}
}

func inspectContainers(ctx context.Context, names ...string) ([]containerInfo, error) {
	out, err := Docker(ctx, append([]string{"inspect", "--type", "container"}, names...)...)
	if err != nil {
		return nil, err
	}
	var infos []containerInfo
	if err := json.Unmarshal(out, &infos); err != nil {
		return nil, fmt.Errorf("decode docker inspect: %w", err)
	}
	return infos, nil
}

// hostPortOf returns the host address and port that a container publishes containerPort/tcp on.
func (ci containerInfo) hostPortOf(containerPort int32) (string, int, bool) {
	for _, b := range ci.NetworkSettings.Ports[fmt.Sprintf("%d/tcp", containerPort)] {
		if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
			return b.HostIP, p, true
		}
	}
	return "", 0, false
}

// imageID returns the local engine's ID (sha256:...) of image.
func imageID(ctx context.Context, image string) (string, error) {
	out, err := Docker(ctx, "image", "inspect", "-f", "{{.Id}}", image)
	if err != nil {
		return "", fmt.Errorf("image %s is not in the local docker engine (build it first): %w", image, err)
	}
	return strings.TrimSpace(string(out)), nil
}
