"""Tenants' API keys, from a file mounted from a Secret.

One key a line, as space-separated name=value pairs; blank lines and lines starting with # are
skipped:

    key_sha256=<64 hex digits> tenant=<tenant id> scopes=orders:write

key_sha256 is the SHA-256 of the key as the client sends it in X-Api-Key, so the file holds no
key itself. scopes is a comma-separated list; a key without orders:write is known (not 401) but
may not create orders (403). The file is read at start: a rotated Secret takes a restart.
"""

import hashlib
import re
from dataclasses import dataclass

WRITE_SCOPE = "orders:write"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class KeysError(Exception):
    """The keys file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Principal:
    tenant: str
    scopes: frozenset


def parse(text, name="keys"):
    """{sha256 hex: Principal} from the file's text."""
    keys = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = {}
        for part in line.split():
            k, sep, v = part.partition("=")
            if not sep or not v:
                raise KeysError("%s:%d: %r is not name=value" % (name, n, part))
            if k in fields:
                raise KeysError("%s:%d: %s given twice" % (name, n, k))
            fields[k] = v
        unknown = set(fields) - {"key_sha256", "tenant", "scopes"}
        if unknown:
            raise KeysError("%s:%d: unknown field %s" % (name, n, ", ".join(sorted(unknown))))
        digest = fields.get("key_sha256", "").lower()
        if not _HEX64.match(digest):
            raise KeysError("%s:%d: key_sha256 must be 64 hex digits" % (name, n))
        tenant = fields.get("tenant", "")
        if not _TENANT.match(tenant):
            raise KeysError("%s:%d: tenant %r is not an id (letters, digits, . _ : -)" % (name, n, tenant))
        if digest in keys:
            raise KeysError("%s:%d: the same key is listed twice" % (name, n))
        scopes = frozenset(s for s in fields.get("scopes", WRITE_SCOPE).split(",") if s)
        keys[digest] = Principal(tenant=tenant, scopes=scopes)
    return keys


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return parse(f.read(), path)
    except OSError as e:
        raise KeysError("API keys file %s: %s" % (path, e.strerror)) from None


def line(key, tenant, scopes=WRITE_SCOPE):
    """The keys-file line for a key (tests, and anyone writing the Secret)."""
    return "key_sha256=%s tenant=%s scopes=%s" % (hashlib.sha256(key.encode()).hexdigest(), tenant, scopes)


class Keys:
    def __init__(self, keys):
        self._keys = keys

    def lookup(self, presented):
        """The Principal of a presented key, or None. A dict lookup by digest: its timing can
        tell at most how much of a SHA-256 matched, which says nothing about the key."""
        return self._keys.get(hashlib.sha256(presented.encode("utf-8", "surrogateescape")).hexdigest())
