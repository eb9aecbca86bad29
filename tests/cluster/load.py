"""Bounded load over several replicas, every request with its own trace id, every answer (or its absence)
kept: which replica, status, whether a refusal carried a JSON envelope, when it ended, how long it took."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import aiohttp
import orjson

BODY = orjson.dumps({"model": "load", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})


@dataclass
class Result:
    trace: str
    replica: int
    status: int  # 0: no answer (connection refused or reset)
    enveloped: bool  # a non-200 answer was a JSON object with a message
    ended: float  # monotonic
    seconds: float


async def run_load(urls: list[str], headers: dict[str, str], *, prefix: str, seconds: float, concurrency: int,
                   max_requests: int, timeout: float = 20.0) -> list[Result]:
    """Up to ``max_requests`` requests for at most ``seconds``, ``concurrency`` at a time, round-robin."""
    results: list[Result] = []
    numbers = itertools.count()
    stop_at = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:

        async def worker() -> None:
            for n in numbers:
                if n >= max_requests or time.monotonic() > stop_at:
                    return
                replica, trace = n % len(urls), f"{prefix}-{n}"
                started = time.monotonic()
                status, enveloped = 0, False
                try:
                    async with session.post(urls[replica], data=BODY, headers={
                            **headers, "content-type": "application/json", "x-portkey-trace-id": trace}) as answer:
                        raw = await answer.read()
                        status = answer.status
                        if status != 200:
                            try:
                                parsed = orjson.loads(raw)
                                enveloped = isinstance(parsed, dict) and bool(
                                    parsed.get("message") or parsed.get("error"))
                            except orjson.JSONDecodeError:
                                enveloped = False
                except (TimeoutError, aiohttp.ClientError):
                    status = 0
                ended = time.monotonic()
                results.append(Result(trace, replica, status, enveloped, ended, ended - started))
                await asyncio.sleep(0.005)  # bounded rate: a few hundred requests per second at most

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def log_counts(pg_url: str, prefix: str) -> dict[str, int]:
    """trace id → rows in request_logs, for the traces under ``prefix``."""
    import asyncpg

    conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT trace_id, count(*) AS n FROM request_logs WHERE trace_id LIKE $1 "
                                "GROUP BY trace_id", f"{prefix}-%")
    finally:
        await conn.close()
    return {row["trace_id"]: row["n"] for row in rows}


def summary(results: list[Result]) -> str:
    by_status: dict[int, int] = {}
    for result in results:
        by_status[result.status] = by_status.get(result.status, 0) + 1
    slowest = max((r.seconds for r in results), default=0.0)
    return f"{len(results)} requests, statuses {dict(sorted(by_status.items()))}, slowest {slowest:.2f} s"
