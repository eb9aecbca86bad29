"""A throw-away PostgreSQL database per test, on the server at SLUICEGATE_TEST_PG_URL.

Every database this run creates carries the run's unique prefix, is dropped when its test ends, and the
session sweeps the prefix once more at the end, so runs never collide or depend on leftovers.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid

import pytest
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


class PgServer:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"sgtest_{uuid.uuid4().hex[:10]}_"
        self._counter = itertools.count(1)

    def _run(self, *statements: str, url: str | None = None) -> list[str]:
        import asyncpg

        async def go() -> list[str]:
            conn = await asyncpg.connect(url or self.admin_url, timeout=5)
            try:
                rows: list[str] = []
                for statement in statements:
                    result = await conn.fetch(statement)
                    rows.extend(str(r[0]) for r in result)
                return rows
            finally:
                await conn.close()

        return asyncio.run(go())

    def ping(self) -> None:
        self._run("SELECT 1")

    def create_database(self) -> str:
        name = f"{self.prefix}{next(self._counter)}"
        self._run(f'CREATE DATABASE "{name}"')
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def run_on(self, url: str, *statements: str) -> None:
        self._run(*statements, url=url)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        assert name and name.startswith(self.prefix)
        self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        names = self._run(f"SELECT datname FROM pg_database WHERE datname LIKE '{self.prefix}%'")
        for name in names:
            self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def libpq_args(self, url: str) -> list[str]:
        """Arguments for pg_dump/psql reaching ``url``."""
        parsed = make_url(url)
        return [
            "-h",
            parsed.host or "127.0.0.1",
            "-p",
            str(parsed.port or 5432),
            "-U",
            parsed.username or "postgres",
            parsed.database or "",
        ]


def pg_server_or_skip() -> PgServer:
    server = PgServer(os.environ.get("SLUICEGATE_TEST_PG_URL", DEFAULT_PG_URL))
    try:
        server.ping()
    except Exception as exc:
        reason = (
            f"PostgreSQL not reachable at {server.admin_url} ({type(exc).__name__}: {exc}); "
            "set SLUICEGATE_TEST_PG_URL"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)  # in CI the server is part of the contract: never skip silently
        pytest.skip(reason)
    return server
