"""Usage limits' tables (migration ``0006_limits``): what is set, and budget usage of single processes.

``limit_settings`` holds one row per subject (an API key, a workspace or a catalog provider) with
Portkey's ``rate_limits`` and ``usage_limits`` shapes and, for providers, per-model prices. Every write
bumps the ``catalog_state`` row ``LIMITS_STATE_ID`` so running servers reload their snapshot.
``limit_usage`` keeps budget usage of the in-memory counters across restarts (flushed periodically and
at shutdown); with Redis the counters live in Redis instead.

A subject's rows go with the subject: ``delete_subject_limits`` runs in the transaction that deletes a
workspace or a catalog provider (migration ``0010_limit_orphans`` removed what earlier deletions left).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, String, Table, delete
from sqlalchemy.ext.asyncio import AsyncConnection

from .state import bump_version
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


async def delete_subject_limits(conn: AsyncConnection, kind: str, subject_id: str) -> None:
    """Delete a subject's limits and saved budget usage, in the caller's transaction (the one deleting the
    subject). Once it is gone neither the admin API nor the CLI can reach them (an unknown subject is a 404),
    and a provider slug can be taken again: its new owner must not inherit them.

    The version is bumped even when no row was deleted: a running server may hold the subject's usage in
    memory, not saved yet, and drops it as it reloads (limits/registry.py) instead of saving it back."""
    await conn.execute(delete(limit_settings).where(limit_settings.c.subject_kind == kind,
                                                    limit_settings.c.subject_id == subject_id))
    await conn.execute(delete(limit_usage).where(
        limit_usage.c.counter.startswith(f"{kind}:{subject_id}:", autoescape=True)))
    await bump_version(conn, LIMITS_STATE_ID)
