"""The schema, once, for both dialects. The Alembic migrations in ``migrations/versions`` must produce
exactly this (tests compare them), so a change here always comes with a new migration.

Later tables (``request_logs`` for telemetry, API keys for access/) are added by their own migrations to this
same MetaData; nothing here needs to change for them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

# Explicit constraint names: Alembic can only alter or drop a constraint it can name, and the two dialects
# would otherwise invent different names.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

SLUG_MAX = 63  # a DNS label: slugs end up in URLs and log lines


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both dialects (SQLite drops the offset on the way in; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use datetime.now(timezone.utc)")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


providers = Table(
    "providers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(SLUG_MAX), nullable=False, unique=True),
    Column("spec", String(32), nullable=False),
    Column("custom_host", Text, nullable=False),
    Column("models", JSON, nullable=False),  # list[str]; empty: any model
    Column("default_model", String(256), nullable=True),
    Column("forward_headers", JSON, nullable=False),  # list[str], lower-case
    Column("allow_entry", String(256), nullable=True),  # an SSRF allow-list entry this provider needs
    Column("notes", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One row per auth header. The value exists only as a vault ciphertext bound to (provider id, header name);
# ``masked`` is the display form computed at write time, so listing never needs the master key.
provider_headers = Table(
    "provider_headers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "provider_id",
        Integer,
        ForeignKey("providers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("position", Integer, nullable=False),  # headers are sent in the order the operator gave
    Column("name", String(256), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column(
        "key_id", String(32), nullable=False, index=True
    ),  # also inside the ciphertext; indexed for rotation
    Column("masked", String(64), nullable=False),
    UniqueConstraint("provider_id", "name", name="uq_provider_headers_provider_id_name"),
)

saved_configs = Table(
    "saved_configs",
    metadata,
    Column("id", String(SLUG_MAX), primary_key=True),  # what clients send in x-portkey-config
    Column("text", Text, nullable=False),
    Column("notes", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("token_hash", String(128), nullable=False),  # sha256 hex of a 256-bit random token
    Column("created_at", UTCDateTime, nullable=False),
)

# A single row (id = 1) whose version every catalog write bumps in the same transaction; running servers poll
# it (one primary-key read) to learn that their in-memory catalog is stale.
catalog_state = Table(
    "catalog_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

CATALOG_STATE_ID = 1
