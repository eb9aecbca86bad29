"""The request log: one row per request, one per upstream attempt (written by telemetry/, read by its query).

Times are integer milliseconds since the epoch (``created_ms``), not timestamps: time buckets for analytics
are then plain integer arithmetic that both dialects compute the same way, and the column sorts and compares
cheaply. Ids are made by the gateway (sortable by time, see telemetry/rows.py), so a batch replayed from the
spool can be inserted again without duplicates. No request header is stored, ever.

The tables join the store's one MetaData (``store/__init__`` imports this module), so the migration test
and the test fixtures see them; the schema comes from migration ``0002_request_logs``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from .tables import metadata

NAME_MAX = 256  # names, ids and paths are cut to this before they are written (telemetry/rows.py)
ID_LENGTH = 32  # the gateway's ids (ids.py)

request_logs = Table(
    "request_logs",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("created_ms", BigInteger, nullable=False, index=True),
    Column("trace_id", String(NAME_MAX), nullable=True, index=True),
    Column("span_id", String(NAME_MAX), nullable=True),
    Column("parent_span_id", String(NAME_MAX), nullable=True),
    Column("span_name", String(NAME_MAX), nullable=True),
    Column("traceparent", String(NAME_MAX), nullable=True),
    Column("method", String(16), nullable=False),
    Column("route", String(NAME_MAX), nullable=False),
    Column("endpoint", String(16), nullable=False),
    Column("status", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("ttfb_ms", Float, nullable=True),  # streams: time to the first content relayed (TTFT)
    Column("stream", Boolean, nullable=False),
    Column("provider", String(NAME_MAX), nullable=True),  # the provider id or API spec ("openai")
    Column("provider_slug", String(NAME_MAX), nullable=True),  # a catalog provider ("@my-llm"), if one answered
    Column("model", String(NAME_MAX), nullable=True),  # as asked
    Column("model_answered", String(NAME_MAX), nullable=True),
    Column("custom_host", Text, nullable=True),  # scheme://host:port/path only: no user-info, no query
    Column("attempt_count", Integer, nullable=False),
    Column("retries", Integer, nullable=False),
    Column("target_path", String(NAME_MAX), nullable=True),  # the config target that answered
    Column("prompt_tokens", Integer, nullable=True),
    Column("completion_tokens", Integer, nullable=True),
    Column("total_tokens", Integer, nullable=True),
    Column("usage_estimated", Boolean, nullable=False),
    Column("cost", Float, nullable=True),  # USD
    Column("user", String(NAME_MAX), nullable=True),  # metadata "_user"
    Column("metadata", JSON, nullable=False),
    Column("error_type", String(NAME_MAX), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("cache_status", String(16), nullable=True),
    Column("request_bytes", BigInteger, nullable=False),
    Column("response_bytes", BigInteger, nullable=False),
    Column("request_body", Text, nullable=True),  # cut to log_body_max_bytes; NULL when not logged
    Column("response_body", Text, nullable=True),
    # Who asked (migration 0003): the workspace and the gateway API key's id, never the key itself.
    Column("workspace_id", String(64), nullable=True, index=True),
    Column("api_key_id", String(64), nullable=True, index=True),
    # The dashboard's filters: a filtered page reads newest first off one index (migration 0005).
    *(Index(f"ix_request_logs_{name}_created_ms", name, "created_ms")
      for name in ("provider", "provider_slug", "model", "status", "user")),
    # Analytics read this covering index instead of the rows (which hold the bodies); workspace_id and
    # api_key_id (migration 0007) for a workspace key's analytics and the groupings by workspace or key.
    Index("ix_request_logs_analytics", "created_ms", "status", "error_type", "latency_ms", "prompt_tokens",
          "completion_tokens", "total_tokens", "cost", "provider", "provider_slug", "model", "user",
          "cache_status", "workspace_id", "api_key_id"),
)

request_attempts = Table(
    "request_attempts",
    metadata,
    Column("request_id", String(32), nullable=False),
    Column("position", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False, index=True),  # the request's: retention prunes by it
    Column("path", String(NAME_MAX), nullable=True),
    Column("provider", String(NAME_MAX), nullable=True),
    Column("host", Text, nullable=True),
    Column("status", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("retry", Integer, nullable=False),  # 0: the target's first try; n: its n-th retry
    Column("error", Text, nullable=True),
    # A least-busy choice (migration 0007): policy, the candidates compared, their scores and figures.
    Column("routing", JSON, nullable=True),
    # No foreign key: attempts are written with their request in one transaction, pruned by the same time,
    # and a key check per inserted row would tax the writer for nothing.
    PrimaryKeyConstraint("request_id", "position"),
)
