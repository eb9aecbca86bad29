"""A paced SSE upstream speaking OpenAI's chat-completions stream, for the streaming scenarios.

The pacing rides in the model name, so one process serves every shape and the gateways forward it
untouched: `sse-64x20` sends 64 chunks 20 ms apart. Each chunk's content carries the upstream's
CLOCK_MONOTONIC send time (`t=<ns>`), which every process on the machine shares, so the client can
compute each chunk's one-way delay through the hop without guessing.

Run: python -m bench.sse_upstream --port P
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import time

from aiohttp import web

MODEL_SHAPE = re.compile(r"sse-(\d+)x(\d+)")
MAX_CHUNKS = 10_000  # a bound, so a typo in a model name cannot stream forever


def shape_of(model: str) -> tuple[int, float]:
    """(chunks, interval in seconds) from a model name like `sse-64x20`; a short default otherwise."""
    match = MODEL_SHAPE.search(model or "")
    if not match:
        return 8, 0.02
    return min(int(match.group(1)), MAX_CHUNKS), int(match.group(2)) / 1000.0


def chunk_bytes(model: str, index: int, finish: bool) -> bytes:
    delta = '{"role":"assistant","content":"' if index == 0 else '{"content":"'
    reason = '"stop"' if finish else "null"
    # Hand-built: the timestamp must be taken as late as possible, and this is one cheap format.
    return (
        'data: {"id":"chatcmpl-sse","object":"chat.completion.chunk","created":1700000000,'
        f'"model":"{model}","choices":[{{"index":0,"delta":{delta}t={time.monotonic_ns()} "}},'
        f'"logprobs":null,"finish_reason":{reason}}}]}}\n\n'
    ).encode()


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    model = str(body.get("model", ""))
    if not body.get("stream"):
        return web.json_response({"id": "chatcmpl-sse", "object": "chat.completion", "model": model,
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                               "finish_reason": "stop"}]})
    chunks, interval = shape_of(model)
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await response.prepare(request)
    _nodelay(request)
    start = time.monotonic()
    for index in range(chunks):
        # Absolute schedule: a late wake-up does not push every later chunk back.
        await asyncio.sleep(max(0.0, start + index * interval - time.monotonic()))
        await response.write(chunk_bytes(model, index, finish=index == chunks - 1))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def _nodelay(request: web.Request) -> None:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/{prefix:.*}/v1/chat/completions", chat_completions)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    web.run_app(build_app(), host="127.0.0.1", port=args.port, access_log=None, print=None,
                backlog=4096)


if __name__ == "__main__":
    main()
