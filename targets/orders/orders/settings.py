"""Settings, read once from ORDERS_* environment variables.

Secrets are never variables: the database password and the API keys are files (Secret volumes),
named here by their paths. A setting that is wrong stops the process with one line naming it.
"""

import os
from dataclasses import dataclass

# The modes of the create path (store.py). The broken ones exist so that stampede has something
# to catch; they refuse to start unless ORDERS_ALLOW_BROKEN=true says someone meant it.
SAFE = "safe"
NAIVE = "naive"
CACHED_REPLAY = "cached-replay"
MODES = (SAFE, NAIVE, CACHED_REPLAY)
BROKEN_MODES = (NAIVE, CACHED_REPLAY)

# TCP keepalives of database connections (Settings.dsn): a dead peer is noticed in 5 + 2*3 s.
KEEPALIVE_IDLE_S = 5
KEEPALIVE_INTERVAL_S = 2
KEEPALIVE_COUNT = 3

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class SettingsError(Exception):
    """A setting is missing or malformed; its message names the variable."""


@dataclass(frozen=True)
class Settings:
    mode: str
    allow_broken: bool
    port: int
    metrics_port: int
    threads: int
    pod: str
    db_host: str
    db_port: int
    db_name: str
    db_user: str
    db_password_file: str
    db_sslmode: str
    db_ca_file: str
    db_pool_max: int
    db_connect_timeout_s: int
    db_statement_timeout_ms: int
    db_lock_timeout_ms: int
    api_keys_file: str
    # Simulated work (a pricing or stock call) between looking the key up and inserting the
    # order, in every mode: it widens the window the broken modes race in, and in safe mode it
    # is the time a second request finds the first one in flight.
    work_delay_ms: int
    max_body_bytes: int
    retry_after_s: int
    # The budget of one POST /orders from its arrival (queued in gunicorn included): every wait
    # on a pool slot or the database draws on it, and a request that spends it answers 503 with
    # Retry-After at once. Well under a client's usual 10 s timeout, so that a database fault
    # costs a client an answer it can act on rather than its own timeout.
    request_deadline_ms: int

    def dsn(self):
        """psycopg2 connection keywords, without the password (read from its file per connect).

        connect_timeout is libpq's; the store enforces it itself too (store.py: its wait
        callback makes libpq connect asynchronously, where libpq does not apply it)."""
        kw = {
            "host": self.db_host,
            "port": self.db_port,
            "dbname": self.db_name,
            "user": self.db_user,
            "sslmode": self.db_sslmode,
            "connect_timeout": self.db_connect_timeout_s,
            "application_name": ("orders " + self.pod)[:63],
            # A lock wait (a twin's uncommitted insert, a migration) ends before the statement
            # does, with an error that says so.
            "options": "-c statement_timeout=%d -c lock_timeout=%d" % (self.db_statement_timeout_ms, self.db_lock_timeout_ms),
            # A peer that vanished without a FIN or RST (a node lost, a cut path) closes an idle
            # pooled connection within about KEEPALIVE_IDLE_S + KEEPALIVE_INTERVAL_S *
            # KEEPALIVE_COUNT seconds, instead of the kernel's two hours: the next request then
            # meets a closed socket at once rather than a dead link.
            "keepalives": 1,
            "keepalives_idle": KEEPALIVE_IDLE_S,
            "keepalives_interval": KEEPALIVE_INTERVAL_S,
            "keepalives_count": KEEPALIVE_COUNT,
        }
        if self.db_ca_file:
            kw["sslrootcert"] = self.db_ca_file
        return kw


def _int(env, name, default, lo, hi):
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise SettingsError("%s=%r is not an integer" % (name, raw)) from None
    if not lo <= v <= hi:
        raise SettingsError("%s=%d is out of range [%d, %d]" % (name, v, lo, hi))
    return v


def _bool(env, name):
    raw = env.get(name, "false").strip().lower()
    if raw not in ("true", "false", ""):
        raise SettingsError("%s=%r: want true or false" % (name, raw))
    return raw == "true"


def _required(env, name):
    v = env.get(name, "")
    if v == "":
        raise SettingsError("%s is required" % name)
    return v


def load(env=None):
    """Settings from env (os.environ by default); raises SettingsError."""
    env = os.environ if env is None else env
    mode = env.get("ORDERS_MODE", SAFE)
    if mode not in MODES:
        raise SettingsError("ORDERS_MODE=%r: want one of %s" % (mode, ", ".join(MODES)))
    allow_broken = _bool(env, "ORDERS_ALLOW_BROKEN")
    if mode in BROKEN_MODES and not allow_broken:
        raise SettingsError(
            "ORDERS_MODE=%s is known broken (duplicate or diverging orders under concurrency); "
            "set ORDERS_ALLOW_BROKEN=true to run it on purpose" % mode)
    sslmode = env.get("ORDERS_DB_SSLMODE", "verify-full")
    if sslmode not in SSL_MODES:
        raise SettingsError("ORDERS_DB_SSLMODE=%r: want one of %s" % (sslmode, ", ".join(SSL_MODES)))
    ca = env.get("ORDERS_DB_CA_FILE", "")
    if sslmode.startswith("verify-") and not ca:
        raise SettingsError("ORDERS_DB_SSLMODE=%s needs ORDERS_DB_CA_FILE (the CA that signed the server's certificate)" % sslmode)
    threads = _int(env, "ORDERS_THREADS", 8, 1, 256)
    return Settings(
        mode=mode,
        allow_broken=allow_broken,
        port=_int(env, "ORDERS_PORT", 8080, 1, 65535),
        metrics_port=_int(env, "ORDERS_METRICS_PORT", 9090, 0, 65535),
        threads=threads,
        pod=env.get("ORDERS_POD_NAME", "") or os.uname().nodename,
        db_host=_required(env, "ORDERS_DB_HOST"),
        db_port=_int(env, "ORDERS_DB_PORT", 5432, 1, 65535),
        db_name=_required(env, "ORDERS_DB_NAME"),
        db_user=_required(env, "ORDERS_DB_USER"),
        db_password_file=env.get("ORDERS_DB_PASSWORD_FILE", ""),
        db_sslmode=sslmode,
        db_ca_file=ca,
        # One connection per request thread: the pool never runs dry under its own server.
        db_pool_max=_int(env, "ORDERS_DB_POOL_MAX", threads, 1, 1000),
        db_connect_timeout_s=_int(env, "ORDERS_DB_CONNECT_TIMEOUT_S", 3, 1, 600),
        db_statement_timeout_ms=_int(env, "ORDERS_DB_STATEMENT_TIMEOUT_MS", 5000, 1, 600000),
        db_lock_timeout_ms=_int(env, "ORDERS_DB_LOCK_TIMEOUT_MS", 1000, 1, 600000),
        api_keys_file=_required(env, "ORDERS_API_KEYS_FILE"),
        work_delay_ms=_int(env, "ORDERS_WORK_DELAY_MS", 0, 0, 60000),
        max_body_bytes=_int(env, "ORDERS_MAX_BODY_BYTES", 16384, 64, 1 << 20),
        retry_after_s=_int(env, "ORDERS_RETRY_AFTER_S", 1, 1, 3600),
        request_deadline_ms=_int(env, "ORDERS_REQUEST_DEADLINE_MS", 4000, 100, 600000),
    )
