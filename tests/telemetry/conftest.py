from __future__ import annotations

import pytest

from sluicegate.store.engine import create_engine
from sluicegate.telemetry import sqlite_writer
from sluicegate.telemetry.service import store_writer


@pytest.fixture
async def sqlite_log_writer(sqlite_settings):
    """The request log's SQLite writer, as the gateway makes it for a SQLite store."""
    engine = create_engine(sqlite_settings)
    writer = store_writer(engine)
    assert isinstance(writer, sqlite_writer.SqliteWriter)
    yield writer
    await writer.close()
    await engine.dispose()
