"""The WSGI application: routing, authentication, validation, answers.

    POST /orders        create an order, once per Idempotency-Key (store.py)
    GET  /healthz/live  200 while the process serves
    GET  /healthz/ready 200 once the schema is in place; it never pings the database, so a
                        database outage leaves the pods in the Service answering 503 with
                        Retry-After rather than emptying it into connection errors

Every answer carries X-Orders-Pod (the pod that served it); POST /orders answers also carry
Server-Timing with the handler's interval (handler;dur=MS;desc="start=NS end=NS", Unix
nanoseconds), so that a client can show two pods worked on one key at once.
"""

import json
import re
import sys
import threading
import time
import traceback

from . import keys as K
from .problems import CONTENT_TYPE as PROBLEM_TYPE, RETRYABLE, Problem
from .store import Deadline, Request

API_KEY_HEADER = "X-Api-Key"
POD_HEADER = "X-Orders-Pod"
REPLAYED_HEADER = "Idempotent-Replayed"
# The environ key in which the server (orders.worker) puts the monotonic time the request was
# queued for a thread; absent (another server, the tests' calls), the handler's start stands in.
QUEUED_AT = "orders.queued_at"

FIELDS = ("tenant", "customer_email", "customer_name", "sku", "quantity")
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")

REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
           415: "Unsupported Media Type", 422: "Unprocessable Content", 500: "Internal Server Error",
           503: "Service Unavailable"}


class Logger:
    """One logfmt line per event on stderr: ts=... level=... msg="..." name=value..."""

    def __init__(self, stream=None, pod=""):
        self.stream = stream or sys.stderr
        self.pod = pod
        self._lock = threading.Lock()

    def __call__(self, level, msg, **fields):
        t = time.time()
        parts = ["ts=%s.%03dZ" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)), int(t * 1000) % 1000),
                 "level=" + level, "msg=" + _logfmt(msg)]
        if self.pod:
            parts.append("pod=" + _logfmt(self.pod))
        parts += ["%s=%s" % (k, _logfmt(v)) for k, v in fields.items()]
        with self._lock:
            self.stream.write(" ".join(parts) + "\n")
            self.stream.flush()


def _logfmt(v):
    s = str(v)
    if s and not any(ch in s for ch in ' "=\\') and s.isprintable():
        return s
    return json.dumps(s)


def parse_idempotency_key(raw):
    """The key of an Idempotency-Key header. The draft makes it an sf-string ("..."); Stripe's
    clients send it bare. Both are taken; either way 1-255 printable ASCII characters."""
    if raw is None or raw == "":
        raise Problem("missing_idempotency_key", "POST /orders needs an Idempotency-Key header")
    v = raw.strip()
    if v.startswith('"'):
        if len(v) < 2 or not v.endswith('"'):
            raise Problem("invalid_idempotency_key", "Idempotency-Key opens a string it does not close")
        v = re.sub(r'\\(["\\])', r"\1", v[1:-1])
    if not 1 <= len(v) <= 255 or any(not 0x20 <= ord(ch) <= 0x7E for ch in v):
        raise Problem("invalid_idempotency_key", "Idempotency-Key must be 1-255 printable ASCII characters")
    return v


def parse_order(body, tenant, key):
    """A Request from the decoded body of the tenant's POST /orders with Idempotency-Key key."""
    if not isinstance(body, dict):
        raise Problem("invalid_body", "the body must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise Problem("unknown_field", "unknown member %s (known: %s)" % (unknown[0], ", ".join(FIELDS)))
    if "tenant" in body and body["tenant"] != tenant:
        raise Problem("tenant_mismatch", "the body names tenant %r, the API key belongs to another" % (body["tenant"],))
    email, name, sku = body.get("customer_email"), body.get("customer_name"), body.get("sku")
    qty = body.get("quantity", 1)
    if not isinstance(email, str) or len(email) > 254 or not _EMAIL.match(email):
        raise Problem("invalid_body", "customer_email must be an email address")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise Problem("invalid_body", "customer_name must be a string of 1-200 characters")
    if not isinstance(sku, str) or not _SKU.match(sku):
        raise Problem("invalid_body", "sku must be 1-64 letters, digits, '.', '_' or '-'")
    if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= 1000:
        raise Problem("invalid_body", "quantity must be an integer from 1 to 1000")
    return Request(tenant=tenant, key=key, customer_email=email, customer_name=name, sku=sku, quantity=qty)


class App:
    def __init__(self, settings, store, keys, counter, log):
        self.s = settings
        self.store = store
        self.keys = keys
        self.counter = counter
        self.log = log

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        headers = [(POD_HEADER, self.s.pod)]
        if path == "/orders":
            start = time.time_ns()
            status, more, body = self._orders(environ, method)
            end = time.time_ns()
            headers.append(("Server-Timing", 'handler;dur=%.3f;desc="start=%d end=%d"' % ((end - start) / 1e6, start, end)))
        elif path == "/healthz/live" and method in ("GET", "HEAD"):
            status, more, body = 200, [("Content-Type", "text/plain")], b"live\n"
        elif path == "/healthz/ready" and method in ("GET", "HEAD"):
            ready = self.store.ready.is_set()
            status, more, body = (200 if ready else 503), [("Content-Type", "text/plain")], (b"ready\n" if ready else b"migrating\n")
        else:
            status, more, body = self._problem(Problem("not_found", "no resource %s" % path))
        headers += more + [("Content-Length", str(len(body)))]
        start_response("%d %s" % (status, REASONS.get(status, "")), headers)
        return [b"" if method == "HEAD" else body]

    def _problem(self, p):
        headers = [("Content-Type", PROBLEM_TYPE)] + p.headers
        if p.code in RETRYABLE and not any(k == "Retry-After" for k, _ in headers):
            headers.append(("Retry-After", str(self.s.retry_after_s)))
        return p.status, headers, p.body()

    def _orders(self, environ, method):
        t0 = time.monotonic()
        queued_at = environ.get(QUEUED_AT, t0)
        deadline = Deadline.after(queued_at, self.s.request_deadline_ms)
        fields = {}
        try:
            if method != "POST":
                raise Problem("method_not_allowed", "%s /orders: only POST" % method, [("Allow", "POST")])
            if deadline.left() <= 0:
                # Every thread was busy for longer than the client was promised an answer in.
                raise Problem("overloaded", "waited %.0f ms for a free thread, over the request deadline of %d ms" % (
                    (t0 - queued_at) * 1000, self.s.request_deadline_ms), [("Retry-After", str(self.s.retry_after_s))])
            status, headers, body, fields = self._create(environ, deadline)
        except Problem as p:
            status, headers, body = self._problem(p)
            fields.update(outcome=p.outcome, code=p.code, detail=p.detail)
        except Exception as e:  # noqa: BLE001 - an answer for every request, and a log line
            self.log("error", "unexpected error", error=repr(e), trace=traceback.format_exc(limit=5))
            status, headers, body = self._problem(Problem("internal", "unexpected error; see the pod's log"))
            fields.update(outcome="internal", code="internal")
        self.counter.inc(fields["outcome"])
        self.log("info" if status < 500 else "error", "POST /orders", status=status,
                 ms="%.1f" % ((time.monotonic() - t0) * 1000), queued_ms="%.1f" % ((t0 - queued_at) * 1000), **fields)
        return status, headers, body

    def _create(self, environ, deadline):
        presented = environ.get("HTTP_X_API_KEY", "")
        principal = self.keys.lookup(presented) if presented else None
        if principal is None:
            raise Problem("unauthenticated", "send a valid API key in %s" % API_KEY_HEADER,
                          [("WWW-Authenticate", 'ApiKey realm="orders", header="%s"' % API_KEY_HEADER)])
        if K.WRITE_SCOPE not in principal.scopes:
            raise Problem("insufficient_scope", "the key lacks scope %s" % K.WRITE_SCOPE)
        media = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise Problem("unsupported_media_type", "Content-Type %r; send application/json" % media)
        key = parse_idempotency_key(environ.get("HTTP_IDEMPOTENCY_KEY"))
        raw = self._read_body(environ)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise Problem("invalid_json", "the body is not JSON: %s" % e) from None
        req = parse_order(body, principal.tenant, key)
        order, created = self.store.create(req, deadline)
        headers = [("Content-Type", "application/json")]
        if not created:
            headers.append((REPLAYED_HEADER, "true"))
        fields = {"outcome": "created" if created else "replayed", "tenant": req.tenant,
                  "idem_key": req.key, "order_id": order.order_id}
        return (201 if created else 200), headers, json.dumps(order.json()).encode(), fields

    def _read_body(self, environ):
        limit = self.s.max_body_bytes
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length > limit:
            raise Problem("body_too_large", "the body is %d bytes; at most %d" % (length, limit))
        raw = environ["wsgi.input"].read(length if length >= 0 else limit + 1)
        if len(raw) > limit:
            raise Problem("body_too_large", "the body is over %d bytes" % limit)
        return raw
