"""The attempt loop: resolve a target, guard it, send, classify, and return what the client gets.

Every attempt is recorded (target path, status, latency, error) for the request log. Upstream failures
(timeouts, refused connections, streams that break before any content) are values here, not exceptions,
so retries and fallbacks treat them like upstream statuses; only the gateway's own refusals raise.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
import orjson
from multidict import CIMultiDict

from .config.model import Group, Node, Target
from .errors import BadRequest, EndpointNotSupported, UpstreamFailure, UpstreamTimeout, UpstreamUnreachable
from .providers import registry, sse
from .server.headers import RequestContext
from .upstream.auth import passthrough_headers, upstream_headers
from .upstream.guard import Guard, blocked_reason

STREAM_PEEK_LIMIT = 64 * 1024  # bytes held back at most while waiting for a stream's first content


@dataclass(slots=True)
class Call:
    """One client request as the dispatcher sees it."""

    ctx: RequestContext
    endpoint: str  # "chat" | "completions" | "embeddings" | "proxy"
    method: str
    path: str  # proxy: the path after /v1 with its query string; unified endpoints: unused
    body: bytes
    json: dict[str, Any] | None
    stream: bool
    model: str | None = None  # after catalog prefix stripping


@dataclass(slots=True)
class AttemptRecord:
    path: str
    provider: str | None
    host: str | None
    status: int | None
    latency_ms: float
    error: str | None = None


@dataclass(slots=True)
class Outcome:
    """What one target (with its retries) produced."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes | None  # complete body, or the held-back start of a stream
    provider: str | None
    path: str
    upstream: aiohttp.ClientResponse | None = None  # an open stream still to relay
    retries: int = 0
    gateway_exception: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def discard(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None


@dataclass(slots=True)
class Prepared:
    provider: str
    spec: Any
    url: str
    host: str
    headers: dict[str, str] | CIMultiDict[str]
    body: bytes
    timeout_ms: int | None


@dataclass
class Dispatch:
    """Per-request state: the attempts made so far."""

    call: Call
    attempts: list[AttemptRecord] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        guard: Guard,
        *,
        provider_urls: dict[str, str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._session = session
        self._guard = guard
        self._provider_urls = provider_urls or {}
        self._clock = clock

    async def run(self, call: Call, root: Node) -> tuple[Outcome, list[AttemptRecord]]:
        state = Dispatch(call)
        outcome = await self._run_node(root, state)
        return outcome, state.attempts

    async def _run_node(self, node: Node, state: Dispatch) -> Outcome:
        if isinstance(node, Group):
            raise BadRequest("Gateway Config strategies are not supported yet")
        return await self._run_target(node, state)

    async def _run_target(self, target: Target, state: Dispatch) -> Outcome:
        prepared = self.prepare(target, state.call)
        return await self._attempt(prepared, target, state)

    # -- building the upstream request -------------------------------------------------------------

    def prepare(self, target: Target, call: Call) -> Prepared:
        ctx = call.ctx
        provider_id = target.provider or ctx.provider
        info = registry.lookup(provider_id) if provider_id else None
        if info is None:
            raise BadRequest("Invalid provider passed")
        base = ctx.custom_host or target.custom_host or registry.base_url(info, self._provider_urls)
        if not base:
            raise BadRequest(f"Provider {provider_id} needs a custom host")
        checked = self._guard.check_url(base)
        names = ctx.forward_headers if ctx.forward_headers is not None else target.forward_headers
        forwarded = ctx.forwarded_values(names)
        api_key = target.api_key if target.provider else ctx.api_key
        if call.endpoint == "proxy":
            path = call.path
            # Passthrough: the client's own headers win over the spec's credential (Portkey's merge order).
            headers: Any = CIMultiDict(upstream_headers(info.spec, api_key, (), content_type=None))
            for name, value in passthrough_headers(ctx.headers.items()) + forwarded:
                headers[name] = value
        else:
            path = info.spec.endpoint_path(call.endpoint)
            if path is None:
                raise EndpointNotSupported(f"{call.endpoint} is not supported by {provider_id}")
            headers = upstream_headers(info.spec, api_key, forwarded)
        return Prepared(
            provider=provider_id,
            spec=info.spec,
            url=checked.base + info.path_prefix + path,
            host=checked.base,
            headers=headers,
            body=self._body_for(target, call),
            timeout_ms=ctx.request_timeout_ms or target.request_timeout_ms,
        )

    @staticmethod
    def _body_for(target: Target, call: Call) -> bytes:
        if call.json is None or (not target.override_params and call.model is None):
            return call.body  # untouched bytes: no re-serialisation on the common path
        body = dict(call.json)
        if call.model is not None:
            body["model"] = call.model
        body.update(target.override_params)
        return orjson.dumps(body)

    # -- one attempt --------------------------------------------------------------------------------

    async def _attempt(self, prepared: Prepared, target: Target, state: Dispatch) -> Outcome:
        started = self._clock()
        outcome = await self._send(prepared, target, state.call)
        state.attempts.append(
            AttemptRecord(
                path=target.path,
                provider=prepared.provider,
                host=prepared.host,
                status=outcome.status,
                latency_ms=(self._clock() - started) * 1000.0,
                error=_error_text(outcome),
            )
        )
        return outcome

    async def _send(self, prepared: Prepared, target: Target, call: Call) -> Outcome:
        timeout_s = prepared.timeout_ms / 1000.0 if prepared.timeout_ms else None
        try:
            async with asyncio.timeout(timeout_s):
                return await self._exchange(prepared, target, call)
        except TimeoutError:
            return self._failure(UpstreamTimeout(prepared.timeout_ms or 0, prepared.provider), target)
        except aiohttp.ClientError as exc:
            blocked = blocked_reason(exc)
            if blocked is not None:
                raise blocked from None
            return self._failure(_unreachable(exc, prepared), target)
        except UpstreamFailure as exc:
            return self._failure(exc, target)

    async def _exchange(self, prepared: Prepared, target: Target, call: Call) -> Outcome:
        response = await self._session.request(
            call.method, prepared.url, headers=prepared.headers, data=prepared.body or None,
            allow_redirects=False,
        )
        headers = relayable_headers(response.headers.items())
        if response.ok and _is_event_stream(response):
            try:
                start = await open_stream(response, prepared.provider)
            except BaseException:
                response.close()
                raise
            return Outcome(response.status, headers, start, prepared.provider, target.path, upstream=response)
        async with response:
            body = await response.read()
        if not response.ok and call.endpoint != "proxy":
            body = orjson.dumps(prepared.spec.error_body(response.status, body, prepared.provider))
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("content-type", "application/json"))
        return Outcome(response.status, headers, body, prepared.provider, target.path)

    @staticmethod
    def _failure(exc: UpstreamFailure, target: Target) -> Outcome:
        body = orjson.dumps(exc.body())
        return Outcome(exc.status, [("content-type", "application/json")], body, exc.provider, target.path)


# Response headers that describe the hop, not the content; never relayed.
_HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "content-length", "content-encoding", "date", "server",
    }
)


def relayable_headers(items) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if k.lower() not in _HOP_BY_HOP and not k.lower().startswith("x-portkey-")]


def _is_event_stream(response: aiohttp.ClientResponse) -> bool:
    return response.content_type == "text/event-stream"


async def open_stream(response: aiohttp.ClientResponse, provider: str) -> bytes:
    """Read a stream until its first event with content (or its end), and return what was read.

    Until then the stream's fate is open: an error event or a disconnect here is an upstream failure that
    can still be retried or fall back. After it, the stream is the client's and failures become error events.
    """
    buffer, scanned = b"", 0
    while len(buffer) < STREAM_PEEK_LIMIT:
        try:
            chunk = await response.content.readany()
        except aiohttp.ClientPayloadError:
            chunk = b""
        if not chunk:
            raise UpstreamUnreachable(f"{provider} stream ended before any content", provider)
        buffer += chunk
        events, rest = sse.split_events(buffer[scanned:])
        for event in events:
            kind, message = sse.classify_event(event)
            if kind == sse.ERROR:
                raise UpstreamFailure(f"{provider} error: {message}", status=502, provider=provider)
            if kind in (sse.CONTENT, sse.DONE):
                return buffer
        scanned = len(buffer) - len(rest)  # resume after the last complete event
    return buffer


def _unreachable(exc: aiohttp.ClientError, prepared: Prepared) -> UpstreamUnreachable:
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return UpstreamUnreachable(f"Could not connect to {prepared.host}: {reason}", prepared.provider)
    return UpstreamUnreachable(f"Upstream {prepared.host} failed: {type(exc).__name__}", prepared.provider)


def _error_text(outcome: Outcome) -> str | None:
    if outcome.ok or outcome.upstream is not None or not outcome.body:
        return None
    return outcome.body[:512].decode("utf-8", "replace")
