"""A dashboard session opened with the admin token remembers which one.

Revision ID: 0011_session_admin_token
Revises: 0010_limit_orphans
Create Date: 2026-12-04

A session signed in with the admin token kept its power after ``sluicegate admin-token reset`` (the remedy
for a leaked token) or a new SLUICEGATE_ADMIN_TOKEN: the guard renewed it as "the admin" without asking
whether that token still held. It now stores the token's SHA-256 (what admin_tokens stores already) and
ends once no current admin token has it. Sessions opened before have none, and end at their next request:
their users sign in again. A frozen snapshot written by hand, like the others.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011_session_admin_token"
down_revision: Union[str, Sequence[str], None] = "0010_limit_orphans"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("dashboard_sessions") as batch:
        batch.add_column(sa.Column("admin_token_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dashboard_sessions") as batch:
        batch.drop_column("admin_token_hash")
