"""Dashboard sessions in the store, so that every replica behind a load balancer knows a sign-in.

Revision ID: 0009_dashboard_sessions
Revises: 0008_dashboard_workspaces
Create Date: 2026-12-02

Until now each process held its sessions in memory: behind round-robin, a sign-in on one replica was a 401
on the next, and a restart signed everyone out. A frozen snapshot written by hand, like the others.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009_dashboard_sessions"
down_revision: Union[str, Sequence[str], None] = "0008_dashboard_workspaces"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("workspace_slug", sa.String(63), nullable=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_dashboard_sessions_expires_at", "dashboard_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_dashboard_sessions_expires_at", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
