// Package images_test runs the images' scripts on this host, with the PostgreSQL binaries that
// scripts/ensure-postgres.sh installs.
package images_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgresEntrypointPasswordsFromFiles runs postgres-entrypoint.sh on an empty PGDATA with
// both passwords in files, as the StatefulSet mounts them: the superuser and the service's role
// log in over TCP with them (and not with a wrong one), and neither password, nor any
// *PASSWORD variable, is in the running server's environment.
func TestPostgresEntrypointPasswordsFromFiles(t *testing.T) {
	bin := postgresBin(t)
	// Not t.TempDir(), whose parent is private to this user: the server may run as another
	// (postgres, when this test runs as root) and must reach its files.
	dir, err := os.MkdirTemp("", "postgres-entrypoint-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const superPassword, appPassword = "super 's3cret", "app-s3cret"
	env := []string{
		"PATH=" + bin + ":/usr/bin:/bin", "LC_ALL=C.UTF-8",
		"PGDATA=" + filepath.Join(dir, "data", "pgdata"),
		"POSTGRES_USER=postgres", "POSTGRES_DB=tokensvc",
		"POSTGRES_PASSWORD_FILE=" + secretFile(t, dir, "superuser-password", superPassword),
		"POSTGRES_APP_USER=tokensvc",
		"POSTGRES_APP_PASSWORD_FILE=" + secretFile(t, dir, "app-password", appPassword),
	}
	sockets := filepath.Join(dir, "run")
	if err := os.Mkdir(sockets, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sockets, 0o777); err != nil { // past the umask: the server writes its socket here
		t.Fatal(err)
	}
	port := freePort(t)
	// A file, not a pipe: the server's children would hold a pipe open past its exit.
	logs, err := os.Create(filepath.Join(dir, "entrypoint.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd := exec.Command(entrypoint(t), "-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "unix_socket_directories="+sockets, "-c", "fsync=off")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
	// Its own process group, so that a stuck server and its children are killed together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once the process has been waited for; exitErr is then set.
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT) // the image's STOPSIGNAL: fast shutdown
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if out, _ := os.ReadFile(logs.Name()); t.Failed() {
			t.Logf("entrypoint and server output:\n%s", out)
		}
	})

	login := func(user, password, db string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable password='%s'",
			port, user, db, strings.ReplaceAll(password, "'", `\'`)))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}
	deadline := time.Now().Add(90 * time.Second)
	for err := login("tokensvc", appPassword, "tokensvc"); err != nil; err = login("tokensvc", appPassword, "tokensvc") {
		select {
		case <-exited:
			t.Fatalf("the entrypoint exited: %v", exitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service's role could not log in within 90s: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // polling the server's start, bounded by the deadline
	}
	if err := login("postgres", superPassword, "tokensvc"); err != nil {
		t.Errorf("the superuser with its password from the file: %v", err)
	}
	if err := login("tokensvc", "wrong", "tokensvc"); err == nil {
		t.Error("the service's role logged in with a wrong password: passwords are not checked")
	}

	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
	if got := strings.TrimSpace(string(comm)); got != "postgres" {
		t.Fatalf("process %d is %q, want the postgres server the entrypoint execs", cmd.Process.Pid, got)
	}
	for _, v := range strings.Split(string(environ), "\x00") {
		name, value, _ := strings.Cut(v, "=")
		if strings.HasSuffix(name, "PASSWORD") || strings.Contains(value, superPassword) || strings.Contains(value, appPassword) {
			t.Errorf("the server's environment holds a password: %s", name)
		}
	}
}

// TestPostgresEntrypointRefusesPasswordVariables: a password in the environment stops the
// entrypoint before initdb, with one line naming the file setting to use instead.
func TestPostgresEntrypointRefusesPasswordVariables(t *testing.T) {
	bin := postgresBin(t)
	for _, v := range []string{"POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD"} {
		dir := t.TempDir()
		cmd := exec.Command(entrypoint(t))
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "PGDATA=" + filepath.Join(dir, "pgdata"), v + "=s3cret"}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), v+" is set in the environment") || !strings.Contains(string(out), "set "+v+"_FILE") {
			t.Errorf("with %s set: %v\n%s\nwant a refusal naming %s_FILE", v, err, out, v)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("with %s set, the entrypoint made %d entries in PGDATA's parent", v, len(entries))
		}
	}
}

// entrypoint returns the absolute path of the script: run as root, it execs itself again as
// the user postgres, by $0.
func entrypoint(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("postgres-entrypoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// postgresBin returns the directory of initdb and postgres.
func postgresBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	t.Fatal("PostgreSQL server binaries not found: run scripts/ensure-postgres.sh (apt-get install postgresql)")
	return ""
}

// secretFile writes value as a mounted Secret's file would hold it (no final line break, mode
// 0440, owned by the user the server will run as) and returns its path.
func secretFile(t *testing.T, dir, name, value string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value), 0o440); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		// Run as root, the entrypoint drops to the user postgres before it reads the files.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("the entrypoint runs the server as postgres: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
