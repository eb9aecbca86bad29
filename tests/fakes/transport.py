"""An in-process upstream for the core: a ``Transport`` (src/sluicegate/upstream/transport.py) that answers
from a Python function instead of the network, like httpx's MockTransport.

The dispatcher, prepare, exchange, the pipeline and the routes run unchanged on top of it, so their
behaviour is tested in milliseconds; the end-to-end tests (tests/e2e) keep driving a real process.
Nothing here opens a socket.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from multidict import CIMultiDict

from sluicegate.upstream.transport import BodyBroken, BodyTooLarge, TransportError


@dataclass
class Sent:
    """One request as the gateway sent it."""

    method: str
    url: str
    headers: CIMultiDict[str]
    body: bytes | None

    def json(self) -> Any:
        return orjson.loads(self.body or b"null")


@dataclass
class FakeResponse:
    """An answer. ``chunks``: the body as it arrives; an exception among them is raised when reached, a
    ``float`` is a pause in seconds (through the real ``asyncio.sleep``: keep them short)."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("content-type", "application/json")])
    chunks: list[Any] = field(default_factory=list)
    closed: bool = False
    read_to_end: bool = False

    @property
    def content_type(self) -> str:
        value = CIMultiDict(self.headers).get("content-type", "application/octet-stream")
        return value.split(";")[0].strip().lower()

    async def read(self, limit: int = 1 << 62) -> bytes:
        parts, size = [], 0
        while chunk := await self.read_chunk():
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                self.close()
                raise BodyTooLarge(f"larger than {limit} bytes")
        return b"".join(parts)

    async def read_chunk(self) -> bytes:
        while self.chunks:
            item = self.chunks.pop(0)
            if isinstance(item, float):
                await asyncio.sleep(item)
                continue
            if isinstance(item, BaseException):
                raise item
            return item
        self.read_to_end = True
        return b""

    def close(self) -> None:
        self.closed = True


Handler = Callable[[Sent], "FakeResponse | BaseException | Awaitable[FakeResponse]"]


class FakeTransport:
    """Answers each request with ``handler(sent)`` (a response, an exception to raise, or a coroutine), or
    with the next of ``script`` when no handler is given. ``sent`` records every request in order."""

    def __init__(self, handler: Handler | None = None, *, script: Iterable[Any] = ()) -> None:
        self._handler = handler
        self._script = list(script)
        self.sent: list[Sent] = []
        self.responses: list[FakeResponse] = []
        self.closed = False

    async def send(self, method: str, url: str, headers: Any, body: bytes | None) -> FakeResponse:
        sent = Sent(method, url, CIMultiDict(headers), body)
        self.sent.append(sent)
        result: Any = self._handler(sent) if self._handler is not None else self._script.pop(0)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, BaseException):
            raise result
        self.responses.append(result)
        return result

    async def close(self) -> None:
        self.closed = True


# ------------------------------------------------------------------------------------------------ answers


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> FakeResponse:
    items = [("content-type", "application/json"), *(headers or {}).items()]
    return FakeResponse(status, items, [orjson.dumps(body)])


def chat_completion(text: str = "hi", model: str = "fake-model") -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def sse_event(data: Any) -> bytes:
    return b"data: " + (data if isinstance(data, bytes) else orjson.dumps(data)) + b"\n\n"


def content_chunk(text: str) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}


def sse_response(*chunks: Any, status: int = 200) -> FakeResponse:
    """An event stream; each chunk: a dict (one JSON event), bytes (as is), "[DONE]", or an exception."""
    body: list[Any] = []
    for chunk in chunks:
        if isinstance(chunk, dict):
            body.append(sse_event(chunk))
        elif chunk == "[DONE]":
            body.append(b"data: [DONE]\n\n")
        else:
            body.append(chunk)
    return FakeResponse(status, [("content-type", "text/event-stream")], body)


def refused() -> TransportError:
    return TransportError("ClientConnectorError", connect_reason="Connection refused")


def broken_body() -> BodyBroken:
    return BodyBroken("ClientPayloadError")
