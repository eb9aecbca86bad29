"""Minimal hop: granian's RSGI server + pyreqwest's client + orjson (the fastest pair in issue 14).

    python -m granian --interface rsgi --host 127.0.0.1 --port N bench.floor.granian_pyreqwest:app
"""

from __future__ import annotations

from pyreqwest.client import Client, ClientBuilder

from bench.floor.common import FORWARDED, UPSTREAM_HEADER, is_local, rewrite

JSON = [("content-type", "application/json")]


def build_client() -> Client:
    """Pooled keep-alive HTTP/1.1, no redirects, no proxy from the environment, bytes relayed as they come."""
    builder = ClientBuilder().follow_redirects(False).no_proxy().http1_only()
    return builder.gzip(False).brotli(False).zstd(False).deflate(False).build()


class Hop:
    """An RSGI application; the client is built on the first request, inside the worker's event loop."""

    def __init__(self) -> None:
        self.client: Client | None = None

    async def __rsgi__(self, scope, proto) -> None:
        headers = scope.headers
        origin = headers.get(UPSTREAM_HEADER, "")
        if not is_local(origin):
            proto.response_bytes(400, JSON, b'{"error":"x-bench-upstream must be a loopback origin"}')
            return
        body, stream = rewrite(await proto())
        self.client = self.client or build_client()
        request = self.client.post(origin + scope.path).body_bytes(body)
        request = request.headers({name: headers.get(name) for name in FORWARDED if name in headers})
        if not stream:
            answer = await request.build().send()
            proto.response_bytes(answer.status, _relayed(answer), bytes(await answer.bytes()))
            return
        # pyreqwest hands the body over in batches of `streamed_read_buffer_limit` bytes (64 KiB by default),
        # and returns the head only once the first batch is full: 1 byte means "every chunk as it arrives".
        async with request.streamed_read_buffer_limit(1).build_streamed() as answer:
            transport = proto.response_stream(answer.status, _relayed(answer))
            reader = answer.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                await transport.send_bytes(bytes(chunk))  # awaits the client's socket: backpressure


def _relayed(answer) -> list[tuple[str, str]]:
    return [("content-type", answer.get_header("content-type") or "application/octet-stream")]


app = Hop()
