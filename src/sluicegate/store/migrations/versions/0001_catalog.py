"""Catalog: providers and their encrypted headers, saved configs, admin tokens, the catalog version row.

Revision ID: 0001_catalog
Revises:
Create Date: 2025-01-01

Written by hand as a frozen snapshot (it must not import tables.py, which moves on); tests compare the
result of all migrations with tables.py on both dialects.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001_catalog"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    _providers()
    _provider_headers()
    _saved_configs_and_admin_tokens()
    _catalog_state()


def _providers() -> None:
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("spec", sa.String(32), nullable=False),
        sa.Column("custom_host", sa.Text, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("default_model", sa.String(256), nullable=True),
        sa.Column("forward_headers", sa.JSON, nullable=False),
        sa.Column("allow_entry", sa.String(256), nullable=True),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_providers"),
        sa.UniqueConstraint("slug", name="uq_providers_slug"),
    )


def _provider_headers() -> None:
    op.create_table(
        "provider_headers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("masked", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_provider_headers"),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name="fk_provider_headers_provider_id_providers",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("provider_id", "name", name="uq_provider_headers_provider_id_name"),
    )
    op.create_index("ix_provider_headers_provider_id", "provider_headers", ["provider_id"])
    op.create_index("ix_provider_headers_key_id", "provider_headers", ["key_id"])


def _saved_configs_and_admin_tokens() -> None:
    op.create_table(
        "saved_configs",
        sa.Column("id", sa.String(63), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_saved_configs"),
    )
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admin_tokens"),
        sa.UniqueConstraint("name", name="uq_admin_tokens_name"),
    )


def _catalog_state() -> None:
    state = op.create_table(
        "catalog_state",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_state"),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    for table in ("catalog_state", "admin_tokens", "saved_configs", "provider_headers", "providers"):
        op.drop_table(table)
