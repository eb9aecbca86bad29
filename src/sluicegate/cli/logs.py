"""``sluicegate logs tail [-n N] [-f] [filters]`` and ``sluicegate logs show ID``: the request log from the shell.

They read the store directly (like the other management commands), with the same filters, validation and
record shape as ``GET /admin/api/logs``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import BadRequest
from ..ids import created_ms_of
from ..telemetry import params, query
from .support import (
    EXIT_REFUSED,
    command,
    fail,
    open_store,
    print_json,
    print_table,
    settings_from_args,
    store_options,
    wants_json,
)

FOLLOW_EVERY_S = 1.0
# Following reads back this far on every poll: rows are ordered by the time their request started, so a long
# request (a stream) is written after newer ones, and would be missed by a poll that read only the newest.
FOLLOW_LOOKBACK_MS = 10 * 60 * 1000
FOLLOW_PAGES = 20  # at most this many pages of 500 a poll: 10,000 requests a second, more than a gateway logs
_COLUMNS = ("time", "id", "status", "ms", "provider", "model", "tokens", "cost", "user", "trace_id")


def register(subparsers: argparse._SubParsersAction) -> None:
    logs = subparsers.add_parser("logs", help="read the request log")
    actions = logs.add_subparsers(dest="logs_command", required=True, metavar="{tail,show}")
    common = store_options()
    tail = actions.add_parser("tail", parents=[common], help="the latest requests, oldest first")
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many (default 20, at most 500)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new requests")
    for name in ("status", "provider", "model", "user", "trace-id"):
        tail.add_argument(f"--{name}", help=f"only these {name} values (comma-separated)")
    tail.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                      help="only requests with this metadata value (repeatable)")
    tail.set_defaults(func=command(logs_tail))
    show = actions.add_parser("show", parents=[common], help="one request in full, bodies included")
    show.add_argument("id")
    show.set_defaults(func=command(logs_show))


def _query(args: argparse.Namespace) -> dict[str, str]:
    if not 1 <= args.lines <= params.MAX_LIMIT:  # the API's word for it is 'limit': the flag is what was typed
        raise BadRequest(f"-n must be a whole number from 1 to {params.MAX_LIMIT}")
    wanted = {"limit": str(args.lines)}
    for name in ("status", "provider", "model", "user", "trace_id"):
        if getattr(args, name) is not None:
            wanted[name] = getattr(args, name)
    for item in args.metadata:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadRequest(f"--metadata takes KEY=VALUE, got {item!r}")
        wanted[f"metadata.{key}"] = value
    return wanted


async def logs_tail(args: argparse.Namespace) -> int:
    page = params.parse_page(_query(args))  # the API's validation: a bad filter is a clear refusal
    async with open_store(settings_from_args(args, store_only=True)) as engine:
        records = list(reversed((await query.list_logs(engine, page))["data"]))
        _print(records, args, header=True)
        seen = {r["id"] for r in records}
        while args.follow:
            await asyncio.sleep(FOLLOW_EVERY_S)
            since_ms = int(time.time() * 1000) - FOLLOW_LOOKBACK_MS
            fresh = await _unseen(engine, page, seen, since_ms)
            _print(fresh, args, header=not seen)
            # Only what a later poll can read again needs remembering: the ids of the lookback window.
            seen = {record_id for record_id in seen if created_ms_of(record_id) >= since_ms}
            seen.update(r["id"] for r in fresh)
    return 0


async def _unseen(engine: AsyncEngine, page: params.Page, seen: set[str], since_ms: int) -> list[dict[str, Any]]:
    """Every record that started since ``since_ms`` and was not printed yet, oldest first: however many came
    since the last poll (reading only the newest ``-n`` lost the rest)."""
    fresh: list[dict[str, Any]] = []
    cursor = None
    for _ in range(FOLLOW_PAGES):
        result = await query.list_logs(engine, replace(page, limit=params.MAX_LIMIT, cursor=cursor))
        fresh += [r for r in result["data"] if r["id"] not in seen and created_ms_of(r["id"]) >= since_ms]
        if result["next_cursor"] is None:
            break
        cursor = params.decode_cursor(result["next_cursor"])
        if cursor[0] < since_ms:
            break
    return fresh[::-1]


async def logs_show(args: argparse.Namespace) -> int:
    async with open_store(settings_from_args(args, store_only=True)) as engine:
        record = await query.get_log(engine, args.id)
    if record is None:
        return fail(f"no request log record {args.id!r}", EXIT_REFUSED)
    print_json(record)
    return 0


def _print(records: list[dict[str, Any]], args: argparse.Namespace, *, header: bool) -> None:
    if wants_json(args):
        for record in records:
            print_json(record)
    elif records:
        print_table(_COLUMNS if header else [""] * len(_COLUMNS), [_cells(r) for r in records])
    print(end="", flush=True)  # following: show each batch as it comes


def _cells(r: dict[str, Any]) -> list[Any]:
    usage = r["usage"]
    tokens = usage["total_tokens"]
    return [
        r["created_at"], r["id"], r["status"], round(r["latency_ms"]), r["provider_slug"] or r["provider"],
        r["model"], f"{tokens}{'~' if usage['estimated'] else ''}" if tokens is not None else None,
        f"{r['cost']:.6f}" if r["cost"] is not None else None, r["user"], r["trace_id"],
    ]
