"""Minimal hop: granian's ASGI server + pyreqwest's client + orjson.

The same work as granian_pyreqwest.py through granian's ASGI interface instead of RSGI: ASGI bounds
a streamed response's queue (backpressure) and carries the raw path, RSGI does neither in granian 2.8
(docs/transport.md); this row shows what that costs.

    python -m granian --interface asgi --host 127.0.0.1 --port N bench.floor.granian_asgi_pyreqwest:app
"""

from __future__ import annotations

from pyreqwest.client import Client

from bench.floor.common import FORWARDED, UPSTREAM_HEADER, is_local, rewrite
from bench.floor.granian_pyreqwest import build_client

WANTED = {name.encode(): name for name in (UPSTREAM_HEADER, *FORWARDED)}
BAD_ORIGIN = b'{"error":"x-bench-upstream must be a loopback origin"}'


async def _body(receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


class Hop:
    """An ASGI application; the client is built on the first request, inside the worker's event loop."""

    def __init__(self) -> None:
        self.client: Client | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets: nothing to set up, nothing served
        headers = {WANTED[k]: v.decode() for k, v in scope["headers"] if k in WANTED}
        origin = headers.pop(UPSTREAM_HEADER, "")
        if not is_local(origin):
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": BAD_ORIGIN})
            return
        body, stream = rewrite(await _body(receive))
        self.client = self.client or build_client()
        request = self.client.post(origin + scope["path"]).body_bytes(body).headers(headers)
        if not stream:
            answer = await request.build().send()
            await send({"type": "http.response.start", "status": answer.status, "headers": _relayed(answer)})
            await send({"type": "http.response.body", "body": bytes(await answer.bytes())})
            return
        async with request.streamed_read_buffer_limit(1).build_streamed() as answer:  # see granian_pyreqwest.py
            await send({"type": "http.response.start", "status": answer.status, "headers": _relayed(answer)})
            reader = answer.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def _relayed(answer) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", (answer.get_header("content-type") or "application/octet-stream").encode())]


app = Hop()
