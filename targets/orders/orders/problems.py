"""Errors as RFC 9457 problem details (application/problem+json).

Every problem has type, title, status and detail, plus code: a stable, machine-readable name
of the problem (an extension member, as RFC 9457 section 3.2 allows), which clients and
stampede's target file match on rather than on the prose.
"""

import json

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://orders.example/problems/"

# code -> (status, title, outcome counted in /metrics)
CATALOGUE = {
    "unauthenticated": (401, "Missing or unknown API key", "unauthenticated"),
    "insufficient_scope": (403, "API key may not create orders", "forbidden"),
    "tenant_mismatch": (403, "Tenant differs from the API key's", "forbidden"),
    "missing_idempotency_key": (400, "Idempotency-Key header required", "invalid"),
    "invalid_idempotency_key": (400, "Idempotency-Key header malformed", "invalid"),
    "invalid_json": (400, "Body is not JSON", "invalid"),
    "invalid_body": (400, "Body is not a valid order", "invalid"),
    "unknown_field": (400, "Body has an unknown member", "invalid"),
    "body_too_large": (413, "Body too large", "invalid"),
    "unsupported_media_type": (415, "Body must be application/json", "invalid"),
    "idempotency_key_reused": (422, "Idempotency-Key reused with another request", "key_reused"),
    "request_in_progress": (409, "A request with this Idempotency-Key is in progress", "in_progress"),
    "not_found": (404, "No such resource", "not_found"),
    "method_not_allowed": (405, "Method not allowed", "invalid"),
    "unavailable": (503, "Database unavailable", "unavailable"),
    "overloaded": (503, "Too many requests in progress", "overloaded"),
    "internal": (500, "Internal error", "internal"),
}

# Problems a client may retry as they are: they carry Retry-After.
RETRYABLE = frozenset({"request_in_progress", "unavailable", "overloaded"})


class Problem(Exception):
    def __init__(self, code, detail, headers=None):
        super().__init__(detail)
        self.code = code
        self.status, self.title, self.outcome = CATALOGUE[code]
        self.detail = detail
        self.headers = list(headers or [])

    def body(self):
        return json.dumps({
            "type": TYPE_BASE + self.code.replace("_", "-"),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }).encode()
