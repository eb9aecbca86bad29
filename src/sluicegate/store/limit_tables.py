"""Usage limits' tables (migration ``0006_limits``): what is set, and budget usage of single processes.

``limit_settings`` holds one row per subject (an API key, a workspace or a catalog provider) with
Portkey's ``rate_limits`` and ``usage_limits`` shapes and, for providers, per-model prices. Every write
bumps the ``catalog_state`` row ``LIMITS_STATE_ID`` so running servers reload their snapshot.
``limit_usage`` keeps budget usage of the in-memory counters across restarts (flushed periodically and
at shutdown); with Redis the counters live in Redis instead.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, String, Table

from .tables import UTCDateTime, metadata

LIMITS_STATE_ID = 3
ID_MAX = 64

limit_settings = Table(
    "limit_settings",
    metadata,
    Column("subject_kind", String(16), primary_key=True),  # key | workspace | provider
    Column("subject_id", String(ID_MAX), primary_key=True),  # key id, workspace id, provider slug
    Column("rate_limits", JSON, nullable=True),
    Column("usage_limits", JSON, nullable=True),
    Column("prices", JSON, nullable=True),  # providers: {model: {"input": x, "output": y, "per": 1000 | 1000000}}
    Column("updated_at", UTCDateTime, nullable=False),
)

limit_usage = Table(
    "limit_usage",
    metadata,
    Column("counter", String(256), primary_key=True),
    Column("period", BigInteger, nullable=False),
    Column("used", Float, nullable=False),
    Column("alerted", BigInteger, nullable=True),
)
