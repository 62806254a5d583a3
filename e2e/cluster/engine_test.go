package cluster

import "testing"

func TestUseStampedeEngine(t *testing.T) {
	t.Setenv("STAMPEDE_RUN", "/tmp/st")
	for _, tc := range []struct {
		name, dockerHost string
		exists           bool
		want             string
	}{
		{"ours when it runs and none is named", "", true, "unix:///tmp/st/docker.sock"},
		{"a named engine wins", "tcp://127.0.0.1:2375", true, "tcp://127.0.0.1:2375"},
		{"nothing set without our socket", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"DOCKER_HOST": tc.dockerHost}
			useStampedeEngine(func(k string) string { return env[k] }, func(string) bool { return tc.exists },
				func(k, v string) error { env[k] = v; return nil })
			if env["DOCKER_HOST"] != tc.want {
				t.Fatalf("DOCKER_HOST = %q, want %q", env["DOCKER_HOST"], tc.want)
			}
		})
	}
}
