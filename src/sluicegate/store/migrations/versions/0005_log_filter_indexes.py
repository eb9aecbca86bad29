"""Request log: indexes for the dashboard's filters (one per filter column, newest first within it).

Revision ID: 0005_log_filter_indexes
Revises: 0004_response_cache
Create Date: 2026-12-02

Each filter of the logs page (provider, @slug, model, status, user) gets a (column, created_ms) index: a
filtered page is then read newest first straight off the index, stopping after one page, instead of
scanning every row of the time range. The (user, created_ms) index replaces the plain one on user.
Analytics get one covering index, led by created_ms and holding every column they aggregate or group by:
a 30-day aggregate then reads that compact index (about a tenth of the table, which also holds the bodies)
and never the rows. A frozen snapshot written by hand, like 0001 and 0002.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0005_log_filter_indexes"
down_revision: Union[str, Sequence[str], None] = "0004_response_cache"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_FILTERS = ("provider", "provider_slug", "model", "status", "user")
_ANALYTICS = ("created_ms", "status", "error_type", "latency_ms", "prompt_tokens", "completion_tokens",
              "total_tokens", "cost", "provider", "provider_slug", "model", "user",
              "cache_status")


def upgrade() -> None:
    op.drop_index("ix_request_logs_user", table_name="request_logs")
    for column in _FILTERS:
        op.create_index(f"ix_request_logs_{column}_created_ms", "request_logs", [column, "created_ms"])
    op.create_index("ix_request_logs_analytics", "request_logs", list(_ANALYTICS))


def downgrade() -> None:
    op.drop_index("ix_request_logs_analytics", table_name="request_logs")
    for column in _FILTERS:
        op.drop_index(f"ix_request_logs_{column}_created_ms", table_name="request_logs")
    op.create_index("ix_request_logs_user", "request_logs", ["user"])
