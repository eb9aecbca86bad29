"""The response cache's table (cache/store_backend.py): one row per entry, keyed by the cache key's hex
SHA-256. ``data`` is an entry as cache/entry.py encodes it (status, content type, body: never a
credential); ``expires_ms`` is wall-clock milliseconds since the epoch. Schema from migration
``0004_response_cache``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, String, Table

from .tables import metadata

response_cache = Table(
    "response_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("expires_ms", BigInteger, nullable=False, index=True),
    Column("data", LargeBinary, nullable=False),
)
