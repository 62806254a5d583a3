"""A throwaway PostgreSQL for the tests: initdb into a temp dir, one server on a free
127.0.0.1 port with its socket in that dir, no fsync; stopped by its pid.

Like the bundled PostgreSQL the service meets in a cluster: TCP logins need a password (scram),
and TLS is on with a server certificate for 127.0.0.1 signed by a CA made here (ca_file), so that
the service's verify-full path is tested. The tests' own administration goes over the socket.

As root (containers, CI) initdb refuses to run, so the server runs as "nobody", like the token
service's pgtest (service/internal/pgtest).
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import psycopg2


def bin_dir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    path = shutil.which("initdb")
    if path:
        return os.path.dirname(path)
    raise RuntimeError("no initdb: run scripts/ensure-postgres.sh (apt-get install postgresql)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


APP_ROLE = "orders_app"
APP_PASSWORD = "s3cret-for-tests"


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_tls(d):
    """ca.crt, server.crt (SAN 127.0.0.1, localhost) and server.key in d; and other-ca.crt, a CA
    that signed nothing here."""
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                 "-subj", "/CN=orders test " + ca, "-keyout", ca + ".key", "-out", ca + ".crt", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)
    os.chmod(os.path.join(d, "server.key"), 0o600)


class Cluster:
    def __init__(self):
        self.bin = bin_dir()
        self.dir = tempfile.mkdtemp(prefix="orders-pg-")
        self.proc = None
        self.port = None
        self.user_kw = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self.user_kw = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

    def _run(self, *args, **kw):
        env = {"LC_ALL": "C", "LANG": "C", "TZ": "UTC", "PATH": self.bin + ":/usr/bin:/bin"}
        return subprocess.Popen([os.path.join(self.bin, args[0])] + list(args[1:]), cwd=self.dir,
                                env=env, **self.user_kw, **kw)

    def start(self):
        data = os.path.join(self.dir, "data")
        make_tls(self.dir)
        if self.user_kw:
            for f in os.listdir(self.dir):
                os.chown(os.path.join(self.dir, f), self.user_kw["user"], self.user_kw["group"])
        self.ca_file = os.path.join(self.dir, "ca.crt")
        self.other_ca_file = os.path.join(self.dir, "other-ca.crt")
        p = self._run("initdb", "--pgdata", data, "--username", "postgres", "--auth-local", "trust",
                      "--auth-host", "scram-sha-256",
                      "--encoding", "UTF8", "--locale", "C", "--no-sync",
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.communicate()[0]
        if p.returncode != 0:
            raise RuntimeError("initdb: %s" % out.decode()[-500:])
        self.port = _free_port()
        logname = os.path.join(self.dir, "postgres.log")
        with open(logname, "wb") as log:
            self.proc = self._run("postgres", "-D", data, "-p", str(self.port),
                                  "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + self.dir,
                                  "-c", "ssl=on", "-c", "ssl_cert_file=" + os.path.join(self.dir, "server.crt"),
                                  "-c", "ssl_key_file=" + os.path.join(self.dir, "server.key"),
                                  "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                                  "-c", "max_connections=200", "-c", "log_min_messages=warning",
                                  stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                with open(logname) as f:
                    raise RuntimeError("postgres exited: %s" % f.read()[-500:])
            try:
                c = self.admin()
                c.cursor().execute("CREATE ROLE %s LOGIN PASSWORD %%s" % APP_ROLE, (APP_PASSWORD,))
                c.close()
                return self
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def admin(self, dbname="postgres"):
        """The superuser on dbname, over the socket (trust), in autocommit."""
        c = psycopg2.connect(host=self.dir, port=self.port, user="postgres", dbname=dbname)
        c.autocommit = True
        return c

    def terminate_app_connections(self):
        """Cut every connection of the service's role, as a database restart would."""
        c = self.admin()
        cur = c.cursor()
        cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = %s", (APP_ROLE,))
        n = cur.fetchone()[0]
        c.close()
        return n

    def create_database(self, name):
        """A database owned by the service's role, as the bundled PostgreSQL's entrypoint makes it."""
        c = self.admin()
        c.cursor().execute('CREATE DATABASE "%s" OWNER %s' % (name, APP_ROLE))
        c.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
