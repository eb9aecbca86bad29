"""The dashboard at scale: fill a store with N request-log rows (default 1,000,000) spread over 30 days, then
time the API calls the dashboard's pages make, as the server runs them (telemetry/query.py on the store).

    .venv/bin/python -m bench.dashboard_scale --dialect sqlite            # a fresh SQLite file under /tmp
    .venv/bin/python -m bench.dashboard_scale --dialect pg \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench   # an empty database

The budget (docs/benchmarks.md, "Dashboard at scale"): every logs-page call ≤ 1 s, 30-day analytics ≤ 2 s.
Each call runs REPEAT times and the slowest is reported; the process exits 1 if one is over budget.
``--keep`` reuses an already filled store (same --rows) instead of filling it again.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from multidict import MultiDict
from sqlalchemy import func, insert, select

from sluicegate.settings import Settings
from sluicegate.store import create_engine, upgrade
from sluicegate.store.request_logs import request_attempts, request_logs
from sluicegate.telemetry import params, query

DAY_MS = 86_400_000
BATCH = 5_000
REPEAT = 3
LOGS_BUDGET_S = 1.0
ANALYTICS_BUDGET_S = 2.0
PROVIDERS = [("openai", None), ("openai", "@my-private-llm"), ("openai", "@vllm-a100"), ("openai", "@ollama-box")]
MODELS = [f"model-{i}" for i in range(12)]
# Workspaces as a team shares a gateway: one holds most of the traffic, others little (a workspace key's
# page then filters a small share of the rows); 10 API keys in each.
WORKSPACES = [("ws-main", 0.70), ("ws-research", 0.20), ("ws-ops", 0.09), ("ws-tiny", 0.01)]
BODY = '{"model":"%s","messages":[{"role":"user","content":"%s"}]}'


def make_row(i: int, now_ms: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    created = now_ms - int(rng.random() * 30 * DAY_MS)
    provider, slug = PROVIDERS[i % len(PROVIDERS)]
    model = MODELS[rng.randrange(len(MODELS))]
    status = 200 if rng.random() > 0.03 else rng.choice((400, 429, 500, 502))
    prompt, completion = rng.randrange(5, 800), rng.randrange(1, 400)
    workspace = _workspace(rng.random())
    record_id = f"{created:013d}{i:019d}"
    row = {
        "id": record_id, "created_ms": created, "trace_id": f"trace-{i}", "span_id": None,
        "parent_span_id": None, "span_name": None, "traceparent": None, "method": "POST",
        "route": "/v1/chat/completions", "endpoint": "chat", "status": status,
        "latency_ms": rng.lognormvariate(5.5, 0.6), "ttfb_ms": None, "stream": False, "provider": provider,
        "provider_slug": slug, "model": model, "model_answered": model, "custom_host": None,
        "attempt_count": 1, "retries": 0, "target_path": None, "prompt_tokens": prompt,
        "completion_tokens": completion, "total_tokens": prompt + completion, "usage_estimated": False,
        "cost": (prompt + completion) * 2e-6, "user": f"user-{rng.randrange(200)}",
        "metadata": {"team": f"team-{rng.randrange(8)}", "_user": "x"},
        "error_type": None if status == 200 else "upstream_error",
        "error_message": None if status == 200 else "upstream said no", "cache_status": None,
        "request_bytes": 120, "response_bytes": 300,
        "request_body": BODY % (model, f"question number {i} about something"),
        "response_body": '{"choices":[{"message":{"content":"an answer of a few words"}}]}',
        "workspace_id": workspace, "api_key_id": f"{workspace}-key-{rng.randrange(10)}",
    }
    attempt = {"request_id": record_id, "position": 0, "created_ms": created, "path": None,
               "provider": provider, "host": "http://10.0.0.5:8000/v1", "status": status,
               "latency_ms": row["latency_ms"], "retry": 0, "error": None}
    return row, attempt


def _workspace(draw: float) -> str:
    for workspace, share in WORKSPACES:
        if draw < share:
            return workspace
        draw -= share
    return WORKSPACES[-1][0]


async def fill(engine: Any, rows: int, now_ms: int) -> float:
    rng = random.Random(7)
    started = time.perf_counter()
    for start in range(0, rows, BATCH):
        made = [make_row(i, now_ms, rng) for i in range(start, min(rows, start + BATCH))]
        async with engine.begin() as conn:
            await conn.execute(insert(request_logs), [r for r, _ in made])
            await conn.execute(insert(request_attempts), [a for _, a in made])
        if start % 100_000 == 0:
            print(f"  {start:,} rows …", file=sys.stderr, flush=True)
    return time.perf_counter() - started


async def settle(engine: Any) -> None:
    """What a settled table has: planner statistics, and on PostgreSQL a visibility map (autovacuum would
    make both soon; index-only scans need the latter)."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.execute("VACUUM ANALYZE request_logs, request_attempts")
    else:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    worst, result = 0.0, None
    for _ in range(REPEAT):
        started = time.perf_counter()
        result = await call()
        worst = max(worst, time.perf_counter() - started)
    return worst, result


def logs_calls(engine: Any, now_ms: int, record_id: str) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    since = now_ms - DAY_MS
    pages = {
        "logs: newest 50": {},
        "logs: last 24 h": {"from": str(since / 1000)},
        "logs: model=model-3": {"model": "model-3"},
        "logs: @slug": {"provider_slug": "@vllm-a100"},
        "logs: status=5xx": {"status": "5xx"},
        "logs: user=user-42": {"user": "user-42"},
        "logs: trace id": {"trace_id": "trace-4242"},
        "logs: metadata.team=team-3": {"metadata.team": "team-3"},
        "logs: model + user + 24 h": {"model": "model-3", "user": "user-42", "from": str(since / 1000)},
        "logs: API key": {"api_key_id": "ws-ops-key-3"},
    }
    calls = [(name, _page(engine, q)) for name, q in pages.items()]
    # What a workspace key's session asks: the server adds its workspace to every query.
    for workspace in ("ws-main", "ws-tiny"):
        calls.append((f"logs: signed in to {workspace}", _page(engine, {}, workspace)))
        calls.append((f"logs: signed in to {workspace}, model=model-3", _page(engine, {"model": "model-3"}, workspace)))
    calls.append(("logs: one record (side panel)", lambda: query.get_log(engine, record_id)))
    return calls


def _page(engine: Any, q: dict[str, str], workspace: str | None = None) -> Callable[[], Awaitable[Any]]:
    page = params.parse_page(MultiDict(q))
    if workspace is not None:
        page = replace(page, filter=params.within_workspace(page.filter, workspace))
    return lambda: query.list_logs(engine, page)


def analytics_calls(engine: Any, now_ms: int) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    start = str((now_ms - 30 * DAY_MS) / 1000)
    end = str(now_ms / 1000)
    shapes = {
        "analytics: 30 d by day": {"interval": "1d"},
        "analytics: 30 d by model": {"interval": "all", "group_by": "model"},
        "analytics: 30 d by user": {"interval": "all", "group_by": "user"},
        "analytics: 30 d by workspace": {"interval": "all", "group_by": "workspace_id"},
        "analytics: 30 d by API key": {"interval": "all", "group_by": "api_key_id"},
    }
    calls = [(name, _analytics(engine, {"from": start, "to": end, **q})) for name, q in shapes.items()]
    for workspace in ("ws-main", "ws-tiny"):
        calls.append((f"analytics: signed in to {workspace}, 30 d by day",
                      _analytics(engine, {"from": start, "to": end, "interval": "1d"}, workspace)))
    return calls


def _analytics(engine: Any, q: dict[str, str], workspace: str | None = None) -> Callable[[], Awaitable[Any]]:
    parsed = params.parse_analytics(MultiDict(q))
    if workspace is not None:
        parsed = replace(parsed, filter=params.within_workspace(parsed.filter, workspace))
    return lambda: query.analytics(engine, parsed)


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="sg-dashboard-scale-"))
    settings = Settings(data_dir=data_dir, database_url=args.database_url)
    engine = create_engine(settings)
    await upgrade(engine)
    now_ms = int(time.time() * 1000)
    async with engine.connect() as conn:
        present = await conn.scalar(select(func.count()).select_from(request_logs))
    if not (args.keep and present == args.rows):
        print(f"filling {args.rows:,} rows ({args.dialect}) …", file=sys.stderr)
        print(f"fill: {await fill(engine, args.rows, now_ms):.0f} s", file=sys.stderr)
        await settle(engine)
    async with engine.connect() as conn:
        newest = await conn.scalar(select(func.max(request_logs.c.created_ms)))
        newest_id = await conn.scalar(select(request_logs.c.id).where(request_logs.c.created_ms == newest))
    over = 0
    print(f"| call ({args.dialect}, {args.rows:,} rows) | slowest of {REPEAT} | budget |")
    print("|---|---:|---:|")
    for budget, calls in ((LOGS_BUDGET_S, logs_calls(engine, newest, newest_id)),
                          (ANALYTICS_BUDGET_S, analytics_calls(engine, newest))):
        for name, call in calls:
            seconds, _ = await timed(call)
            over += seconds > budget
            print(f"| {name} | {seconds * 1000:.0f} ms | {budget:.0f} s |", flush=True)
    await engine.dispose()
    return 1 if over else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialect", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--database-url", default=None, help="PostgreSQL: an empty database's URL")
    parser.add_argument("--data-dir", default=None, help="SQLite: where the store goes (default: a temp dir)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse a store already holding --rows rows")
    args = parser.parse_args(argv)
    if args.dialect == "pg" and not args.database_url:
        parser.error("--dialect pg needs --database-url")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
