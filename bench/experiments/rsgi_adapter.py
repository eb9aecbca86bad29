"""EXPERIMENT: the thinnest bridge from an RSGI request to what sluicegate's aiohttp handler reads, and back.

Not how the gateway serves (README.md here). The handler, its middleware and aiohttp's ``StreamResponse``
are left as they are; this module gives them a request object with only the attributes they touch:

- the handler (``server/routes.py``): ``app``, ``method``, ``path``, ``headers``, ``request[TRACE_ID]``,
  ``content_type``; ``server/bodies.py``: ``content_length``, ``content.is_eof()``/``read_nowait()``,
  ``read()``, ``content.iter_any()``;
- the edge middleware (``server/middleware.py``): ``transport`` (None: no guarded connection, so no
  drain tracking), ``raw_path``, ``request.get(TRACE_ID)``;
- ``StreamResponse.prepare`` (streams only): ``_payload_writer``, ``version``, ``keep_alive``,
  ``_prepare_hook``; the writer below turns aiohttp's head and writes into ``proto.response_stream`` and
  ``send_bytes``.

The body is read whole (``await proto()``) before the handler runs: granian has no body limit of its own,
so this is unbounded until the handler's own check (see the gaps in docs/transport.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http import HttpVersion11
from multidict import CIMultiDict, CIMultiDictProxy

Handler = Callable[[Any], Awaitable[web.StreamResponse]]
# aiohttp's framing of a streamed head; granian frames the body itself (chunked when no length is given).
_FRAMING = frozenset({"transfer-encoding", "content-length", "connection"})


class _Body:
    """The request body, already received whole: what ``server/bodies.py`` reads of ``request.content``."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def is_eof(self) -> bool:
        return True

    def read_nowait(self) -> bytes:
        return self._data

    async def iter_any(self) -> AsyncIterator[bytes]:
        if self._data:
            yield self._data


class StreamWriter:
    """aiohttp's payload writer, as far as ``StreamResponse`` drives it, over an RSGI stream."""

    __slots__ = ("_headers", "_proto", "_status", "_transport", "length", "output_size")

    buffer_size = 0

    def __init__(self, proto: Any) -> None:
        self._proto = proto
        self._transport: Any = None
        self._status = 200
        self._headers: list[tuple[str, str]] = []
        self.length: int | None = None
        self.output_size = 0

    @property
    def started(self) -> bool:
        return self._transport is not None

    def enable_chunking(self) -> None:
        pass  # granian chunks a stream without a length itself

    async def write_headers(self, status_line: str, headers: CIMultiDict[str]) -> None:
        self._status = int(status_line.split(" ", 2)[1])
        self._headers = [(name, value) for name, value in headers.items() if name.lower() not in _FRAMING]

    def send_headers(self) -> None:
        if self._transport is None:
            self._transport = self._proto.response_stream(self._status, self._headers)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self.send_headers()
        self.output_size += len(data)
        await self._transport.send_bytes(bytes(data))

    async def write_eof(self, data: bytes = b"") -> None:
        if data:
            await self.write(data)
        self.send_headers()

    async def drain(self) -> None:
        pass


class RsgiRequest:
    """One RSGI request, dressed as much of an ``aiohttp.web.Request`` as the gateway's route reads."""

    __slots__ = ("_body", "_payload_writer", "_state", "app", "content", "headers", "method", "path", "raw_path")

    transport = None
    version = HttpVersion11
    keep_alive = True

    def __init__(self, app: web.Application, scope: Any, body: bytes, proto: Any) -> None:
        self.app = app
        self.method: str = scope.method
        self.path: str = scope.path  # decoded by granian: the raw path is not available (docs/transport.md)
        query = scope.query_string
        self.raw_path = f"{self.path}?{query}" if query else self.path
        self.headers = CIMultiDictProxy(CIMultiDict(scope.headers.items()))
        self._body = body
        self.content = _Body(body)
        self._state: dict[Any, Any] = {}
        self._payload_writer = StreamWriter(proto)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._state[key] = value

    def __getitem__(self, key: Any) -> Any:
        return self._state[key]

    def get(self, key: Any, default: Any = None) -> Any:
        return self._state.get(key, default)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    async def read(self) -> bytes:
        return self._body

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        pass  # aiohttp's on_response_prepare signals: the gateway registers none


async def serve(handler: Handler, app: web.Application, scope: Any, proto: Any, *, watch: bool = True) -> None:
    """Run ``handler`` (the route with its middleware) for one RSGI request and answer with what it returns.

    ``watch``: a client that leaves cancels the handler, as aiohttp's ``handler_cancellation`` does (serve.py),
    so the request log records a 499 and the upstream call is dropped; off, the handler runs to its end and a
    stream's next write fails instead.
    """
    request = RsgiRequest(app, scope, await proto(), proto)
    if watch:
        response = await _cancelled_when_gone(handler(request), proto)
        if response is None:
            return
    else:
        response = await handler(request)
    writer = request._payload_writer
    if writer.started:  # a stream: relay_stream already wrote it through the writer
        return
    body = response.body if isinstance(response, web.Response) else b""
    proto.response_bytes(response.status, list(response.headers.items()), body or b"")


async def _cancelled_when_gone(answer: Awaitable[web.StreamResponse], proto: Any) -> web.StreamResponse | None:
    """``answer``, run in this task, cancelled if the client disconnects first (RSGI's ``client_disconnect``);
    None then: nobody is left to answer."""
    task = asyncio.current_task()
    assert task is not None
    gone = asyncio.ensure_future(proto.client_disconnect())
    gone.add_done_callback(lambda done: None if done.cancelled() else task.cancel())
    try:
        return await answer
    except asyncio.CancelledError:
        if gone.done() and not gone.cancelled() and task.uncancel() == 0:
            return None
        raise
    finally:
        gone.cancel()  # on keep-alive the connection outlives the request: stop watching it
