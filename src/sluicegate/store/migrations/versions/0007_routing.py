"""Why an attempt went where it went: request_attempts.routing (JSON, NULL unless a least-busy group chose).

Revision ID: 0007_routing
Revises: 0006_limits
Create Date: 2025-01-05

A frozen snapshot written by hand, like the others.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007_routing"
down_revision: Union[str, Sequence[str], None] = "0006_limits"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("request_attempts") as batch:
        batch.add_column(sa.Column("routing", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_attempts") as batch:
        batch.drop_column("routing")
