"""Persistence: one schema (tables.py), Alembic migrations, SQLite by default and PostgreSQL for scale."""

from . import (
    access_tables,  # noqa: F401 - registers the access-control tables on the one MetaData
    limit_tables,  # noqa: F401 - and the usage limits'
    request_logs,  # noqa: F401 - and the request log's
    response_cache,  # noqa: F401 - and the response cache's
)
from .engine import StoreConfigError, create_engine, database_url, is_sqlite
from .migrate import current_revision, head_revision, upgrade
from .setup import opened_store

__all__ = [
    "StoreConfigError",
    "create_engine",
    "current_revision",
    "database_url",
    "head_revision",
    "is_sqlite",
    "opened_store",
    "upgrade",
]
