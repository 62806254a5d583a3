"""The orders API: POST /orders, made exactly once per Idempotency-Key.

A second target for stampede, written apart from the token service on purpose: another
language, another server (gunicorn), another API style (Idempotency-Key, RFC 9457 problems),
another notion of identity (the tenant comes from an API key). See README.md beside it.
"""
