"""The orders API against a real PostgreSQL: the contract, the three modes under concurrent
bursts, and the real server (gunicorn). Run by ../test.sh."""

import collections
import contextlib
import dataclasses
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from wsgiref.util import setup_testing_defaults

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from orders import keys, settings, wsgi  # noqa: E402
from orders.app import QUEUED_AT, parse_idempotency_key  # noqa: E402
from orders.problems import Problem  # noqa: E402
from tests.pgcluster import APP_PASSWORD, APP_ROLE, Cluster  # noqa: E402

PG = None
KEYS_FILE = None
PASSWORD_FILE = None
# Bursts per mode in the concurrency tests, threads per burst, and the simulated work between
# lookup and insert (ORDERS_WORK_DELAY_MS) that widens the race window as a slow pricing call would.
BURSTS = int(os.environ.get("ORDERS_TEST_BURSTS", "20"))
THREADS = 8
WORK_MS = 20
FIGURES = {}


def setUpModule():
    global PG, KEYS_FILE, PASSWORD_FILE
    PG = Cluster().start()
    fd, PASSWORD_FILE = tempfile.mkstemp(prefix="orders-db-password-")
    with os.fdopen(fd, "w") as f:
        f.write(APP_PASSWORD + "\n")  # as a Secret file may end: the service strips it
    fd, KEYS_FILE = tempfile.mkstemp(prefix="orders-keys-")
    with os.fdopen(fd, "w") as f:
        f.write("# test keys\n\n")
        f.write(keys.line("key-one", "tenant-1") + "\n")
        f.write(keys.line("key-two", "tenant-2") + "\n")
        f.write(keys.line("key-ro", "tenant-1", "orders:read") + "\n")


def tearDownModule():
    if PG:
        PG.stop()
    for f in (KEYS_FILE, PASSWORD_FILE):
        if f:
            os.unlink(f)
    for k, v in FIGURES.items():
        sys.stderr.write("figure: %s: %s\n" % (k, v))


_dbs = iter(range(1, 10**6))


def fresh_db():
    name = "orders_%d" % next(_dbs)
    PG.create_database(name)
    return name


def env_for(db, mode="safe", work_ms=0, pod="pod-a", **more):
    env = {
        "ORDERS_MODE": mode, "ORDERS_ALLOW_BROKEN": "true" if mode != "safe" else "false",
        "ORDERS_DB_HOST": "127.0.0.1", "ORDERS_DB_PORT": str(PG.port), "ORDERS_DB_NAME": db,
        "ORDERS_DB_USER": APP_ROLE, "ORDERS_DB_PASSWORD_FILE": PASSWORD_FILE,
        "ORDERS_DB_SSLMODE": "verify-full", "ORDERS_DB_CA_FILE": PG.ca_file, "ORDERS_API_KEYS_FILE": KEYS_FILE,
        "ORDERS_WORK_DELAY_MS": str(work_ms), "ORDERS_POD_NAME": pod, "ORDERS_THREADS": "32",
        "ORDERS_METRICS_PORT": "0",
    }
    env.update(more)
    return env


def make_app(db, mode="safe", work_ms=0, pod="pod-a", **more):
    app = wsgi.build(env_for(db, mode, work_ms, pod, **more), start_metrics=False, log_stream=io.StringIO())
    app.store.migrate()
    return app


def call(app, method="POST", path="/orders", body=None, headers=None, raw=None, server=None):
    """(status, headers with lower-case names, body bytes) of one request to app; server: more
    environ keys, as a server would set them."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    environ = {}
    setup_testing_defaults(environ)
    hdrs = {"Content-Type": "application/json", "X-Api-Key": "key-one"}
    hdrs.update(headers or {})
    environ.update({"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(data)),
                    "wsgi.input": io.BytesIO(data)})
    environ.update(server or {})
    for k, v in hdrs.items():
        if v is None:
            continue
        if k.lower() == "content-type":
            environ["CONTENT_TYPE"] = v
        else:
            environ["HTTP_" + k.upper().replace("-", "_")] = v
    out = {}

    def start_response(status, headers):
        out["status"] = int(status.split()[0])
        out["headers"] = {k.lower(): v for k, v in headers}

    body = b"".join(app(environ, start_response))
    return out["status"], out["headers"], body


def order_body(n=1, **over):
    b = {"customer_email": "c%d@example.org" % n, "customer_name": "Customer %d" % n, "sku": "widget-1", "quantity": 2}
    b.update(over)
    return b


class SettingsAndKeys(unittest.TestCase):
    def test_broken_modes_refuse_without_allow(self):
        for mode in ("naive", "cached-replay"):
            env = env_for("x", mode)
            env["ORDERS_ALLOW_BROKEN"] = "false"
            with self.assertRaisesRegex(settings.SettingsError, "ORDERS_ALLOW_BROKEN=true"):
                settings.load(env)
            env["ORDERS_ALLOW_BROKEN"] = "true"
            self.assertEqual(settings.load(env).mode, mode)

    def test_bad_settings_name_the_variable(self):
        for more, want in [({"ORDERS_MODE": "fast"}, "ORDERS_MODE"),
                           ({"ORDERS_DB_SSLMODE": "verify-full", "ORDERS_DB_CA_FILE": ""}, "ORDERS_DB_CA_FILE"),
                           ({"ORDERS_DB_PORT": "x"}, "ORDERS_DB_PORT"),
                           ({"ORDERS_DB_HOST": ""}, "ORDERS_DB_HOST")]:
            with self.assertRaisesRegex(settings.SettingsError, want):
                settings.load(env_for("x", **more))

    def test_tls_defaults_to_verify_full(self):
        env = env_for("x")
        del env["ORDERS_DB_SSLMODE"]
        env["ORDERS_DB_CA_FILE"] = "/ca.crt"
        dsn = settings.load(env).dsn()
        self.assertEqual((dsn["sslmode"], dsn["sslrootcert"]), ("verify-full", "/ca.crt"))
        self.assertNotIn("password", dsn)

    def test_keys_file(self):
        k = keys.parse("# c\n" + keys.line("a", "t1") + "\n" + keys.line("b", "t2", "orders:read") + "\n")
        self.assertEqual(keys.Keys(k).lookup("a").tenant, "t1")
        self.assertNotIn(keys.WRITE_SCOPE, keys.Keys(k).lookup("b").scopes)
        self.assertIsNone(keys.Keys(k).lookup("c"))
        for bad, want in [("key_sha256=zz tenant=t", "64 hex"), ("tenant=t", "64 hex"),
                          ("key_sha256=%s" % ("0" * 64), "tenant"), ("nonsense", "name=value"),
                          ("key_sha256=%s tenant=t color=red" % ("0" * 64), "unknown field color")]:
            with self.assertRaisesRegex(keys.KeysError, want):
                keys.parse(bad, "f")

    def test_idempotency_key_forms(self):
        self.assertEqual(parse_idempotency_key("abc-1"), "abc-1")
        self.assertEqual(parse_idempotency_key('"abc-1"'), "abc-1")
        self.assertEqual(parse_idempotency_key(r'"a\"b"'), 'a"b')
        for bad in (None, "", '"abc', "x" * 256, "caf\u00e9"):
            with self.assertRaises(Problem):
                parse_idempotency_key(bad)


class Contract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = make_app(fresh_db())

    def assertProblem(self, resp, status, code):
        st, h, body = resp
        self.assertEqual(st, status, body)
        self.assertEqual(h["content-type"], "application/problem+json")
        p = json.loads(body)
        self.assertEqual(p["status"], status)
        self.assertEqual(p["code"], code)
        self.assertTrue(p["type"].startswith("https://"))
        self.assertTrue(p["title"] and p["detail"])
        return h

    def test_create_then_replay(self):
        st, h, body = call(self.app, body=order_body(), headers={"Idempotency-Key": "k-create"})
        self.assertEqual(st, 201, body)
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(h["x-orders-pod"], "pod-a")
        self.assertNotIn("idempotent-replayed", h)
        self.assertRegex(h["server-timing"], r'^handler;dur=[0-9.]+;desc="start=\d+ end=\d+"$')
        o = json.loads(body)
        self.assertEqual((o["tenant"], o["idempotency_key"], o["sku"], o["quantity"]), ("tenant-1", "k-create", "widget-1", 2))
        self.assertRegex(o["id"], r"^[0-9a-f-]{36}$")
        self.assertRegex(o["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        # The same request, its JSON spaced and ordered otherwise, and the key as an sf-string.
        raw = json.dumps(dict(reversed(list(order_body().items()))), indent=2).encode()
        st2, h2, body2 = call(self.app, raw=raw, headers={"Idempotency-Key": '"k-create"'})
        self.assertEqual(st2, 200, body2)
        self.assertEqual(h2["idempotent-replayed"], "true")
        self.assertEqual(json.loads(body2), o)

    def test_quantity_defaults_to_one_in_the_replay_check(self):
        b = order_body()
        del b["quantity"]
        self.assertEqual(call(self.app, body=b, headers={"Idempotency-Key": "k-q"})[0], 201)
        self.assertEqual(call(self.app, body=dict(b, quantity=1), headers={"Idempotency-Key": "k-q"})[0], 200)

    def test_keys_are_per_tenant(self):
        a = call(self.app, body=order_body(), headers={"Idempotency-Key": "k-shared"})
        b = call(self.app, body=order_body(), headers={"Idempotency-Key": "k-shared", "X-Api-Key": "key-two"})
        self.assertEqual((a[0], b[0]), (201, 201))
        self.assertNotEqual(json.loads(a[2])["id"], json.loads(b[2])["id"])
        self.assertEqual(json.loads(b[2])["tenant"], "tenant-2")

    def test_same_key_other_body_is_422(self):
        self.assertEqual(call(self.app, body=order_body(1), headers={"Idempotency-Key": "k-reuse"})[0], 201)
        self.assertProblem(call(self.app, body=order_body(2), headers={"Idempotency-Key": "k-reuse"}), 422, "idempotency_key_reused")

    def test_key_missing_or_malformed_is_400(self):
        self.assertProblem(call(self.app, body=order_body()), 400, "missing_idempotency_key")
        self.assertProblem(call(self.app, body=order_body(), headers={"Idempotency-Key": "x" * 300}), 400, "invalid_idempotency_key")

    def test_auth(self):
        h = self.assertProblem(call(self.app, body=order_body(), headers={"X-Api-Key": None, "Idempotency-Key": "k"}), 401, "unauthenticated")
        self.assertIn("X-Api-Key", h["www-authenticate"])
        self.assertProblem(call(self.app, body=order_body(), headers={"X-Api-Key": "nope", "Idempotency-Key": "k"}), 401, "unauthenticated")
        # Bearer is not this API's scheme.
        self.assertProblem(call(self.app, body=order_body(), headers={"X-Api-Key": None, "Authorization": "Bearer key-one", "Idempotency-Key": "k"}), 401, "unauthenticated")
        self.assertProblem(call(self.app, body=order_body(), headers={"X-Api-Key": "key-ro", "Idempotency-Key": "k"}), 403, "insufficient_scope")
        self.assertProblem(call(self.app, body=order_body(tenant="tenant-2"), headers={"Idempotency-Key": "k"}), 403, "tenant_mismatch")
        self.assertEqual(call(self.app, body=order_body(tenant="tenant-1"), headers={"Idempotency-Key": "k-own-tenant"})[0], 201)

    def test_bad_input_is_4xx_problem(self):
        k = {"Idempotency-Key": "k-bad"}
        self.assertProblem(call(self.app, raw=b"{", headers=k), 400, "invalid_json")
        self.assertProblem(call(self.app, raw=b"\xff", headers=k), 400, "invalid_json")
        self.assertProblem(call(self.app, body=[1], headers=k), 400, "invalid_body")
        self.assertProblem(call(self.app, body=order_body(colour="red"), headers=k), 400, "unknown_field")
        for bad in ({"customer_email": "nope"}, {"customer_name": ""}, {"sku": "a b"}, {"quantity": 0},
                    {"quantity": True}, {"quantity": "2"}, {"customer_email": 5}):
            self.assertProblem(call(self.app, body=order_body(**bad), headers=k), 400, "invalid_body")
        self.assertProblem(call(self.app, body=order_body(), headers=dict(k, **{"Content-Type": "text/plain"})), 415, "unsupported_media_type")
        self.assertProblem(call(self.app, raw=b" " * 20000, headers=k), 413, "body_too_large")
        # None of these made an order: the key is still free.
        self.assertEqual(call(self.app, body=order_body(), headers=k)[0], 201)

    def test_routes(self):
        h = self.assertProblem(call(self.app, "GET"), 405, "method_not_allowed")
        self.assertEqual(h["allow"], "POST")
        self.assertProblem(call(self.app, "GET", "/nope"), 404, "not_found")
        self.assertEqual(call(self.app, "GET", "/healthz/live")[0], 200)
        self.assertEqual(call(self.app, "GET", "/healthz/ready")[0], 200)

    def test_counter_and_log(self):
        call(self.app, body=order_body(), headers={"Idempotency-Key": "k-count"})
        call(self.app, body=order_body(), headers={"Idempotency-Key": "k-count"})
        text = self.app.counter.text().decode()
        self.assertRegex(text, r'orders_requests_total\{mode="safe",outcome="created"\} [1-9]')
        self.assertRegex(text, r'orders_requests_total\{mode="safe",outcome="replayed"\} [1-9]')
        lines = self.app.log.stream.getvalue().splitlines()
        self.assertTrue(any(re.match(r'^ts=\S+Z level=info msg="POST /orders" pod=pod-a status=200 ms=\S+ queued_ms=\S+ outcome=replayed tenant=tenant-1 idem_key=k-count order_id=\S+$', ln) for ln in lines), lines[-3:])

    def test_in_flight_is_409_with_retry_after(self):
        app = make_app(fresh_db(), work_ms=1000)
        first = {}
        t = threading.Thread(target=lambda: first.update(r=call(app, body=order_body(), headers={"Idempotency-Key": "k-slow"})))
        t.start()
        # Until the first request holds its key's lock (a pooled connection asks, and is then
        # there for the second request: no connection setup races the first one's work).
        deadline = time.monotonic() + 10
        while True:
            with app.store.conn() as c:
                cur = c.cursor()
                cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
                if cur.fetchone()[0] > 0:
                    break
            self.assertLess(time.monotonic(), deadline, "the first request never took its lock")
            time.sleep(0.02)
        h = self.assertProblem(call(app, body=order_body(), headers={"Idempotency-Key": "k-slow"}), 409, "request_in_progress")
        self.assertEqual(h["retry-after"], "1")
        t.join()
        self.assertEqual(first["r"][0], 201)
        again = call(app, body=order_body(), headers={"Idempotency-Key": "k-slow"})
        self.assertEqual((again[0], json.loads(again[2])["id"]), (200, json.loads(first["r"][2])["id"]))

    def test_database_down_is_503_with_retry_after(self):
        app = wsgi.build(env_for("orders_nowhere", ORDERS_DB_PORT=str(_free_port())), start_metrics=False, log_stream=io.StringIO())
        h = self.assertProblem(call(app, body=order_body(), headers={"Idempotency-Key": "k"}), 503, "unavailable")
        self.assertEqual(h["retry-after"], "1")
        self.assertEqual(call(app, "GET", "/healthz/ready")[0], 503)

    def test_connections_cut_while_idle_cost_no_503(self):
        app = make_app(fresh_db())
        burst([app], "k-warm", n=4)  # several pooled connections
        self.assertGreater(PG.terminate_app_connections(), 0)
        time.sleep(0.2)
        st, _, body = call(app, body=order_body(), headers={"Idempotency-Key": "k-after-cut"})
        self.assertEqual(st, 201, body)
        self.assertIn("pooled database connection lost", app.log.stream.getvalue())

    def test_tls_verify_full_refuses_a_server_the_ca_did_not_sign(self):
        app = wsgi.build(env_for(fresh_db(), ORDERS_DB_CA_FILE=PG.other_ca_file), start_metrics=False, log_stream=io.StringIO())
        st, _, body = call(app, body=order_body(), headers={"Idempotency-Key": "k"})
        self.assertEqual(st, 503)
        self.assertIn("certificate verify failed", json.loads(body)["detail"])

    def test_connections_are_tls_as_the_role(self):
        with self.app.store.conn() as c:
            cur = c.cursor()
            cur.execute("SELECT ssl, current_user FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE pid = pg_backend_pid()")
            self.assertEqual(cur.fetchone(), (True, APP_ROLE))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def burst(apps, key, n=THREADS, body=None):
    """n requests for one key released together, spread round-robin over apps (the pods)."""
    gate = threading.Barrier(n)
    out = [None] * n

    def one(i):
        gate.wait()
        out[i] = call(apps[i % len(apps)], body=body or order_body(), headers={"Idempotency-Key": key})

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


@contextlib.contextmanager
def pooled_backend_stopped(test, app):
    """Creates an order through app, so that its pool holds a connection, and stops that
    connection's server process (SIGSTOP) for the with block: its kernel still acknowledges, so
    neither TCP nor the server's statement_timeout ends a wait on it; only the client's can."""
    test.assertEqual(call(app, body=order_body(), headers={"Idempotency-Key": "k-before"})[0], 201)
    with app.store.conn() as c:
        pid = c.get_backend_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


class DatabaseFaults(unittest.TestCase):
    """What a request meets during and right after a database fault: the fault's requests answer
    503 within a bound, and the first requests after it are served (what stampede's chaos specs
    measure as the tail of db-cut and db-restart)."""

    def assertQuick(self, t0, bound):
        self.assertLess(time.monotonic() - t0, bound, "the request was not bounded")

    def lost(self, app):
        return app.log.stream.getvalue().count("pooled database connection lost")

    def test_every_pooled_connection_cut_costs_no_503(self):
        app = make_app(fresh_db())
        burst([app], "k-warm", n=THREADS)  # up to THREADS pooled connections
        self.assertGreaterEqual(PG.terminate_app_connections(), 2)
        # The very next requests, all at once and then one by one, each a new key.
        keys = ["k-next-%d" % i for i in range(THREADS)]
        out = [None] * THREADS
        ts = [threading.Thread(target=lambda i=i: out.__setitem__(i, call(app, body=order_body(), headers={"Idempotency-Key": keys[i]})))
              for i in range(THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        out += [call(app, body=order_body(), headers={"Idempotency-Key": "k-then-%d" % i}) for i in range(THREADS)]
        self.assertEqual([r[0] for r in out], [201] * len(out), [r[2] for r in out if r[0] != 201])
        self.assertGreater(self.lost(app), 0)

    def test_a_connection_out_during_a_link_failure_is_not_pooled_again(self):
        app = make_app(fresh_db())
        with app.store.conn(), app.store.conn():
            pass  # two pooled connections
        with app.store.conn():  # one of them, out in another request
            PG.terminate_app_connections()
            st, _, body = call(app, body=order_body(), headers={"Idempotency-Key": "k-meets-the-other"})
            self.assertEqual(st, 201, body)
            self.assertEqual(self.lost(app), 1)
        # Back from its request, it was closed rather than pooled: no later request meets it.
        for i in range(3):
            st, _, body = call(app, body=order_body(), headers={"Idempotency-Key": "k-later-%d" % i})
            self.assertEqual(st, 201, body)
        self.assertEqual(self.lost(app), 1)

    def test_a_statement_the_server_ends_is_503_and_keeps_the_connection(self):
        db = fresh_db()
        app = make_app(db, ORDERS_DB_LOCK_TIMEOUT_MS="200")
        self.assertEqual(call(app, body=order_body(), headers={"Idempotency-Key": "k-before"})[0], 201)
        with app.store.conn() as c:
            pid = c.get_backend_pid()
        admin = PG.admin(db)
        try:
            admin.autocommit = False
            admin.cursor().execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
            t0 = time.monotonic()
            st, h, body = call(app, body=order_body(), headers={"Idempotency-Key": "k-locked"})
            self.assertQuick(t0, 2)
            self.assertEqual((st, json.loads(body)["code"], h["retry-after"]), (503, "unavailable", "1"))
            self.assertIn("lock timeout", json.loads(body)["detail"])
        finally:
            admin.rollback()
            admin.close()
        self.assertEqual(call(app, body=order_body(), headers={"Idempotency-Key": "k-locked"})[0], 201)
        self.assertEqual(self.lost(app), 0)
        with app.store.conn() as c:
            self.assertEqual(c.get_backend_pid(), pid, "the connection was not pooled again")

    def test_a_silent_server_costs_one_deadline_not_a_hang(self):
        app = make_app(fresh_db(), ORDERS_DB_STATEMENT_TIMEOUT_MS="500")
        with pooled_backend_stopped(self, app):
            t0 = time.monotonic()
            st, _, body = call(app, body=order_body(), headers={"Idempotency-Key": "k-silent"})
            self.assertQuick(t0, 0.5 + 1 + 2)  # statement_timeout, ANSWER_GRACE_S, a new connection
        self.assertEqual(st, 201, body)  # tried again on a new connection
        self.assertIn("no answer from the database within 1.5 s", app.log.stream.getvalue())

    def test_a_server_that_never_answers_a_connect_is_503_within_connect_timeout(self):
        with socket.socket() as mute:  # accepts TCP connections (the kernel does), says nothing
            mute.bind(("127.0.0.1", 0))
            mute.listen(16)
            app = wsgi.build(env_for("orders_mute", ORDERS_DB_PORT=str(mute.getsockname()[1]), ORDERS_DB_CONNECT_TIMEOUT_S="1"),
                             start_metrics=False, log_stream=io.StringIO())
            t0 = time.monotonic()
            st, h, body = call(app, body=order_body(), headers={"Idempotency-Key": "k"})
            self.assertQuick(t0, 2)
        self.assertEqual((st, json.loads(body)["code"], h["retry-after"]), (503, "unavailable", "1"))
        self.assertIn("no answer from the database within 1.0 s", json.loads(body)["detail"])


# How late past its deadline a request may be answered: thread switches and a loaded machine
# (the tests share it with others), never a database wait.
SLACK_S = 0.75


class RequestDeadline(unittest.TestCase):
    """ORDERS_REQUEST_DEADLINE_MS: every wait of a request (a pool slot, connects, statements,
    the retry after a stale connection) draws on one budget, and a database fault costs a
    client a 503 with Retry-After within it, never its own timeout."""

    def assertAnsweredWithin(self, t0, bound):
        took = time.monotonic() - t0
        self.assertLess(took, bound + SLACK_S, "answered %.2f s after the call, the deadline is %.2f s" % (took, bound))

    def assertRetryable503(self, resp, code):
        st, h, body = resp
        self.assertEqual((st, h["content-type"], json.loads(body)["code"], h["retry-after"]),
                         (503, "application/problem+json", code, "1"), body)
        return json.loads(body)["detail"]

    def test_a_silent_statement_is_503_within_the_deadline(self):
        # The statement's own bound (5 s + 1 s) is longer than the request's budget.
        app = make_app(fresh_db(), ORDERS_REQUEST_DEADLINE_MS="1000")
        with pooled_backend_stopped(self, app):
            t0 = time.monotonic()
            resp = call(app, body=order_body(), headers={"Idempotency-Key": "k-silent"})
            self.assertAnsweredWithin(t0, 1.0)
        self.assertIn("deadline", self.assertRetryable503(resp, "unavailable"))
        # A spent budget is no evidence against the link: nothing else was closed for it.
        self.assertNotIn("pooled database connection lost", app.log.stream.getvalue())
        st, _, body = call(app, body=order_body(), headers={"Idempotency-Key": "k-silent"})
        self.assertIn(st, (200, 201), body)

    def test_a_server_that_never_answers_a_connect_is_503_within_the_deadline(self):
        with socket.socket() as mute:  # accepts TCP connections (the kernel does), says nothing
            mute.bind(("127.0.0.1", 0))
            mute.listen(16)
            app = wsgi.build(env_for("orders_mute", ORDERS_DB_PORT=str(mute.getsockname()[1]), ORDERS_REQUEST_DEADLINE_MS="1000"),
                             start_metrics=False, log_stream=io.StringIO())
            t0 = time.monotonic()
            resp = call(app, body=order_body(), headers={"Idempotency-Key": "k"})
            self.assertAnsweredWithin(t0, 1.0)
        self.assertIn("deadline", self.assertRetryable503(resp, "unavailable"))

    def test_the_retry_after_a_stale_connection_draws_on_the_same_budget(self):
        app = make_app(fresh_db(), ORDERS_REQUEST_DEADLINE_MS="1000")
        self.assertEqual(call(app, body=order_body(), headers={"Idempotency-Key": "k-before"})[0], 201)
        PG.terminate_app_connections()  # the pooled connection is stale: the request tries a new one
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen(16)
            real = app.store.s
            app.store.s = dataclasses.replace(real, db_port=mute.getsockname()[1])  # which answers no connect
            t0 = time.monotonic()
            resp = call(app, body=order_body(), headers={"Idempotency-Key": "k-retry"})
            self.assertAnsweredWithin(t0, 1.0)
            app.store.s = real
        self.assertIn("deadline", self.assertRetryable503(resp, "unavailable"))
        self.assertIn("pooled database connection lost", app.log.stream.getvalue())
        self.assertEqual(call(app, body=order_body(), headers={"Idempotency-Key": "k-retry"})[0], 201)

    def test_an_exhausted_pool_is_503_within_the_deadline(self):
        app = make_app(fresh_db(), ORDERS_DB_POOL_MAX="1", ORDERS_REQUEST_DEADLINE_MS="500")
        with app.store.conn():  # the one connection, out in another request
            t0 = time.monotonic()
            resp = call(app, body=order_body(), headers={"Idempotency-Key": "k-starved"})
            self.assertAnsweredWithin(t0, 0.5)
        self.assertRetryable503(resp, "overloaded")
        self.assertEqual(call(app, body=order_body(), headers={"Idempotency-Key": "k-starved"})[0], 201)

    def test_a_request_queued_past_its_deadline_is_503_at_once(self):
        app = make_app(fresh_db(), ORDERS_REQUEST_DEADLINE_MS="1000")
        t0 = time.monotonic()
        resp = call(app, body=order_body(), headers={"Idempotency-Key": "k-late"}, server={QUEUED_AT: t0 - 1.5})
        self.assertAnsweredWithin(t0, 0)
        self.assertIn("free thread", self.assertRetryable503(resp, "overloaded"))
        self.assertEqual(app.store.truth(["tenant-1"]), [], "a request answered 503 must not have been served")
        self.assertEqual(call(app, body=order_body(), headers={"Idempotency-Key": "k-late"}, server={QUEUED_AT: time.monotonic() - 0.5})[0], 201)

    def test_the_deadline_is_a_setting(self):
        self.assertEqual(settings.load(env_for("x")).request_deadline_ms, 4000)
        with self.assertRaisesRegex(settings.SettingsError, "ORDERS_REQUEST_DEADLINE_MS"):
            settings.load(env_for("x", ORDERS_REQUEST_DEADLINE_MS="0"))


class Modes(unittest.TestCase):
    """BURSTS bursts of THREADS concurrent first requests per mode, each burst one new key."""

    def run_bursts(self, mode, pods=1, work_ms=WORK_MS):
        db = fresh_db()
        apps = [make_app(db, mode, work_ms, pod="pod-%d" % i) for i in range(pods)]
        results = {}
        for b in range(BURSTS):
            results["key-%d" % b] = burst(apps, "key-%d" % b)
        rows = {}
        for o in apps[0].store.truth(["tenant-1"]):
            rows.setdefault(o.key, []).append(o.order_id)
        return results, rows

    def test_safe_is_exactly_once(self):
        results, rows = self.run_bursts("safe", pods=3)
        statuses = {}
        for key, answers in results.items():
            self.assertEqual(len(rows[key]), 1, key)
            for st, h, body in answers:
                statuses[st] = statuses.get(st, 0) + 1
                self.assertIn(st, (200, 201, 409), body)
                if st == 409:
                    self.assertEqual(h["retry-after"], "1")
                else:
                    self.assertEqual(json.loads(body)["id"], rows[key][0])
            self.assertEqual(sum(1 for a in answers if a[0] == 201), 1, key)
        FIGURES["safe"] = "%d bursts x %d threads over 3 app instances: 0 duplicate keys; answers %s" % (BURSTS, THREADS, dict(sorted(statuses.items())))

    def test_naive_duplicates_under_concurrency(self):
        results, rows = self.run_bursts("naive")
        dup = sum(1 for ids in rows.values() if len(ids) > 1)
        extra = sum(len(ids) - 1 for ids in rows.values())
        FIGURES["naive"] = "%d of %d bursts left duplicate orders (%d extra rows; %d threads, work delay %d ms)" % (dup, BURSTS, extra, THREADS, WORK_MS)
        self.assertGreater(dup, BURSTS // 2, FIGURES["naive"])
        for key, answers in results.items():
            if len(rows[key]) > 1:
                ids = {json.loads(a[2])["id"] for a in answers if a[0] == 201}
                self.assertGreater(len(ids), 1, "duplicates answered as one id")

    def test_naive_duplicates_without_injected_delay(self):
        # The window is then only the lookup's answer and the insert's trip: smaller, still hit.
        _, rows = self.run_bursts("naive", pods=3, work_ms=0)
        dup = sum(1 for ids in rows.values() if len(ids) > 1)
        FIGURES["naive, no delay"] = "%d of %d bursts left duplicate orders (%d threads over 3 app instances, work delay 0)" % (dup, BURSTS, THREADS)
        self.assertGreater(dup, 0, FIGURES["naive, no delay"])

    def test_naive_is_right_without_concurrency(self):
        app = make_app(fresh_db(), "naive")
        a = call(app, body=order_body(), headers={"Idempotency-Key": "k-seq"})
        b = call(app, body=order_body(), headers={"Idempotency-Key": "k-seq"})
        self.assertEqual((a[0], b[0], json.loads(a[2])["id"]), (201, 200, json.loads(b[2])["id"]))

    def test_cached_replay_diverges_across_pods_with_one_row(self):
        results, rows = self.run_bursts("cached-replay", pods=2)
        diverged = phantom = 0
        for key, answers in results.items():
            self.assertEqual(len(rows[key]), 1, "cached-replay keeps the unique index: one row per key")
            ids = {json.loads(a[2])["id"] for a in answers if a[0] in (200, 201)}
            diverged += len(ids) > 1
            phantom += bool(ids - set(rows[key]))
        FIGURES["cached-replay"] = "%d of %d bursts answered several ids for one key over 2 app instances, %d with an id the database lacks; 0 duplicate rows" % (diverged, BURSTS, phantom)
        self.assertGreater(diverged, BURSTS // 2, FIGURES["cached-replay"])

    def test_cached_replay_is_right_without_concurrency(self):
        db = fresh_db()
        a, b = make_app(db, "cached-replay", pod="pod-a"), make_app(db, "cached-replay", pod="pod-b")
        r1 = call(a, body=order_body(), headers={"Idempotency-Key": "k-seq"})
        r2 = call(b, body=order_body(), headers={"Idempotency-Key": "k-seq"})
        r3 = call(a, body=order_body(), headers={"Idempotency-Key": "k-seq"})
        self.assertEqual([r[0] for r in (r1, r2, r3)], [201, 200, 200])
        self.assertEqual(len({json.loads(r[2])["id"] for r in (r1, r2, r3)}), 1)


class Server(unittest.TestCase):
    """The real server: gunicorn with gunicorn.conf.py, as the image runs it."""

    def start(self, env):
        self.port = _free_port()
        env = dict(env, ORDERS_PORT=str(self.port), ORDERS_TMP_DIR=tempfile.gettempdir(), PATH=os.environ.get("PATH", "/usr/bin:/bin"),
                   PYTHONDONTWRITEBYTECODE="1")
        return subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", os.path.join(ROOT, "gunicorn.conf.py")],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stop(self, proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        with proc.stderr:
            return proc.stderr.read().decode()

    def request(self, method, path, body=None, headers=None, port=None):
        c = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers or {})
        r = c.getresponse()
        out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        c.close()
        return out

    def await_ok(self, proc, path):
        """Polls path until it answers 200, failing if gunicorn exits or 20 s pass first."""
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.request("GET", path)[0] == 200:
                    return
            except OSError:
                pass
            self.assertIsNone(proc.poll(), "gunicorn exited")
            self.assertLess(time.monotonic(), deadline, "%s not 200 in 20 s" % path)
            time.sleep(0.2)

    def test_gunicorn_serves_orders(self):
        metrics_port = _free_port()
        proc = self.start(env_for(fresh_db(), ORDERS_METRICS_PORT=str(metrics_port), ORDERS_POD_NAME="orders-7f9-abc"))
        try:
            self.await_ok(proc, "/healthz/ready")
            h = {"X-Api-Key": "key-one", "Idempotency-Key": "k-gunicorn", "Content-Type": "application/json"}
            st, hd, body = self.request("POST", "/orders", order_body(), h)
            self.assertEqual((st, hd["x-orders-pod"]), (201, "orders-7f9-abc"), body)
            st2, _, body2 = self.request("POST", "/orders", order_body(), h)
            self.assertEqual((st2, json.loads(body2)["id"]), (200, json.loads(body)["id"]))
            st3, hd3, _ = self.request("POST", "/orders", order_body(), {k: v for k, v in h.items() if k != "Idempotency-Key"})
            self.assertEqual((st3, hd3["content-type"]), (400, "application/problem+json"))
            m = self.request("GET", "/metrics", port=metrics_port)[2].decode()
            self.assertIn('orders_requests_total{mode="safe",outcome="created"} 1', m)
            self.assertIn('orders_requests_total{mode="safe",outcome="replayed"} 1', m)
            self.assertEqual(self.request("GET", "/metrics")[0], 404, "metrics only on their own port")
        finally:
            log = self.stop(proc)
        self.assertRegex(log, r'level=info msg=ready pod=orders-7f9-abc mode=safe')

    def test_requests_queued_behind_busy_threads_are_answered_within_the_deadline(self):
        # Two threads, a database that never answers a connect (3 s each), twelve requests at
        # once: without a deadline counted from the request's arrival, the last would wait
        # for five rounds of connects in gunicorn's queue.
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen(64)
            proc = self.start(env_for("orders_mute", ORDERS_DB_PORT=str(mute.getsockname()[1]), ORDERS_THREADS="2",
                                      ORDERS_DB_CONNECT_TIMEOUT_S="3", ORDERS_REQUEST_DEADLINE_MS="1000"))
            try:
                self.await_ok(proc, "/healthz/live")
                n = 12
                gate = threading.Barrier(n)
                out = [None] * n

                def one(i):
                    h = {"X-Api-Key": "key-one", "Idempotency-Key": "k-queued-%d" % i, "Content-Type": "application/json"}
                    gate.wait()
                    t0 = time.monotonic()
                    try:
                        st, hd, body = self.request("POST", "/orders", order_body(), h)
                        out[i] = (time.monotonic() - t0, st, hd.get("retry-after"), json.loads(body)["code"])
                    except OSError as e:  # the client's 10 s timeout: the finding this test is for
                        out[i] = (time.monotonic() - t0, "no answer (%s)" % e, None, None)

                ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
            finally:
                log = self.stop(proc)
        self.assertEqual({(st, ra) for _, st, ra, _ in out}, {(503, "1")}, "%s\n%s" % (sorted(out), log[-2000:]))
        slowest = max(took for took, *_ in out)
        FIGURES["deadline"] = "%d requests at once over 2 threads, database silent: all 503 + Retry-After, slowest in %.2f s (deadline 1 s; codes %s)" % (
            n, slowest, dict(sorted(collections.Counter(code for *_, code in out).items())))
        self.assertLess(slowest, 1.0 + SLACK_S, "the slowest of %d answers took %.2f s: %s" % (n, slowest, sorted(out)))

    def test_gunicorn_refuses_a_broken_mode_in_one_line(self):
        env = env_for("x", "naive")
        env["ORDERS_ALLOW_BROKEN"] = "false"
        proc = self.start(env)
        try:
            proc.wait(20)
        finally:
            log = self.stop(proc)
        self.assertNotEqual(proc.returncode, 0)
        self.assertEqual(log.strip().count("\n"), 0, log)
        self.assertIn("ORDERS_ALLOW_BROKEN=true", log)


if __name__ == "__main__":
    unittest.main()
