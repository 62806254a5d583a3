"""The orders table and the three create paths (ORDERS_MODE).

    safe           exactly once. A lookup by key answers replays without any lock. A miss takes
                   a transaction-scoped advisory lock on (tenant, key) without waiting: another
                   request holding it is the key's first request still in flight, answered 409
                   (the Idempotency-Key draft's "concurrent request"). Under the lock, look again
                   and insert; the unique index on (tenant_id, idem_key) is the backstop
                   (INSERT .. ON CONFLICT DO NOTHING, then fetch). A lock is released by commit,
                   rollback or a lost connection, so a crashed pod never leaves a key stuck.
    naive          known broken: look the key up, then insert, in separate statements under READ
                   COMMITTED, with no unique index. Two first requests that overlap both miss the
                   lookup and both insert: two orders for one key, both answered 201.
    cached-replay  known broken, and invisible to a check of the database alone: replays come
                   from a per-process cache; a miss looks the key up, and on a miss inserts with
                   ON CONFLICT DO NOTHING but answers the order it built itself without reading
                   whether its insert won. Two overlapping first requests leave one row (the
                   unique index holds), yet both answer 201 with different ids, and the loser's
                   pod keeps replaying an id the database never had. Sequential requests, even
                   across pods, always see the row and agree.
"""

import contextlib
import datetime
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass

import psycopg2
import psycopg2.errors

from . import settings as S
from .problems import Problem

# pg_advisory_lock key of the schema migration, so that replicas starting together do not race
# on CREATE TABLE IF NOT EXISTS (which is not safe against itself).
MIGRATION_LOCK = 0x6F72646572730001  # "orders" 0001

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id       uuid        PRIMARY KEY,
    tenant_id      text        NOT NULL,
    idem_key       text        NOT NULL,
    request_hash   text        NOT NULL,
    customer_email text        NOT NULL,
    customer_name  text        NOT NULL,
    sku            text        NOT NULL,
    quantity       integer     NOT NULL CHECK (quantity > 0),
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS orders_by_tenant_key ON orders (tenant_id, idem_key, created_at);
"""

UNIQUE_INDEX = "orders_once_per_tenant_key"

COLUMNS = "order_id, tenant_id, idem_key, request_hash, customer_email, customer_name, sku, quantity, created_at"


class StartupError(Exception):
    """The database cannot serve this mode (its message says why)."""


class _StaleConnection(Exception):
    """A pooled connection failed on its link: the server restarted or cut it while it was
    idle. Store.create tries once more on a new connection rather than answer 503 for a fault
    that is over (a restart leaves every idle connection dead)."""

    def __init__(self, cause):
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True)
class Order:
    order_id: str
    tenant: str
    key: str
    request_hash: str
    customer_email: str
    customer_name: str
    sku: str
    quantity: int
    created_at: datetime.datetime

    @classmethod
    def from_row(cls, r):
        return cls(str(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])

    def json(self):
        return {
            "id": self.order_id,
            "tenant": self.tenant,
            "idempotency_key": self.key,
            "customer_email": self.customer_email,
            "customer_name": self.customer_name,
            "sku": self.sku,
            "quantity": self.quantity,
            "status": "accepted",
            "created_at": self.created_at.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class Request:
    """A validated create request: who, which key, what."""
    tenant: str
    key: str
    customer_email: str
    customer_name: str
    sku: str
    quantity: int

    def digest(self):
        """SHA-256 of the request's canonical JSON, tenant and key aside: a replay must carry the
        same order, however its JSON was spaced or ordered."""
        body = {"customer_email": self.customer_email, "customer_name": self.customer_name,
                "sku": self.sku, "quantity": self.quantity}
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def lock_id(self):
        """A signed 64-bit advisory lock key for (tenant, key). Two keys sharing one (a 2^-64
        chance) would only see each other's 409s."""
        h = hashlib.sha256(("orders\0%s\0%s" % (self.tenant, self.key)).encode()).digest()
        return int.from_bytes(h[:8], "big", signed=True)


class Store:
    def __init__(self, settings, log):
        self.s = settings
        self.log = log
        self.ready = threading.Event()
        self._idle = []
        self._idle_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.db_pool_max)
        self._cache = {}
        self._cache_lock = threading.Lock()
        self._create = {S.SAFE: self._create_safe, S.NAIVE: self._create_naive,
                        S.CACHED_REPLAY: self._create_cached}[settings.mode]

    # --- connections -------------------------------------------------------------------

    def _connect(self):
        kw = self.s.dsn()
        if self.s.db_password_file:
            # Read per connection, so that a rotated Secret is used by the next connection.
            with open(self.s.db_password_file, encoding="utf-8") as f:
                kw["password"] = f.read().strip()
        c = psycopg2.connect(**kw)
        c.autocommit = True
        return c

    @contextlib.contextmanager
    def conn(self):
        """A connection from the pool, in autocommit: the create paths BEGIN where they need a
        transaction. One that failed on its link is closed, not pooled again."""
        if not self._slots.acquire(timeout=2):
            raise Problem("overloaded", "no database connection free within 2 s", [("Retry-After", str(self.s.retry_after_s))])
        c = None
        try:
            with self._idle_lock:
                c = self._idle.pop() if self._idle else None
            reused = c is not None
            try:
                if c is None:
                    c = self._connect()
                yield c
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                self._discard(c)
                c = None
                if reused:
                    self._drain_idle()
                    raise _StaleConnection(e) from e
                raise self._unavailable(e) from e
            except BaseException:
                if c is not None and not c.closed:
                    try:
                        c.cursor().execute("ROLLBACK")
                    except psycopg2.Error:
                        self._discard(c)
                        c = None
                raise
        finally:
            if c is not None and not c.closed:
                with self._idle_lock:
                    self._idle.append(c)
            self._slots.release()

    @staticmethod
    def _discard(c):
        if c is not None:
            with contextlib.suppress(Exception):
                c.close()

    def _unavailable(self, e):
        return Problem("unavailable", "database: %s" % _first_line(e), [("Retry-After", str(self.s.retry_after_s))])

    def _drain_idle(self):
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for c in idle:
            self._discard(c)

    close = _drain_idle

    # --- schema --------------------------------------------------------------------------

    def migrate(self):
        """Create the table (and, but in naive mode, the unique index), once across replicas."""
        try:
            c = self._connect()
        except psycopg2.Error as e:
            raise StartupError("database %s:%d: %s" % (self.s.db_host, self.s.db_port, _first_line(e))) from e
        try:
            cur = c.cursor()
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                cur.execute(SCHEMA)
                cur.execute("SELECT 1 FROM pg_indexes WHERE tablename = 'orders' AND indexname = %s", (UNIQUE_INDEX,))
                have_unique = cur.fetchone() is not None
                if self.s.mode == S.NAIVE:
                    if have_unique:
                        self.log("warn", "unique index present: naive's duplicates will fail as 500s",
                                 index=UNIQUE_INDEX)
                elif not have_unique:
                    try:
                        cur.execute("CREATE UNIQUE INDEX %s ON orders (tenant_id, idem_key)" % UNIQUE_INDEX)
                    except psycopg2.errors.UniqueViolation as e:
                        raise StartupError("orders holds two orders for one (tenant, key), left by a broken mode: "
                                           "mode %s needs them resolved first (%s)" % (self.s.mode, _first_line(e))) from e
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        finally:
            c.close()
        self.ready.set()

    # --- create --------------------------------------------------------------------------

    def create(self, req):
        """(Order, created): the key's order, created now or replayed. Raises Problem.

        A second try after a stale pooled connection is safe in every mode: the first try's
        statements either committed (the second finds the order and replays it) or did not."""
        try:
            return self._create(req)
        except _StaleConnection as e:
            self.log("warn", "pooled database connection lost; trying a new one", error=_first_line(e.cause))
        try:
            return self._create(req)
        except _StaleConnection as e:
            raise self._unavailable(e.cause) from e

    def _select(self, cur, req):
        # The oldest, should a broken mode have left several.
        cur.execute("SELECT " + COLUMNS + " FROM orders WHERE tenant_id = %s AND idem_key = %s "
                    "ORDER BY created_at, order_id LIMIT 1", (req.tenant, req.key))
        r = cur.fetchone()
        return Order.from_row(r) if r else None

    @staticmethod
    def _replay(order, req):
        if order.request_hash != req.digest():
            raise Problem("idempotency_key_reused",
                          "Idempotency-Key %r was first used for another order (%s)" % (req.key, order.order_id))
        return order, False

    def _work(self):
        if self.s.work_delay_ms:
            time.sleep(self.s.work_delay_ms / 1000)

    def _insert(self, cur, req, order_id, created_at=None, on_conflict=False):
        cols = "order_id, tenant_id, idem_key, request_hash, customer_email, customer_name, sku, quantity"
        vals = [order_id, req.tenant, req.key, req.digest(), req.customer_email, req.customer_name, req.sku, req.quantity]
        if created_at is not None:
            cols += ", created_at"
            vals.append(created_at)
        sql = "INSERT INTO orders (%s) VALUES (%s)" % (cols, ", ".join(["%s"] * len(vals)))
        if on_conflict:
            sql += " ON CONFLICT (tenant_id, idem_key) DO NOTHING"
        cur.execute(sql + " RETURNING " + COLUMNS, vals)
        r = cur.fetchone()
        return Order.from_row(r) if r else None

    def _create_safe(self, req):
        with self.conn() as c:
            cur = c.cursor()
            found = self._select(cur, req)
            if found:
                return self._replay(found, req)
            cur.execute("BEGIN")
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (req.lock_id(),))
            if not cur.fetchone()[0]:
                cur.execute("ROLLBACK")
                raise Problem("request_in_progress",
                              "the first request with Idempotency-Key %r is still in progress; retry" % req.key,
                              [("Retry-After", str(self.s.retry_after_s))])
            # A new statement, a new snapshot: it sees an order committed by the lock's last holder.
            found = self._select(cur, req)
            if found:
                cur.execute("COMMIT")
                return self._replay(found, req)
            self._work()
            made = self._insert(cur, req, str(uuid.uuid4()), on_conflict=True)
            if made is None:  # the unique index stopped a twin (only a lock-key collision can)
                found = self._select(cur, req)
                cur.execute("COMMIT")
                return self._replay(found, req)
            cur.execute("COMMIT")
            return made, True

    def _create_naive(self, req):
        with self.conn() as c:
            cur = c.cursor()
            found = self._select(cur, req)
            if found:
                return self._replay(found, req)
            self._work()
            # BUG (on purpose): nothing stops another request inserting since the lookup.
            return self._insert(cur, req, str(uuid.uuid4())), True

    def _create_cached(self, req):
        ck = (req.tenant, req.key)
        with self._cache_lock:
            cached = self._cache.get(ck)
        if cached:
            return self._replay(cached, req)
        with self.conn() as c:
            cur = c.cursor()
            found = self._select(cur, req)
            if found:
                with self._cache_lock:
                    self._cache.setdefault(ck, found)
                return self._replay(found, req)
            order = Order(str(uuid.uuid4()), req.tenant, req.key, req.digest(), req.customer_email,
                          req.customer_name, req.sku, req.quantity, datetime.datetime.now(datetime.timezone.utc))
            self._work()
            # BUG (on purpose): the insert may do nothing (another request's row won), and this
            # answers and caches its own order anyway.
            self._insert(cur, req, order.order_id, created_at=order.created_at, on_conflict=True)
        with self._cache_lock:
            self._cache[ck] = order
        return order, True

    def truth(self, tenants):
        """Every order of tenants, oldest first (tests; stampede runs its own truth query)."""
        with self.conn() as c:
            cur = c.cursor()
            cur.execute("SELECT " + COLUMNS + " FROM orders WHERE tenant_id = ANY(%s) ORDER BY created_at, order_id", (list(tenants),))
            return [Order.from_row(r) for r in cur.fetchall()]


def _first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
