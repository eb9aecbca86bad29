"""Request log: the dashboard's workspace and API key views read off an index, newest first.

Revision ID: 0007_dashboard_workspaces
Revises: 0006_limits
Create Date: 2026-12-02

A workspace key's dashboard session adds its workspace to every log query, and the logs page filters by
API key: the plain indexes on workspace_id and api_key_id (0003) become (column, created_ms) ones, so a
workspace's newest page is read straight off the index instead of sorting all of its rows. The analytics
covering index gains workspace_id and api_key_id, so a workspace's analytics and the groupings by
workspace or key still read the index and never the rows. A frozen snapshot written by hand, like the
others.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0007_dashboard_workspaces"
down_revision: Union[str, Sequence[str], None] = "0006_limits"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_WHO = ("workspace_id", "api_key_id")
_ANALYTICS = ("created_ms", "status", "error_type", "latency_ms", "prompt_tokens", "completion_tokens",
              "total_tokens", "cost", "provider", "provider_slug", "model", "user", "cache_status")


def upgrade() -> None:
    for column in _WHO:
        op.drop_index(f"ix_request_logs_{column}", table_name="request_logs")
        op.create_index(f"ix_request_logs_{column}_created_ms", "request_logs", [column, "created_ms"])
    op.drop_index("ix_request_logs_analytics", table_name="request_logs")
    op.create_index("ix_request_logs_analytics", "request_logs", [*_ANALYTICS, *_WHO])


def downgrade() -> None:
    op.drop_index("ix_request_logs_analytics", table_name="request_logs")
    op.create_index("ix_request_logs_analytics", "request_logs", list(_ANALYTICS))
    for column in _WHO:
        op.drop_index(f"ix_request_logs_{column}_created_ms", table_name="request_logs")
        op.create_index(f"ix_request_logs_{column}", "request_logs", [column])
