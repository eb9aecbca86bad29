"""A fresh database: the schema created from the tables and stamped at the head revision, without Alembic.

Replaying the eight migrations one by one (and importing Alembic, Mako and Pygments to do it) was most of a
first start's store work; for a database with no table at all the result is known in advance: the tables of
the one MetaData, the rows the migrations seed, and the head in ``alembic_version``. A database with any
table in it (ours at an older revision, or someone else's) still goes through Alembic.
``tests/store/test_fresh_schema.py`` holds the two to the same schema and rows on both dialects, so a new
migration that seeds rows must seed them here too (that test names what differs).
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, insert
from sqlalchemy.engine import Connection

from . import access_tables, limit_tables, request_logs, response_cache  # noqa: F401 - their tables join `metadata`
from .access_tables import ACCESS_STATE_ID, DEFAULT_WORKSPACE_SLUG, workspaces
from .limit_tables import LIMITS_STATE_ID
from .tables import CATALOG_STATE_ID, DEFAULT_WORKSPACE_ID, catalog_state, metadata, utcnow

# Alembic's own bookkeeping table, exactly as Alembic creates it (name, type, primary key name), so a later
# migration finds the revision where it looks for it.
_alembic_version = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def create_at_head(connection: Connection, head: str) -> None:
    """Create every table, seed what the migrations seed, and record ``head``; in the caller's transaction,
    all or nothing: a start that dies half-way leaves an empty database, which the next start creates."""
    if connection.dialect.name == "sqlite":
        # Python's sqlite3 opens a transaction only before a data change, so each CREATE would commit on
        # its own and a crash would leave a half-made schema that no path can finish. PostgreSQL's DDL is
        # transactional already.
        connection.exec_driver_sql("BEGIN")
    metadata.create_all(connection, checkfirst=False)
    _alembic_version.create(connection, checkfirst=False)
    # The snapshots' version rows (migrations 0001, 0003, 0006) and the default workspace (0003).
    connection.execute(insert(catalog_state), [{"id": state_id, "version": 0}
                                               for state_id in (CATALOG_STATE_ID, ACCESS_STATE_ID, LIMITS_STATE_ID)])
    now = utcnow()
    connection.execute(insert(workspaces).values(
        id=DEFAULT_WORKSPACE_ID, slug=DEFAULT_WORKSPACE_SLUG, name="Default", description="", defaults={},
        permissions={}, created_at=now, updated_at=now,
    ))
    connection.execute(insert(_alembic_version).values(version_num=head))
