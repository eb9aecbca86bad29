"""Request log: request_logs and request_attempts (telemetry).

Revision ID: 0002_request_logs
Revises: 0001_catalog
Create Date: 2025-01-02

A frozen snapshot written by hand, like 0001: it must not import store/request_logs.py, which moves on.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002_request_logs"
down_revision: Union[str, Sequence[str], None] = "0001_catalog"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_NAME = sa.String(256)


def upgrade() -> None:
    op.create_table(
        "request_logs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("trace_id", _NAME, nullable=True),
        sa.Column("span_id", _NAME, nullable=True),
        sa.Column("parent_span_id", _NAME, nullable=True),
        sa.Column("span_name", _NAME, nullable=True),
        sa.Column("traceparent", _NAME, nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("route", _NAME, nullable=False),
        sa.Column("endpoint", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttfb_ms", sa.Float, nullable=True),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("provider", _NAME, nullable=True),
        sa.Column("provider_slug", _NAME, nullable=True),
        sa.Column("model", _NAME, nullable=True),
        sa.Column("model_answered", _NAME, nullable=True),
        sa.Column("custom_host", sa.Text, nullable=True),
        sa.Column("attempt_count", sa.Integer, nullable=False),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("target_path", _NAME, nullable=True),
        sa.Column("prompt_tokens", sa.Integer, nullable=True),
        sa.Column("completion_tokens", sa.Integer, nullable=True),
        sa.Column("total_tokens", sa.Integer, nullable=True),
        sa.Column("usage_estimated", sa.Boolean, nullable=False),
        sa.Column("cost", sa.Float, nullable=True),
        sa.Column("user", _NAME, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("error_type", _NAME, nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("cache_status", sa.String(16), nullable=True),
        sa.Column("request_bytes", sa.BigInteger, nullable=False),
        sa.Column("response_bytes", sa.BigInteger, nullable=False),
        sa.Column("request_body", sa.Text, nullable=True),
        sa.Column("response_body", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_request_logs"),
    )
    op.create_index("ix_request_logs_created_ms", "request_logs", ["created_ms"])
    op.create_index("ix_request_logs_trace_id", "request_logs", ["trace_id"])
    op.create_index("ix_request_logs_user", "request_logs", ["user"])
    op.create_table(
        "request_attempts",
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("path", _NAME, nullable=True),
        sa.Column("provider", _NAME, nullable=True),
        sa.Column("host", sa.Text, nullable=True),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("retry", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("request_id", "position", name="pk_request_attempts"),
    )
    op.create_index("ix_request_attempts_created_ms", "request_attempts", ["created_ms"])


def downgrade() -> None:
    op.drop_table("request_attempts")
    op.drop_table("request_logs")
