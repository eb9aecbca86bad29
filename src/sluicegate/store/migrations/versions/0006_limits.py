"""Usage limits: limit_settings (rate and usage limits per key, workspace, provider; provider prices),
limit_usage (budget usage of the in-memory counters, kept across restarts), the limits version row.

Revision ID: 0006_limits
Revises: 0005_log_filter_indexes
Create Date: 2025-01-04

A frozen snapshot written by hand, like the others.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006_limits"
down_revision: Union[str, Sequence[str], None] = "0005_log_filter_indexes"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "limit_settings",
        sa.Column("subject_kind", sa.String(16), primary_key=True),
        sa.Column("subject_id", sa.String(64), primary_key=True),
        sa.Column("rate_limits", sa.JSON, nullable=True),
        sa.Column("usage_limits", sa.JSON, nullable=True),
        sa.Column("prices", sa.JSON, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "limit_usage",
        sa.Column("counter", sa.String(256), primary_key=True),
        sa.Column("period", sa.BigInteger, nullable=False),
        sa.Column("used", sa.Float, nullable=False),
        sa.Column("alerted", sa.BigInteger, nullable=True),
    )
    op.execute("INSERT INTO catalog_state (id, version) VALUES (3, 0)")  # the limits version row


def downgrade() -> None:
    op.execute("DELETE FROM catalog_state WHERE id = 3")
    op.drop_table("limit_usage")
    op.drop_table("limit_settings")
