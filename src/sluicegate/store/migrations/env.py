"""Alembic environment, async-aware and dialect-neutral.

Two ways in:
  - programmatic (``sluicegate.store.migrate.upgrade``): the caller hands over a live sync connection in
    ``config.attributes["connection"]`` (obtained through ``AsyncConnection.run_sync``), so migrations share
    the caller's transaction and lock;
  - the ``alembic`` command line (developers): we build our own async engine from the sluicegate settings.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from sluicegate.settings import settings_from_env
from sluicegate.store.engine import create_engine, database_url
from sluicegate.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table: one migration for both dialects.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    engine = create_engine(settings_from_env())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    url = database_url(settings_from_env())
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
elif context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_from_settings())
