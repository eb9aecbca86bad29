"""Access control: workspaces (with the default one), API keys, the audit trail; workspace_id on catalog
rows (existing rows → the default workspace) and workspace_id / api_key_id on request-log rows.

Revision ID: 0003_access
Revises: 0002_request_logs
Create Date: 2025-01-03

A frozen snapshot written by hand, like 0001 and 0002.
"""

from datetime import datetime, timezone
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003_access"
down_revision: Union[str, Sequence[str], None] = "0002_request_logs"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_TS = sa.DateTime(timezone=True)
_ID = sa.String(64)
_DEFAULT = "ws-default"


def upgrade() -> None:
    _workspaces()
    _api_keys()
    _audit_events()
    for table in ("providers", "saved_configs"):
        op.add_column(table, sa.Column("workspace_id", _ID, nullable=False, server_default=_DEFAULT))
        op.create_index(f"ix_{table}_workspace_id", table, ["workspace_id"])
    op.add_column("providers", sa.Column("integration_id", _ID, nullable=True))
    _integrations()
    for column in ("workspace_id", "api_key_id"):
        op.add_column("request_logs", sa.Column(column, _ID, nullable=True))
        op.create_index(f"ix_request_logs_{column}", "request_logs", [column])
    op.execute("INSERT INTO catalog_state (id, version) VALUES (2, 0)")  # the access version row


def _workspaces() -> None:
    table = op.create_table(
        "workspaces",
        sa.Column("id", _ID, nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("defaults", sa.JSON, nullable=False),
        sa.Column("permissions", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
        sa.UniqueConstraint("slug", name="uq_workspaces_slug"),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(table, [{"id": _DEFAULT, "slug": "default", "name": "Default", "description": "",
                            "defaults": {}, "permissions": {}, "created_at": now, "updated_at": now}])


def _api_keys() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", _ID, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("sub_type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("workspace_id", _ID, nullable=True),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("defaults", sa.JSON, nullable=False),
        sa.Column("permissions", sa.JSON, nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_workspace_id", "api_keys", ["workspace_id"])


def _integrations() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("ai_provider_id", sa.String(64), nullable=False),
        sa.Column("workspace_id", _ID, nullable=True),
        sa.Column("configurations", sa.JSON, nullable=False),
        sa.Column("secret", sa.Text, nullable=True),
        sa.Column("masked_key", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_integrations"),
        sa.UniqueConstraint("slug", name="uq_integrations_slug"),
    )


def _audit_events() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", _ID, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(256), nullable=False),
        sa.Column("workspace_id", _ID, nullable=True),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_created_ms", "audit_events", ["created_ms"])
    op.create_index("ix_audit_events_workspace_id", "audit_events", ["workspace_id"])


def downgrade() -> None:
    op.execute("DELETE FROM catalog_state WHERE id = 2")
    with op.batch_alter_table("request_logs") as batch:
        for column in ("api_key_id", "workspace_id"):
            batch.drop_index(f"ix_request_logs_{column}")
            batch.drop_column(column)
    for table in ("saved_configs", "providers"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_workspace_id")
            batch.drop_column("workspace_id")
            if table == "providers":
                batch.drop_column("integration_id")
    for table in ("integrations", "audit_events", "api_keys", "workspaces"):
        op.drop_table(table)
