"""Bounded load on 127.0.0.1 for sink tests: N requests at concurrency C, each with its own trace id."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import orjson

BODY = orjson.dumps({"model": "load", "messages": [{"role": "user", "content": "hi"}]})


async def _fire(url: str, headers: dict[str, str], total: int, concurrency: int, prefix: str) -> list[int]:
    statuses: list[int] = []
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def worker() -> None:
            for i in counter:
                sent = {**headers, "content-type": "application/json", "x-portkey-trace-id": f"{prefix}-{i}"}
                async with session.post(url, data=BODY, headers=sent) as response:
                    await response.read()
                    statuses.append(response.status)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def fire(url: str, headers: dict[str, str], total: int, concurrency: int = 50, prefix: str = "load") -> list[int]:
    return asyncio.run(_fire(url, headers, total, concurrency, prefix))


def count_rows(database: Path | str, where: str = "1=1") -> int:
    """Rows in request_logs: a SQLite file path, or a PostgreSQL URL."""
    if isinstance(database, Path):
        with sqlite3.connect(database) as conn:
            return conn.execute(f"SELECT count(*) FROM request_logs WHERE {where}").fetchone()[0]
    return asyncio.run(_pg_count(database, where))


async def _pg_count(url: str, where: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval(f"SELECT count(*) FROM request_logs WHERE {where}")
    finally:
        await conn.close()

