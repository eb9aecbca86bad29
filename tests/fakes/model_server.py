"""A fake private model server for load-aware routing tests: a FakeUpstream whose health (``GET /v1/models``),
load report (``GET /metrics``, Prometheus text) and chat answers the test switches while it runs."""

from __future__ import annotations

import asyncio

from aiohttp import web

from tests.fakes.upstream import FakeUpstream


class ModelServer(FakeUpstream):
    def __init__(self, *, chat_delay: float = 0.0) -> None:
        super().__init__()
        self.health_status = 200  # what GET /v1/models answers
        self.metrics_text: str | None = None  # GET /metrics: this text, or 404
        self.chat_status = 200  # not 200: chat requests get this error at once
        self.chat_delay = chat_delay
        self.probes = 0
        self.scrapes = 0
        self.chats = 0
        self.failed_chats = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/v1/models":
            self.probes += 1
            return web.json_response({"object": "list", "data": [{"id": "m"}]}, status=self.health_status)
        if request.path == "/metrics":
            self.scrapes += 1
            if self.metrics_text is None:
                return web.Response(status=404, text="404: Not Found")
            return web.Response(text=self.metrics_text, content_type="text/plain")
        self.chats += 1
        if self.chat_status != 200:
            self.failed_chats += 1
            await request.read()
            return web.json_response({"error": {"message": "model crashed", "type": "server_error"}},
                                     status=self.chat_status)
        if self.chat_delay:
            await asyncio.sleep(self.chat_delay)
        return await super()._handle(request)

    def chat_failures_seen(self) -> bool:
        return self.failed_chats > 0
