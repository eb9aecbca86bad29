"""Persistence: one schema (tables.py), Alembic migrations, SQLite by default and PostgreSQL for scale."""

from . import request_logs  # noqa: F401 - registers the request-log tables on the one MetaData
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
