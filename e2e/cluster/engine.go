package cluster

import (
	"os"
	"path/filepath"
)

// EngineSocket is the socket of the Docker engine that scripts/host-setup.sh starts when no other
// engine runs: STAMPEDE_RUN/docker.sock, /run/stampede/docker.sock by default (scripts/lib.sh).
func EngineSocket() string {
	dir := os.Getenv("STAMPEDE_RUN")
	if dir == "" {
		dir = "/run/stampede"
	}
	return filepath.Join(dir, "docker.sock")
}

// useStampedeEngine points the docker CLI (which kind runs too) at stampede's own engine when
// nobody named one with DOCKER_HOST and that engine's socket exists: the same choice the scripts
// make in scripts/lib.sh, so that `go run ./e2e/cmd/stampede-cluster` and the suite find the
// images and clusters the scripts made.
func useStampedeEngine(getenv func(string) string, exists func(string) bool, setenv func(string, string) error) {
	if getenv("DOCKER_HOST") != "" {
		return
	}
	if sock := EngineSocket(); exists(sock) {
		_ = setenv("DOCKER_HOST", "unix://"+sock)
	}
}

func init() {
	useStampedeEngine(os.Getenv, func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.Mode()&os.ModeSocket != 0
	}, os.Setenv)
}
