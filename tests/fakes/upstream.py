"""A scripted OpenAI-compatible upstream: a real aiohttp server on 127.0.0.1, in its own thread.

It records every request it receives and answers from a script of ``Reply`` objects (first in, first
out); with an empty script it answers like a small chat model, echoing the last user message. Running in
a thread with its own loop lets synchronous SDK clients in the test call the gateway, which calls it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict


@dataclass
class Reply:
    status: int = 200
    json: Any = None  # body as JSON; None (and no body, no stream): the default model answer
    body: bytes | None = None  # raw body (wins over json)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the response headers
    stream: list[Any] | None = None  # SSE events: dicts (JSON data), bytes (raw event), "[DONE]"
    chunk_interval: float = 0.0
    drop_after: int | None = None  # stream: close the connection after this many events, no [DONE]
    content_type: str | None = None


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: CIMultiDict[str]  # case-insensitive, as HTTP header names are
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def chat_answer(request_body: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    messages = request_body.get("messages") or [{}]
    content = text if text is not None else f"echo: {messages[-1].get('content', '')}"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request_body.get("model", "fake-model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        "system_fingerprint": "fake-upstream",  # an extra field the client must still see
    }


def chat_chunks(text: str, model: str = "fake-model", usage: bool = True) -> list[Any]:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model}
    chunks: list[Any] = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    for word in text.split(" "):
        chunks.append({**base, "choices": [{"index": 0, "delta": {"content": word + " "}}]})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        chunks.append({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
    chunks.append("[DONE]")
    return chunks


class FakeUpstream:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.aborted_streams = 0  # streams whose client (the gateway) went away before the end
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- control (called from the test thread) -----------------------------------------------------

    def start(self) -> FakeUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1(self) -> str:
        return f"{self.base_url}/v1"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.received.clear()
            self.aborted_streams = 0

    @property
    def last(self) -> Received:
        return self.received[-1]

    # -- server (runs in the fake's own loop) ------------------------------------------------------

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            self.received.append(
                Received(request.method, request.path, request.raw_path.partition("?")[2], CIMultiDict(request.headers), body)
            )
            reply = self._script.popleft() if self._script else None
        if reply is None or (reply.json is None and reply.body is None and reply.stream is None):
            default = self._default_reply(request, body)
            reply = default if reply is None else replace(
                reply, json=default.json, stream=default.stream, content_type=reply.content_type
            )
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.stream is not None:
            return await self._stream(request, reply)
        payload = reply.body if reply.body is not None else orjson.dumps(reply.json)
        return web.Response(
            status=reply.status, body=payload, headers=reply.headers,
            content_type=reply.content_type or "application/json",
        )

    def _default_reply(self, request: web.Request, body: bytes) -> Reply:
        try:
            parsed = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            parsed = {}
        if isinstance(parsed, dict) and parsed.get("stream") is True:
            last = (parsed.get("messages") or [{}])[-1].get("content", "")
            return Reply(stream=chat_chunks(f"echo: {last}", parsed.get("model", "fake-model")))
        if request.path.endswith("/chat/completions"):
            return Reply(json=chat_answer(parsed))
        return Reply(json={"object": "fake", "path": request.path, "method": request.method})

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_type = reply.content_type or "text/event-stream"
        await response.prepare(request)
        try:
            for index, event in enumerate(reply.stream or []):
                if reply.drop_after is not None and index >= reply.drop_after:
                    request.transport.close()  # an abrupt end: no terminating chunk, no [DONE]
                    return response
                await response.write(_encode_event(event))
                if reply.chunk_interval:
                    await asyncio.sleep(reply.chunk_interval)
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            with self._lock:
                self.aborted_streams += 1
            raise
        return response


def _encode_event(event: Any) -> bytes:
    if isinstance(event, bytes):
        return event
    if event == "[DONE]":
        return b"data: [DONE]\n\n"
    return b"data: " + orjson.dumps(event) + b"\n\n"
