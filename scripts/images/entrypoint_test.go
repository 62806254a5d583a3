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
// It does so twice: once running initdb itself, once copying a template cluster made by
// `postgres-entrypoint --template`, as the image's build makes it.
func TestPostgresEntrypointPasswordsFromFiles(t *testing.T) {
	for _, template := range []bool{false, true} {
		t.Run(map[bool]string{false: "initdb", true: "template"}[template], func(t *testing.T) {
			testPasswordsFromFiles(t, template)
		})
	}
}

func testPasswordsFromFiles(t *testing.T, template bool) {
	bin := postgresBin(t)
	dir := serverDir(t)
	const superPassword, appPassword = "super 's3cret", "app-s3cret"
	env := []string{
		"PATH=" + bin + ":/usr/bin:/bin", "LC_ALL=C.UTF-8",
		"PGDATA=" + filepath.Join(dir, "data", "pgdata"),
		"POSTGRES_USER=postgres", "POSTGRES_DB=tokensvc",
		"POSTGRES_PASSWORD_FILE=" + secretFile(t, dir, "superuser-password", superPassword),
		"POSTGRES_APP_USER=tokensvc",
		"POSTGRES_APP_PASSWORD_FILE=" + secretFile(t, dir, "app-password", appPassword),
	}
	if template {
		env = append(env, "STAMPEDE_PGDATA_TEMPLATE="+makeTemplate(t, bin, dir))
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

	out, _ := os.ReadFile(logs.Name())
	if copied := strings.Contains(string(out), "copying "); copied != template {
		t.Errorf("copied a template: %v, want %v", copied, template)
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

// TestPostgresEntrypointStopsAtFailedStatement: a statement of the setup that fails (here the
// service's role named as the superuser, which exists) stops the entrypoint with its error, and
// no PGDATA is left for a server to start on: single-user mode alone would go on and exit 0.
func TestPostgresEntrypointStopsAtFailedStatement(t *testing.T) {
	bin := postgresBin(t)
	dir := serverDir(t)
	pgdata := filepath.Join(dir, "data", "pgdata")
	// -C: a server the entrypoint starts after all prints a setting and exits, instead of
	// serving; the deadline bounds anything else.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, entrypoint(t), "-C", "data_directory")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Env = []string{
		"PATH=" + bin + ":/usr/bin:/bin", "LC_ALL=C.UTF-8", "PGDATA=" + pgdata,
		"POSTGRES_USER=postgres", "POSTGRES_DB=tokensvc",
		"POSTGRES_PASSWORD_FILE=" + secretFile(t, dir, "superuser-password", "s3cret"),
		"POSTGRES_APP_USER=postgres",
		"POSTGRES_APP_PASSWORD_FILE=" + secretFile(t, dir, "app-password", "app-s3cret"),
	}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `role "postgres" already exists`) || !strings.Contains(string(out), "failed") {
		t.Errorf("with a failing statement: %v\n%s\nwant the entrypoint to stop with the server's error", err, out)
	}
	if strings.Contains(string(out), "app-s3cret") {
		t.Errorf("the failed statement's password is in the output:\n%s", out)
	}
	if _, err := os.Stat(pgdata); !os.IsNotExist(err) {
		t.Errorf("PGDATA %s exists after the failure (%v): a server would start on it", pgdata, err)
	}
}

// makeTemplate makes a template cluster in dir with `postgres-entrypoint --template`, as the user
// the server runs as, and returns its path.
func makeTemplate(t *testing.T, bin, dir string) string {
	t.Helper()
	parent := filepath.Join(dir, "template")
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{entrypoint(t), "--template", filepath.Join(parent, "pgdata")}
	// initdb refuses root; the image's build runs it as the server's user.
	if u := chownToServer(t, parent); u != nil {
		args = append([]string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "LC_ALL=C.UTF-8"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("postgres-entrypoint --template: %v\n%s", err, out)
	}
	return filepath.Join(parent, "pgdata")
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

// serverDir makes a directory for a test's cluster and files, removed after it. Not t.TempDir(),
// whose parent is private to this user: the server may run as another (postgres, when this test
// runs as root) and must reach its files.
func serverDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "postgres-entrypoint-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// secretFile writes value as a mounted Secret's file would hold it (no final line break, mode
// 0440, owned by the user the server will run as) and returns its path.
func secretFile(t *testing.T, dir, name, value string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value), 0o440); err != nil {
		t.Fatal(err)
	}
	// Run as root, the entrypoint drops to the user postgres before it reads the files.
	chownToServer(t, path)
	return path
}

// chownToServer gives path to the user postgres when this test runs as root, as which the
// entrypoint then runs the server (and the image's build, initdb), and returns that user; nil
// when not root, and everything runs as this user.
func chownToServer(t *testing.T, path string) *user.User {
	t.Helper()
	if os.Getuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the entrypoint runs the server as postgres: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	return u
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
