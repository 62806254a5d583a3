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
import functools
import json
import select
import threading
import time
import uuid
from dataclasses import dataclass

import psycopg2
import psycopg2.errors
import psycopg2.extensions

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


# How long past its statement_timeout a statement may go unanswered before the store gives up on
# its connection. The server's own timeout answers first whenever the server and the link are
# alive, so this ends only waits on a server or a path that went silent.
ANSWER_GRACE_S = 1.0

# How long a request waits for a free pooled connection before answering 503 overloaded, if
# its deadline leaves it that long.
SLOT_WAIT_S = 2

# Errors with which the server ended a statement that ran or waited too long: the link is
# alive, and the connection is pooled again once rolled back.
_STATEMENT_ENDED = (psycopg2.errors.QueryCanceled, psycopg2.errors.LockNotAvailable)


class StartupError(Exception):
    """The database cannot serve this mode (its message says why)."""


class _StaleConnection(Exception):
    """A pooled connection failed on its link: the server restarted or cut it while it was
    idle. Store.create tries once more on a connection made after the failure rather than
    answer 503 for a fault that is over (a restart leaves every idle connection dead)."""

    def __init__(self, cause):
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True)
class Deadline:
    """The monotonic time (at) by which a request must be answered: every wait of the request
    (a pool slot, a connect, a statement, the retry after a stale connection) ends by it."""
    at: float

    @classmethod
    def after(cls, start, ms):
        return cls(start + ms / 1000)

    def left(self):
        """Seconds left; zero or less once spent."""
        return self.at - time.monotonic()


class _Connection(psycopg2.extensions.connection):
    """A connection whose every wait on the server is bounded (_wait): connect_s while it
    connects, answer_s for each statement after, and all of them by the deadline (a monotonic
    time, or None) of the request that has it out. born is the pool's epoch when it was made
    (Store._lost_link)."""

    def __init__(self, dsn, async_=0, *, connect_s, answer_s, born, deadline):
        self.wait_s = connect_s
        self.deadline = deadline
        super().__init__(dsn, async_)
        self.wait_s = answer_s
        self.born = born


class _Silent(psycopg2.OperationalError):
    """The server or the path to it stopped answering within the connection's deadline."""


class _OutOfTime(Exception):
    """The request's deadline came before the server answered. Not a psycopg2 error: the wait
    was cut by the request's budget, not by the link's own bound, so it says nothing about the
    link and must not close the pool's other connections (Store._lost_link). psycopg2 closes
    the connection it was raised on, whose state is unknown."""


def _wait(conn):
    """psycopg2's wait callback: libpq's I/O as psycopg2.extras.wait_select does it, but bounded
    by conn.wait_s and by the request's deadline (conn.deadline), whichever comes first.
    Without it a request would wait on a server or a path that went silent for as long as the
    kernel keeps the socket open: statement_timeout is enforced by the server, and libpq's own
    connect_timeout does not apply to the asynchronous connect this implies."""
    limit = getattr(conn, "wait_s", None)  # None: not a Store's connection (a test's own)
    deadline = None if limit is None else time.monotonic() + limit
    budget = getattr(conn, "deadline", None)
    cut_by_budget = budget is not None and (deadline is None or budget < deadline)
    if cut_by_budget:
        deadline = budget
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state == psycopg2.extensions.POLL_READ:
            events = select.POLLIN
        elif state == psycopg2.extensions.POLL_WRITE:
            events = select.POLLOUT
        else:
            raise psycopg2.OperationalError("unexpected poll state %r" % state)
        timeout_ms = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                if cut_by_budget:
                    raise _OutOfTime("no answer from the database within the request's deadline")
                raise _Silent("no answer from the database within %.1f s" % limit)
            timeout_ms = max(1, int(left * 1000))
        p = select.poll()
        p.register(conn.fileno(), events)
        p.poll(timeout_ms)


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
        # Bumped by every link failure (_lost_link): a connection born before it is not pooled again.
        self._epoch = 0
        self._slots = threading.BoundedSemaphore(settings.db_pool_max)
        self._cache = {}
        self._cache_lock = threading.Lock()
        self._create = {S.SAFE: self._create_safe, S.NAIVE: self._create_naive,
                        S.CACHED_REPLAY: self._create_cached}[settings.mode]
        # Process-wide, and the same for every Store: it bounds only connections that carry a
        # deadline (_Connection), so it leaves any other connection of the process as it was.
        psycopg2.extensions.set_wait_callback(_wait)

    # --- connections -------------------------------------------------------------------

    def _connect(self, deadline=None):
        kw = self.s.dsn()
        if self.s.db_password_file:
            # Read per connection, so that a rotated Secret is used by the next connection.
            with open(self.s.db_password_file, encoding="utf-8") as f:
                kw["password"] = f.read().strip()
        factory = functools.partial(_Connection, connect_s=self.s.db_connect_timeout_s,
                                    answer_s=self.s.db_statement_timeout_ms / 1000 + ANSWER_GRACE_S, born=self._epoch,
                                    deadline=None if deadline is None else deadline.at)
        c = psycopg2.connect(connection_factory=factory, **kw)
        c.autocommit = True
        return c

    @contextlib.contextmanager
    def conn(self, deadline=None):
        """A connection from the pool, in autocommit: the create paths BEGIN where they need a
        transaction. Every wait on it ends by deadline (a Deadline; None: only the connection's
        own bounds, for the tests' reads). One that failed on its link is closed, not pooled
        again, and so is every other connection made before the failure (_lost_link)."""
        if deadline is not None and deadline.left() <= 0:
            # Spent by a first try whose connection failed (app.py answers a request that spent
            # it queued for a thread): the database's fault, not the pool's.
            raise self._unavailable("the request's deadline was spent before a second try")
        wait = SLOT_WAIT_S if deadline is None else min(SLOT_WAIT_S, deadline.left())
        if not self._slots.acquire(timeout=max(0, wait)):
            raise Problem("overloaded", "no database connection free within %s" % (
                "%d s" % SLOT_WAIT_S if wait == SLOT_WAIT_S else "the request's deadline"),
                          [("Retry-After", str(self.s.retry_after_s))])
        c = None
        try:
            with self._idle_lock:
                c = self._idle.pop() if self._idle else None
            reused = c is not None
            try:
                if c is None:
                    c = self._connect(deadline)
                else:
                    c.deadline = None if deadline is None else deadline.at
                yield c
            except _OutOfTime as e:
                self._discard(c)
                c = None
                raise self._unavailable(e) from e
            except _STATEMENT_ENDED as e:
                # A second try would only load a busy server again.
                c = self._rolled_back(c)
                raise self._unavailable(e) from e
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                if c is not None:  # else the connect itself failed: nothing was pooled from it
                    self._discard(c)
                    c = None
                    self._lost_link()
                if reused:
                    raise _StaleConnection(e) from e
                raise self._unavailable(e) from e
            except BaseException:
                c = self._rolled_back(c)
                raise
        finally:
            with self._idle_lock:
                if c is not None and not c.closed and c.born == self._epoch:
                    c.deadline = None  # an idle connection belongs to no request
                    self._idle.append(c)
                    c = None
            self._discard(c)  # one made before a link failure that it was out during
            self._slots.release()

    def _rolled_back(self, c):
        """c after a ROLLBACK, ready to be pooled again, or None if that failed (c closed)."""
        if c is None or c.closed:
            return None
        try:
            c.cursor().execute("ROLLBACK")
            return c
        except (psycopg2.Error, _OutOfTime):
            self._discard(c)
            return None

    @staticmethod
    def _discard(c):
        if c is not None:
            with contextlib.suppress(Exception):
                c.close()

    def _unavailable(self, e):
        return Problem("unavailable", "database: %s" % _first_line(e), [("Retry-After", str(self.s.retry_after_s))])

    def _lost_link(self):
        """A connection failed on its link (the server restarted, the path was cut, a peer went
        silent). Every connection made before it went through the same path to the same server
        and is presumed to share its fate: the idle ones are closed now, and those out in other
        requests when they come back, so that no later request meets a dead one."""
        with self._idle_lock:
            self._epoch += 1
            idle, self._idle = self._idle, []
        for c in idle:
            self._discard(c)

    def _drain_idle(self):
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for c in idle:
            self._discard(c)

    close = _drain_idle

    # --- schema --------------------------------------------------------------------------

    def migrate(self):
        """Create the table (and, but in naive mode, the unique index), once across replicas.
        Raises StartupError, on which the caller tries again (wsgi.migrate_until_ready)."""
        where = "database %s:%d" % (self.s.db_host, self.s.db_port)
        try:
            c = self._connect()
        except psycopg2.Error as e:
            raise StartupError("%s: %s" % (where, _first_line(e))) from e
        try:
            self._migrate(c.cursor())
        except psycopg2.Error as e:
            # The connection lost, or the lock not had within lock_timeout: like a failed connect.
            raise StartupError("%s: %s" % (where, _first_line(e))) from e
        finally:
            c.close()
        self.ready.set()

    def _migrate(self, cur):
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

    # --- create --------------------------------------------------------------------------

    def create(self, req, deadline):
        """(Order, created): the key's order, created now or replayed, by deadline (a Deadline).
        Raises Problem.

        A second try after a stale pooled connection is safe in every mode: the first try's
        statements either committed (the second finds the order and replays it) or did not. It
        draws on what is left of the same deadline."""
        try:
            return self._create(req, deadline)
        except _StaleConnection as e:
            self.log("warn", "pooled database connection lost; trying a new one", error=_first_line(e.cause))
        try:
            return self._create(req, deadline)
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

    def _work(self, deadline):
        # Simulated work is bounded like any other: past the deadline the next statement fails.
        if self.s.work_delay_ms:
            time.sleep(max(0, min(self.s.work_delay_ms / 1000, deadline.left())))

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

    def _create_safe(self, req, deadline):
        with self.conn(deadline) as c:
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
            self._work(deadline)
            made = self._insert(cur, req, str(uuid.uuid4()), on_conflict=True)
            if made is None:  # the unique index stopped a twin (only a lock-key collision can)
                found = self._select(cur, req)
                cur.execute("COMMIT")
                return self._replay(found, req)
            cur.execute("COMMIT")
            return made, True

    def _create_naive(self, req, deadline):
        with self.conn(deadline) as c:
            cur = c.cursor()
            found = self._select(cur, req)
            if found:
                return self._replay(found, req)
            self._work(deadline)
            # BUG (on purpose): nothing stops another request inserting since the lookup.
            return self._insert(cur, req, str(uuid.uuid4())), True

    def _create_cached(self, req, deadline):
        ck = (req.tenant, req.key)
        with self._cache_lock:
            cached = self._cache.get(ck)
        if cached:
            return self._replay(cached, req)
        with self.conn(deadline) as c:
            cur = c.cursor()
            found = self._select(cur, req)
            if found:
                with self._cache_lock:
                    self._cache.setdefault(ck, found)
                return self._replay(found, req)
            order = Order(str(uuid.uuid4()), req.tenant, req.key, req.digest(), req.customer_email,
                          req.customer_name, req.sku, req.quantity, datetime.datetime.now(datetime.timezone.utc))
            self._work(deadline)
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
