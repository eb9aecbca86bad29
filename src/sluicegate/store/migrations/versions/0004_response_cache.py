"""Response cache entries (cache/store_backend.py).

Revision ID: 0004_response_cache
Revises: 0003_access
Create Date: 2026-12-02

A frozen snapshot written by hand: it must not import store/response_cache.py, which moves on.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004_response_cache"
down_revision: Union[str, Sequence[str], None] = "0003_access"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "response_cache",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_response_cache"),
    )
    op.create_index("ix_response_cache_expires_ms", "response_cache", ["expires_ms"])


def downgrade() -> None:
    op.drop_index("ix_response_cache_expires_ms", table_name="response_cache")
    op.drop_table("response_cache")
