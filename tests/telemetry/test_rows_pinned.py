"""Every column of the rows built for a table of records, pinned: a change made to build them faster must
store exactly what was stored before.

``rows_pinned.json`` was written by the row builder as it was before its costs were cut (rows.py, usage.py,
redact.py at the merge of the write-ahead journal); regenerate it only for a change meant to alter stored
values (``SLUICEGATE_PIN_ROWS=write``), and say so in the commit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from sluicegate.providers.contract import MeasuredUsage
from sluicegate.server.headers import parse_request_headers
from sluicegate.telemetry.pricing import PriceTable
from sluicegate.telemetry.record import RequestRecord
from sluicegate.telemetry.rows import RowBuilder
from sluicegate.types import AttemptRecord, Call, Outcome, Prepared, public_metadata

PINNED = Path(__file__).with_name("rows_pinned.json")
KEY = "sk-proj-pinned-0123456789abcdef"
STARTED_AT = 1_790_000_000.25


def _sse(*payloads: Any) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, bytes) else orjson.dumps(p)) + b"\n\n" for p in payloads)


def _chunk(content: str | None = None, *, role: str | None = None, finish: str | None = None,
           usage: dict | None = None, model: str = "m-answered") -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    chunk: dict[str, Any] = {"id": "c-1", "model": model,
                             "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        chunk["usage"] = usage
    return chunk


USAGE = {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30}


def _record(*, headers: dict[str, str] | None = None, body: Any = None, raw: bytes | None = None,
            stream: bool = False, status: int = 200, answer: bytes | None = None,
            content_type: str = "application/json", chunks: list[bytes] | None = None, head: bytes = b"",
            sent: dict[str, str] | None = None, url: str = "http://127.0.0.1:9/v1/chat/completions",
            log_bodies: bool = True, measured: MeasuredUsage | None = None, attempts: int = 1,
            error: tuple[str, str] | None = None, capture: int = 64 * 1024) -> RequestRecord:
    sent_headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": "http://127.0.0.1:9/v1",
                    "authorization": f"Bearer {KEY}", "content-type": "application/json",
                    "user-agent": "OpenAI/Python 1.82.0", "x-stainless-os": "Linux",
                    "x-portkey-trace-id": "trace-pinned", **(headers or {})}
    ctx = parse_request_headers(CIMultiDictProxy(CIMultiDict(sent_headers)))
    if body is None and raw is None:
        body = {"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hello there " * 20}]}
    raw = raw if raw is not None else orjson.dumps(body)
    rec = RequestRecord.begin("POST", "/v1/chat/completions", "chat", log_bodies)
    rec.started_at = STARTED_AT
    rec.ctx = ctx
    rec.call = Call(ctx, "chat", "POST", "", raw, body if isinstance(body, dict) else None, stream=stream)
    prepared = Prepared("openai", None, "POST", url, "http://127.0.0.1:9/v1",  # type: ignore[arg-type]
                        sent if sent is not None else {"authorization": f"Bearer {KEY}",
                                                       "content-type": "application/json"}, raw, None, True)
    tries = [AttemptRecord(f"config.targets[{n}]", "openai", f"http://127.0.0.1:9/v1?n={n}",
                           500 if n < attempts - 1 else status, 1.25 + n, retry=n,
                           error=f"failed with {KEY}" if n < attempts - 1 else None, sent=prepared)
             for n in range(attempts)]
    outcome = Outcome(status, [("content-type", content_type)], head if stream else answer, "openai", "config",
                      measured=measured)
    rec.answered(outcome, tries)
    if stream:
        tap = rec.tap_stream(head, capture)
        for piece in chunks or ():
            tap.feed(piece)
    if error is not None:
        rec.error_type, rec.error_message = error
    rec.finish()
    rec.latency_ms, rec.ttfb_ms = 12.3456, 3.21
    return rec


def _answer(**extra: Any) -> bytes:
    return orjson.dumps({"id": "r-1", "model": "m-answered", "usage": USAGE,
                         "choices": [{"message": {"role": "assistant", "content": "an answer"}}], **extra})


def _long_stream(n: int, *, usage: bool) -> tuple[bytes, list[bytes]]:
    head = _sse(_chunk(role="assistant", content=""), _chunk("A"))
    chunks = [_sse(_chunk(f" w{i}")) for i in range(n)] + [_sse(_chunk(finish="stop"))]
    if usage:
        chunks.append(_sse(_chunk(usage=USAGE)))
    chunks.append(b"data: [DONE]\n\n")
    return head, chunks


def records() -> dict[str, RequestRecord]:
    long_head, long_chunks = _long_stream(50, usage=True)
    bare_head, bare_chunks = _long_stream(50, usage=False)
    short_head, short_chunks = _long_stream(1, usage=False)
    split = b"".join(bare_chunks)
    anthropic = (b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-x",'
                 b'"usage":{"input_tokens":20,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n')
    return {
        "chat": _record(answer=_answer()),
        "chat with metadata and trace": _record(
            headers={"x-portkey-metadata": '{"team": "a", "n": 5, "_user": "bob"}', "x-portkey-trace-id": "t-1",
                     "x-portkey-span-id": "s-1", "x-portkey-span-name": "n" * 300},
            answer=_answer()),
        "chat, user from the body": _record(body={"model": "m", "user": "alice", "messages": []}, answer=_answer()),
        "chat, bodies off": _record(answer=_answer(), log_bodies=False),
        "chat, debug false": _record(headers={"x-portkey-debug": "false"}, answer=_answer()),
        "chat, echoed secrets": _record(
            headers={"x-org-token": "forwarded-org-secret", "x-portkey-forward-headers": "x-org-token",
                     "x-portkey-metadata": '{"note": "forwarded-org-secret"}'},
            body={"model": "m", "messages": [{"role": "user", "content": f"my key is {KEY}"}]},
            status=401, answer=orjson.dumps({"error": {"message": f"bad key {KEY} / Bearer {KEY}",
                                                         "type": "invalid_request_error"}}),
            sent={"authorization": f"Bearer {KEY}", "x-tenant": "tenant-secret-0c9d2e71",
                  "x-stainless-retry-count": "0", "accept": "application/json"},
            url="http://127.0.0.1:9/v1/chat/completions?key=query-key-secret-5a17be&api_key=k2-secret-value"),
        "chat, error as text": _record(status=502, answer=orjson.dumps({"error": "upstream broke", "message": "x"})),
        "chat, message only": _record(status=500, answer=orjson.dumps({"message": "no such model"})),
        "chat, not json": _record(answer=b"<html>oops</html>", content_type="text/html", status=502),
        "chat, binary": _record(answer=b"\x89PNG\x00\x01", content_type="image/png"),
        "chat, nul and surrogates": _record(
            body={"model": "m", "messages": [{"content": "nul\x00 é" * 10}]},
            headers={"x-portkey-metadata": '{"odd": "a\\u0000b"}'},
            answer=_answer(note="\x00 and é")[:-1] + b', "cut": "\xed\xa0\x80 \xc3"}', status=502,
            error=("upstream_error", "lone \udcff surrogate")),
        "chat, measured": _record(answer=_answer(), measured=MeasuredUsage(7, 8, estimated=True)),
        "chat, retried": _record(answer=_answer(), attempts=3),
        "chat, cut body": _record(answer=_answer(), body={"model": "m", "messages": [{"content": "é" * 40}]}),
        "chat, gateway error": _record(status=400, answer=b"", error=("invalid_body", f"bad {KEY}")),
        "stream with usage": _record(stream=True, head=long_head, chunks=long_chunks,
                                     content_type="text/event-stream"),
        "stream without usage": _record(stream=True, head=bare_head, chunks=bare_chunks,
                                        content_type="text/event-stream"),
        "stream, short": _record(stream=True, head=short_head, chunks=short_chunks,
                                 content_type="text/event-stream"),
        "stream, ended in its head": _record(stream=True, head=_sse(_chunk("x"), _chunk(usage=USAGE)) + b"data: [DONE]\n\n",
                                             content_type="text/event-stream"),
        "stream, tail cut mid-event": _record(stream=True, head=bare_head,
                                              chunks=[split[i:i + 97] for i in range(0, len(split), 97)],
                                              content_type="text/event-stream"),
        "stream, capture cut": _record(stream=True, head=long_head, chunks=long_chunks, capture=300,
                                       content_type="text/event-stream"),
        "stream, anthropic": _record(
            stream=True, head=anthropic, content_type="text/event-stream",
            chunks=[b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"hi"}}\n\n',
                    b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":7}}\n\n',
                    b'event: message_stop\ndata: {"type":"message_stop"}\n\n']),
        "stream, failed": _record(stream=True, status=500, head=b"", chunks=[], content_type="text/event-stream",
                                  error=("upstream_stream_error", "cut")),
        "stream, junk events": _record(stream=True, head=_sse(b"not json", b"[1]"),
                                       chunks=[_sse(b"{bad", b"5", _chunk("x")), b": ping\n\n", b"data: [DONE]\n\n"],
                                       content_type="text/event-stream"),
    }


def built(replayed: bool = False) -> dict[str, Any]:
    """The rows of each record, finished from its draft (``replayed``: from the draft's journal line, as a
    replay after a crash finishes it, in a builder that never saw the record)."""
    builder = RowBuilder(PriceTable(), 200, public_metadata)
    out: dict[str, Any] = {}
    for name, rec in records().items():
        draft, line = builder.draft_line(rec)
        assert line is not None
        if replayed:
            row, attempts = RowBuilder(PriceTable(), 200, public_metadata).finish(orjson.loads(line))
        else:
            row, attempts = builder.finish(draft)
        assert len(row["id"]) == 32 and int(row["id"][:12], 16) == row["created_ms"]
        assert all(a["request_id"] == row["id"] for a in attempts)
        row = {**row, "id": "<id>"}
        out[name] = [row, [{**a, "request_id": "<id>"} for a in attempts]]
    return out


@pytest.mark.parametrize("replayed", [False, True], ids=["live", "replayed"])
def test_rows_are_what_they_were(replayed):
    rows = built(replayed)
    if os.environ.get("SLUICEGATE_PIN_ROWS") == "write":
        PINNED.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    pinned = orjson.loads(PINNED.read_bytes())
    assert sorted(rows) == sorted(pinned)
    for name, (row, attempts) in rows.items():
        assert orjson.loads(orjson.dumps(row)) == pinned[name][0], name
        assert orjson.loads(orjson.dumps(attempts)) == pinned[name][1], name


@pytest.mark.parametrize("name", ["chat, echoed secrets", "stream with usage"])
def test_the_pinned_rows_hold_no_secret(name):
    text = orjson.dumps(orjson.loads(PINNED.read_bytes())[name]).decode()
    for secret in (KEY, "forwarded-org-secret", "tenant-secret-0c9d2e71", "query-key-secret-5a17be"):
        assert secret not in text
