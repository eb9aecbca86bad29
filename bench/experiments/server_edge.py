"""EXPERIMENT: what the server edge costs on the event loop, with the gateway's own upstream client (h1).

    python -m bench.experiments.server_edge {aiohttp,lean,adapter} --port N

Three minimal hops that differ only in how the request arrives and the answer leaves; each parses the body,
changes one field and forwards it through ``sluicegate.upstream.h1.H1Transport`` (pooled, guarded: loopback
is trusted here) to the origin named by ``x-bench-upstream``, as the floor hops do (bench/floor/common.py):

- ``aiohttp``: aiohttp's web server, as ``sluicegate serve`` runs it (its protocol, Request, Response,
  StreamWriter, Application and router).
- ``lean``: an ``asyncio.Protocol`` that parses requests with llhttp (httptools) and writes each answer with
  one ``transport.write``; no Request or Response objects, no task per request beyond the one handling it.
- ``adapter``: the lean protocol in front of aiohttp's Application: it builds aiohttp's Request from what
  llhttp parsed, runs the Application's handler, and writes the Response through aiohttp's StreamWriter.
  It answers where aiohttp's costs lie: in its protocol, or in its request and response objects.

Non-streamed answers only, keep-alive, no limits or timeouts: enough to price the edges, not a server.
What it measured: docs/transport.md, "Experiment: the server edge on the event loop".
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque

import httptools
import uvloop
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_parser import RawRequestMessage
from aiohttp.http_writer import HttpVersion11, StreamWriter
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bench.floor.common import UPSTREAM_HEADER, is_local, rewrite
from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard
from sluicegate.upstream.h1 import H1Transport
from sluicegate.upstream.policy import GuardPolicy

ANSWER_MAX = 16 * 1024 * 1024
CLIENT: web.AppKey[H1Transport] = web.AppKey("client", H1Transport)


def h1_client() -> H1Transport:
    settings = Settings(trusted_custom_hosts=("127.0.0.1", "localhost"))
    return H1Transport(settings, Guard(GuardPolicy.from_settings(settings)))


async def forward(client: H1Transport, origin: str, path: str, raw: bytes,
                  authorization: str | None) -> tuple[int, bytes, str]:
    """(status, body, content type) of the upstream's answer to the rewritten request."""
    if not is_local(origin):
        return 400, b'{"error": "x-bench-upstream must be a loopback origin"}', "application/json"
    body, _ = rewrite(raw)
    headers = {"content-type": "application/json"}
    if authorization:
        headers["authorization"] = authorization
    answer = await client.send("POST", origin + path, headers, body)
    return answer.status, await answer.read(ANSWER_MAX), answer.content_type or "application/json"


# -- aiohttp's server, and aiohttp's Application behind the lean protocol ----------------------------------

async def aiohttp_hop(request: web.Request) -> web.Response:
    status, body, kind = await forward(request.app[CLIENT], request.headers.get(UPSTREAM_HEADER, ""),
                                       request.path, await request.read(), request.headers.get("authorization"))
    return web.Response(status=status, body=body, headers={"content-type": kind})


def aiohttp_app(client: H1Transport) -> web.Application:
    app = web.Application()
    app.router.add_post("/{tail:.*}", aiohttp_hop)
    app[CLIENT] = client
    return app


# -- the lean protocol ---------------------------------------------------------------------------------------

Parsed = tuple[bytes, list[tuple[bytes, bytes]], bytes, bool, bytes]  # url, headers, body, keep-alive, method


class LeanProtocol(BaseProtocol):
    """HTTP/1.1 parsed by llhttp; requests of one connection handled in order by one task."""

    def __init__(self, loop: asyncio.AbstractEventLoop, handle) -> None:
        super().__init__(loop)
        self._handle = handle
        self._parser = httptools.HttpRequestParser(self)
        self._ready: deque[Parsed] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._url, self._headers, self._body = b"", [], []
        # What aiohttp's Request reads from its protocol (the adapter passes this one).
        self.ssl_context = self.peername = self.sockname = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._task = self._loop.create_task(self._serve())

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self._task is not None:
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", [], []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._ready.append((self._url, self._headers, b"".join(self._body), self._parser.should_keep_alive(),
                            self._parser.get_method()))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _serve(self) -> None:
        while True:
            if not self._ready:
                self._waiter = self._loop.create_future()
                await self._waiter
            parsed = self._ready.popleft()
            await self._handle(self, parsed)
            if not parsed[3]:
                self.transport.close()
                return


def lean_handler(client: H1Transport):
    async def handle(protocol: LeanProtocol, parsed: Parsed) -> None:
        url, raw_headers, body, _, _ = parsed
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw_headers}
        status, answer, kind = await forward(client, headers.get(UPSTREAM_HEADER, ""), url.decode("latin-1"),
                                             body, headers.get("authorization"))
        protocol.transport.write(b"HTTP/1.1 %d \r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
                                 % (status, kind.encode("latin-1"), len(answer), answer))

    return handle


def adapter_handler(app: web.Application):
    async def handle(protocol: LeanProtocol, parsed: Parsed) -> None:
        url, raw_headers, body, keep_alive, method = parsed
        loop = asyncio.get_running_loop()
        headers = CIMultiDictProxy(CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers))
        path = url.decode("latin-1")
        message = RawRequestMessage(method.decode("latin-1"), path, HttpVersion11, headers, tuple(raw_headers),
                                    not keep_alive, None, False, False, URL.build(path=path, encoded=True))
        payload = StreamReader(protocol, 2**16, loop=loop)
        payload.feed_data(body)
        payload.feed_eof()
        writer = StreamWriter(protocol, loop)
        request = app._make_request(message, payload, protocol, writer, asyncio.current_task())
        response = await app._handle(request)
        await response.prepare(request)
        await response.write_eof()

    return handle


async def serve_lean(port: int, handle) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: LeanProtocol(loop, handle), "127.0.0.1", port)
    await server.serve_forever()


async def serve_adapter(port: int) -> None:
    app = aiohttp_app(h1_client())
    app._set_loop(asyncio.get_running_loop())
    app.freeze()
    await serve_lean(port, adapter_handler(app))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("edge", choices=("aiohttp", "lean", "adapter"))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.edge == "aiohttp":
        web.run_app(aiohttp_app(h1_client()), host="127.0.0.1", port=args.port, access_log=None, print=None,
                    loop=uvloop.new_event_loop())
    elif args.edge == "lean":
        uvloop.run(serve_lean(args.port, lean_handler(h1_client())))
    else:
        uvloop.run(serve_adapter(args.port))


if __name__ == "__main__":
    main()
