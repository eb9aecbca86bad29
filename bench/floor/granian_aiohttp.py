"""Minimal hop: granian's RSGI server + aiohttp's client + orjson.

    python -m granian --interface rsgi --host 127.0.0.1 --port N bench.floor.granian_aiohttp:app
"""

from __future__ import annotations

import aiohttp

from bench.floor.common import FORWARDED, UPSTREAM_HEADER, is_local, rewrite

JSON = [("content-type", "application/json")]


def build_session() -> aiohttp.ClientSession:
    """Pooled keep-alive, no redirects (per request), no decompression: the upstream's bytes are relayed."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)  # no pool cap: the memory scenario
    return aiohttp.ClientSession(connector=connector, auto_decompress=False, skip_auto_headers=("user-agent",))


class Hop:
    """An RSGI application; the session is built on the first request, inside the worker's event loop."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    async def __rsgi__(self, scope, proto) -> None:
        headers = scope.headers
        origin = headers.get(UPSTREAM_HEADER, "")
        if not is_local(origin):
            proto.response_bytes(400, JSON, b'{"error":"x-bench-upstream must be a loopback origin"}')
            return
        body, stream = rewrite(await proto())
        self.session = self.session or build_session()
        forwarded = {name: headers.get(name) for name in FORWARDED if name in headers}
        async with self.session.post(origin + scope.path, data=body, headers=forwarded,
                                     allow_redirects=False) as answer:
            relayed = [("content-type", answer.headers.get("content-type", "application/octet-stream"))]
            if not stream:
                proto.response_bytes(answer.status, relayed, await answer.read())
                return
            transport = proto.response_stream(answer.status, relayed)
            async for chunk in answer.content.iter_any():
                await transport.send_bytes(chunk)  # awaits the client's socket: backpressure


app = Hop()
