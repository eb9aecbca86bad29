"""Records and rows for telemetry tests, built the way the routes build them."""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from sluicegate.server.headers import parse_request_headers
from sluicegate.telemetry.pricing import PriceTable
from sluicegate.telemetry.record import RequestRecord
from sluicegate.telemetry.rows import RowBuilder
from sluicegate.types import AttemptRecord, Call, Outcome, public_metadata

_counter = itertools.count()


def builder(cap: int = 64 * 1024, prices: PriceTable | None = None) -> RowBuilder:
    return RowBuilder(prices or PriceTable(), cap, public_metadata)


def record(
    *,
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
    status: int = 200,
    answer: dict[str, Any] | None = None,
    provider: str = "openai",
    attempts: list[AttemptRecord] | None = None,
    started_at: float | None = None,
    log_bodies: bool = True,
) -> RequestRecord:
    """A finished non-stream chat request."""
    sent = {"x-portkey-provider": provider, "x-portkey-custom-host": "http://127.0.0.1:9/v1", **(headers or {})}
    ctx = parse_request_headers(CIMultiDictProxy(CIMultiDict(sent)))
    body = body if body is not None else {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    raw = orjson.dumps(body)
    rec = RequestRecord.begin("POST", "/v1/chat/completions", "chat", log_bodies)
    if started_at is not None:
        rec.started_at = started_at
    rec.ctx = ctx
    rec.call = Call(ctx, "chat", "POST", "", raw, body, stream=False)
    answer = answer if answer is not None else {
        "model": "m-answered", "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
    outcome = Outcome(status, [("content-type", "application/json")], orjson.dumps(answer), provider, "config")
    attempts = attempts if attempts is not None else [
        AttemptRecord("config", provider, "http://127.0.0.1:9/v1", status, 1.5, retry=0)]
    rec.answered(outcome, attempts)
    rec.finish()
    return rec


def entry(created_ms: int | None = None, **overrides: Any):
    """A (row, attempts) pair as the sink hands it to the writer."""
    rec = record(started_at=(created_ms / 1000) if created_ms is not None else time.time() + next(_counter) * 1e-6)
    row, attempts = builder().build(rec)
    row.update(overrides)
    for attempt in attempts:
        attempt["request_id"] = row["id"]
    return row, attempts
