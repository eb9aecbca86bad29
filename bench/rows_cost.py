"""What a request's log rows cost, per kind of record, in µs: on the request path (telemetry/rows.py
RowBuilder.draft_line, then the journal's append), before the answer's last bytes, and after it (finish, in
the sink's drain task).

    .venv/bin/python -m bench.rows_cost                 # µs per row, per kind (best of 60 runs of N builds)
    .venv/bin/python -m bench.rows_cost --profile chat  # cProfile of one kind (both steps), the top functions

The records are built the way the routes build them: headers parsed by the server's parser (an OpenAI SDK's
~15 headers with a bearer key), a ~1 KB chat body parsed once, an upstream request with its credential,
a JSON answer with usage, or a stream of 50 chunks seen through the StreamTap
(with a usage chunk at its end, or without: its usage is then estimated). Not a test: figures only.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from sluicegate.server.headers import parse_request_headers
from sluicegate.telemetry.journal import Journal
from sluicegate.telemetry.pricing import PriceTable
from sluicegate.telemetry.record import RequestRecord
from sluicegate.telemetry.rows import RowBuilder
from sluicegate.types import AttemptRecord, Call, Outcome, Prepared, public_metadata

KEY = "sk-proj-" + "A1b2C3d4" * 6
CHUNKS = 50


def _headers(metadata: bool) -> dict[str, str]:
    headers = {
        "host": "127.0.0.1:8787", "accept-encoding": "gzip, deflate", "connection": "keep-alive",
        "accept": "application/json", "content-type": "application/json", "user-agent": "OpenAI/Python 1.82.0",
        "x-stainless-lang": "python", "x-stainless-package-version": "1.82.0", "x-stainless-os": "Linux",
        "x-stainless-arch": "x64", "x-stainless-runtime": "CPython", "x-stainless-runtime-version": "3.12.3",
        "authorization": f"Bearer {KEY}", "x-stainless-async": "false", "x-stainless-retry-count": "0",
        "x-portkey-provider": "openai", "x-portkey-custom-host": "http://127.0.0.1:9000/v1",
        "content-length": "1024",
    }
    if metadata:
        headers["x-portkey-metadata"] = '{"team": "search", "env": "prod", "_user": "alice"}'
        headers["x-portkey-trace-id"] = "trace-0123456789"
    return headers


def _body(stream: bool) -> dict[str, Any]:
    text = "Summarise the following passage in three sentences, keeping every figure it gives. " * 9
    return {"model": "llama-3.1-8b", "stream": stream, "temperature": 0.2, "max_tokens": 256,
            "messages": [{"role": "system", "content": "You are a careful assistant."},
                         {"role": "user", "content": text}]}


def _sent(body: bytes) -> Prepared:
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json",
               "accept": "application/json", "user-agent": "OpenAI/Python 1.82.0"}
    return Prepared("openai", None, "POST", "http://127.0.0.1:9000/v1/chat/completions",  # type: ignore[arg-type]
                    "http://127.0.0.1:9000/v1", headers, body, None, True)


def _answer() -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-0123456789", "object": "chat.completion", "created": 1700000000, "model": "llama-3.1-8b",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "A short answer in three sentences. " * 6}}],
        "usage": {"prompt_tokens": 212, "completion_tokens": 48, "total_tokens": 260}})


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {"id": "chatcmpl-0123456789", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "llama-3.1-8b", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def record(*, stream: bool, metadata: bool, log_bodies: bool = True, usage: bool = True) -> RequestRecord:
    ctx = parse_request_headers(CIMultiDictProxy(CIMultiDict(_headers(metadata))))
    parsed = _body(stream)
    raw = orjson.dumps(parsed)
    rec = RequestRecord.begin("POST", "/v1/chat/completions", "chat", log_bodies)
    rec.ctx = ctx
    rec.call = Call(ctx, "chat", "POST", "", raw, parsed, stream=stream)
    attempt = AttemptRecord("config", "openai", "http://127.0.0.1:9000/v1", 200, 2.5, retry=0, sent=_sent(raw))
    headers = [("date", "Wed, 02 Dec 2026 16:00:00 GMT"), ("server", "uvicorn"), ("content-length", "612"),
               ("content-type", "text/event-stream" if stream else "application/json"),
               ("x-request-id", "req-0123456789"), ("openai-processing-ms", "212")]
    if not stream:
        rec.answered(Outcome(200, headers, _answer(), "openai", "config"), [attempt])
        rec.finish()
        return rec
    head = _event({**_chunk(None), "choices": [{"index": 0, "delta": {"role": "assistant"}}]}) + _event(_chunk("A"))
    rec.answered(Outcome(200, headers, head, "openai", "config"), [attempt])
    tap = rec.tap_stream(head, 64 * 1024)
    for n in range(CHUNKS - 3):
        tap.feed(_event(_chunk(f" word{n}")))
    tap.feed(_event(_chunk(None, "stop")))
    if usage:  # an OpenAI-style server sends it when asked (stream_options); many private servers never do
        tap.feed(_event({**_chunk(None), "choices": [],
                         "usage": {"prompt_tokens": 212, "completion_tokens": 48, "total_tokens": 260}}))
    tap.feed(b"data: [DONE]\n\n")
    rec.finish()
    return rec


KINDS: dict[str, Callable[[], RequestRecord]] = {
    "chat": lambda: record(stream=False, metadata=False),
    "chat+metadata": lambda: record(stream=False, metadata=True),
    "stream": lambda: record(stream=True, metadata=False),
    "stream+metadata": lambda: record(stream=True, metadata=True),
    "stream, no usage": lambda: record(stream=True, metadata=False, usage=False),
    "chat, no bodies": lambda: record(stream=False, metadata=True, log_bodies=False),
}


def builder() -> RowBuilder:
    return RowBuilder(PriceTable(), 64 * 1024, public_metadata)


def measure(number: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal")
        journal.open()
        for kind, make in KINDS.items():
            rec, rows = make(), builder()
            draft, line = rows.draft_line(rec)
            draft_us = _per_call(partial(rows.draft_line, rec), number)
            append_us = _per_call(partial(journal.append, line), number)
            finish_us = _per_call(partial(rows.finish, draft), number)  # in place: the same columns again
            print(f"{kind:18} request path: draft {draft_us:5.1f} µs + journal append {append_us:4.1f} µs   "
                  f"off it: finish {finish_us:5.1f} µs   line {len(line or b'')} B")
        journal.close()


def _per_call(call: Callable[[], object], number: int) -> float:
    """µs per call, best of 60 runs (the least disturbed by the rest of the machine)."""
    return min(timeit.repeat(call, number=number, repeat=60)) / number * 1e6


def profile(kind: str, number: int) -> None:
    rec, build = KINDS[kind](), builder().build
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(number):
        build(rec)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--profile", choices=list(KINDS))
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.number)
    else:
        measure(args.number)


if __name__ == "__main__":
    main()
