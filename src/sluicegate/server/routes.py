"""Inference routes: the OpenAI-compatible surface under /v1, health, and the passthrough catch-all."""

from __future__ import annotations

import time

import orjson
from aiohttp import web
from multidict import CIMultiDict

from ..errors import BadRequest
from ..jsontext import WRITABLE_DEPTH, json_object
from ..pipeline import RequestState
from ..prepare import split_model_slug
from ..telemetry.record import RequestRecord
from ..types import Call, Outcome, RequestContext
from .appkeys import GATEWAY, TRACE_ID
from .bodies import read_body
from .gateway import Gateway
from .headers import read_request_headers, take_x_api_key, traced_context
from .messages import ENDPOINTS as MESSAGES_ENDPOINTS
from .messages import check_messages_body, in_anthropic_envelope
from .middleware import Handler, answer_for
from .paths import passthrough_tail, reaches_admin_api
from .streaming import relay_stream

_JSON_TYPES = ("application/json", "")
_PASSTHROUGH_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_HEALTHY = orjson.dumps({"status": "healthy"})


async def root(request: web.Request) -> web.Response:
    return web.Response(text="sluicegate says hey! The OpenAI-compatible API is under /v1.")


async def health(request: web.Request) -> web.Response:
    return web.Response(body=_HEALTHY, content_type="application/json")


def _content_type_ok(request: web.Request, *, json_only: bool) -> bool:
    given = request.headers.get("content-type")
    if given is None or given == "application/json":  # what SDKs send: no need to parse it
        return True
    kind = request.content_type if given else ""
    if kind in _JSON_TYPES:
        return True
    return not json_only and (kind == "multipart/form-data" or kind.startswith("audio/"))


def parse_json_body(raw: bytes, endpoint: str) -> dict:
    """Light validation, so malformed input gets a clear 400 here instead of a traceback upstream."""
    if not raw:
        raise BadRequest("Request body is required: a JSON object")
    body = json_object(raw, invalid="Invalid JSON body: {error}",
                       not_object="Request body must be a JSON object")
    _check_fields(body, endpoint)
    return body


def forwarded_body(body: dict) -> bytes:
    """The body the gateway parsed, serialised again: what goes upstream (and into the request log).

    Duplicate keys (``{"model": "a", ..., "model": "b"}``): the parser keeps the last, an upstream may keep
    the first, so the model checked against a catalog allow-list, the ``stream`` flag or a field a
    conditional route read could differ from what the upstream acts on. Forwarding the parsed body gives
    both one view, at every depth. Refusing duplicates instead would need a second parse of every body
    (a pure-Python one with ``object_pairs_hook``: ~3x orjson's parse), while this costs less than the
    parse already done (orjson: ~0.2 µs for a small chat body, ~0.3 ms per MiB against ~1.2 ms to parse it).
    """
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson serialises at most 254 levels deep; its parser took more
        raise BadRequest(f"Request body is nested too deeply: at most {WRITABLE_DEPTH} levels") from None


def _check_fields(body: dict, endpoint: str) -> None:
    if "model" in body and not isinstance(body["model"], str):
        raise BadRequest("'model' must be a string")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("'stream' must be a boolean")
    if endpoint == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' is required and must be a non-empty array")
        if not all(isinstance(m, dict) for m in messages):
            raise BadRequest("each item of 'messages' must be an object")
    elif endpoint == "completions" and "prompt" not in body:
        raise BadRequest("'prompt' is required")
    elif endpoint == "embeddings" and "input" not in body:
        raise BadRequest("'input' is required")
    elif endpoint in MESSAGES_ENDPOINTS:
        check_messages_body(body, endpoint)


async def _read_request(request: web.Request, gateway: Gateway, record: RequestRecord, *, json_only: bool):
    """Headers parsed once (the trace id known from here on), content type checked, body read."""
    return _read_headers(request, record), await _read_body(request, gateway, json_only=json_only)


def _read_headers(request: web.Request, record: RequestRecord) -> RequestContext:
    """The request's headers, parsed once: from here on a refusal echoes its trace id and the log stores it."""
    ctx = record.ctx = traced_context(request.headers)
    request[TRACE_ID] = ctx.trace_id
    read_request_headers(ctx)  # may refuse a header: after the trace id, which the refusal then echoes
    return ctx


async def _read_body(request: web.Request, gateway: Gateway, *, json_only: bool) -> bytes:
    if not _content_type_ok(request, json_only=json_only):
        raise BadRequest("Invalid content type passed")
    settings = gateway.settings
    return await read_body(request, limit=settings.max_body_bytes, timeout_s=settings.body_timeout_s)


def unified(endpoint: str):
    """A handler for one unified endpoint (chat, completions, embeddings; Anthropic's messages and
    count_tokens)."""

    async def prepare(request: web.Request, gateway: Gateway, record: RequestRecord) -> Call:
        ctx, raw = await _read_request(request, gateway, record, json_only=True)
        if endpoint in MESSAGES_ENDPOINTS:  # the anthropic SDKs' credential header
            take_x_api_key(ctx)
        body = parse_json_body(raw, endpoint)
        slug, model = split_model_slug(body.get("model"))
        return Call(ctx, endpoint, "POST", "", forwarded_body(body), body, stream=body.get("stream") is True,
                    pathname=request.path, model=model, model_slug=slug, created=int(time.time()))

    return _logged(endpoint, prepare)


async def _prepare_passthrough(request: web.Request, gateway: Gateway, record: RequestRecord) -> Call:
    """Any other /v1/* path goes to the target as is (e.g. /v1/rerank, /v1/models), query kept."""
    ctx = _read_headers(request, record)  # first: the refusal below echoes the trace id, and the log keeps it
    if request.method not in _PASSTHROUGH_METHODS:
        raise web.HTTPMethodNotAllowed(request.method, _PASSTHROUGH_METHODS)
    raw = await _read_body(request, gateway, json_only=False)
    # From the routed (origin-form) URL, never raw_path: for an absolute-form target
    # ("POST http://gw/v1/rerank") raw_path is the whole URL, and its tail appended to the checked
    # base URL would change the upstream's host or port after the SSRF guard judged it.
    # Dot segments resolved and kept below /v1 (the base path of the target), see paths.py.
    tail = passthrough_tail(request.rel_url.raw_path_qs[len("/v1"):])
    return Call(ctx, "proxy", request.method, tail, raw, None, stream=False, pathname=request.path)


def _logged(endpoint: str, prepare):
    """Wrap a route so that every request, however it ends, is logged exactly once.

    A request starts only once the request log has room for it (``wait_for_log``: under sustained load the
    intake follows what the log can write, instead of the log losing records). A gateway refusal, an
    upstream failure, a client that leaves mid-stream (the handler is cancelled) all
    still produce their record, submitted as the exception leaves. Either way it is before aiohttp writes
    the answer, so the record is journaled (telemetry/journal.py) before the client has the body: an
    answer's record is sealed with the others ready in the same turn of the event loop before any of them is
    written (``Telemetry.answered``); a stream seals its record before its last event (``relay_stream``'s
    ``before_end``).
    """

    async def handler(request: web.Request) -> web.StreamResponse:
        gateway = request.app[GATEWAY]  # looked up once, for every stage of the request
        telemetry = gateway.telemetry
        record = telemetry.begin(request.method, request.path, endpoint)
        try:
            if telemetry.log_behind():  # the wait is part of the request (its latency; a client leaving: 499)
                await telemetry.wait_for_log()
            record.call = call = await prepare(request, gateway, record)
            response = await _answer(request, gateway, call, record)
        except BaseException as exc:
            record.failed(exc, answer_for(exc))
            telemetry.submit(record)
            raise
        telemetry.answered(record)  # journaled before the answer is written (Telemetry.answered)
        return response

    return handler


_logged_passthrough = _logged("proxy", _prepare_passthrough)


async def passthrough(request: web.Request) -> web.StreamResponse:
    """Any other /v1 path, unless it reaches the Admin API's once decoded (paths.py): that is the reserved
    routes' 404, never proxied and never logged, whatever the spelling."""
    if reaches_admin_api(request.rel_url.raw_path[len("/v1"):]):
        raise web.HTTPNotFound()
    return await _logged_passthrough(request)


async def _answer(request: web.Request, gateway: Gateway, call: Call, record: RequestRecord
                  ) -> web.StreamResponse:
    """Run the request pipeline (admit, config, cache, dispatch) and answer with what it produced."""
    state = RequestState(call)
    outcome = await gateway.pipeline.run(state)
    record.answered(outcome, state.attempts, state.cache_status)
    headers = response_headers(state, outcome)
    if outcome.stream is not None:
        tap = record.tap_stream(outcome.body or b"", gateway.settings.log_body_max_bytes)
        telemetry = gateway.telemetry
        return await relay_stream(request, outcome, headers, tap, lambda: telemetry.seal(record))
    return web.Response(status=outcome.status, body=outcome.body, headers=headers)


def response_headers(state: RequestState, outcome: Outcome) -> CIMultiDict[str]:
    attempts = len(state.attempts)
    headers = CIMultiDict(outcome.headers)
    headers["x-portkey-trace-id"] = state.call.ctx.trace_id
    headers["x-portkey-last-used-option-index"] = outcome.target_path
    headers["x-portkey-retry-attempt-count"] = str(outcome.retries)
    headers["x-portkey-cache-status"] = state.cache_status
    if outcome.provider:
        headers["x-portkey-provider"] = outcome.provider
    if outcome.gateway_exception:
        headers["x-portkey-gateway-exception"] = "true"
    if not outcome.ok and (attempts > 1 or outcome.retries == -1 or outcome.deadline_expired):
        # The gateway already retried or fell back, or its retry policy gave up on this failure (a Retry-After
        # past its budget), or the request's own timeout fired: the SDK's own automatic retry would only
        # repeat it, defy the upstream's wait, or take as long again past the deadline the client set.
        headers["x-should-retry"] = "false"
    return headers


def add_reserved_routes(router: web.UrlDispatcher, prefixes: tuple[str, ...]) -> None:
    """Every path at or below ``prefixes`` (Portkey's Admin API under /v1) is the admin API's: one that none
    of its routes takes is a 404, or a 405 when another method would be taken. Added after the admin routes
    and before the /v1 passthrough, which would otherwise forward such a request to a provider and log its
    body (an integration's key) as an inference request."""
    reserved: list[web.AbstractResource] = []

    async def not_served(request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        for resource in request.app.router.resources():
            if resource not in reserved and resource.canonical.startswith(prefixes):
                match, methods = await resource.resolve(request)
                allowed |= methods if match is None else set()
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound()

    for prefix in prefixes:
        for path in (prefix, prefix + "/{tail:.*}"):
            resource = router.add_resource(path)
            resource.add_route("*", not_served)
            reserved.append(resource)


def add_routes(app: web.Application) -> dict[str, Handler]:
    """Add the inference routes; returns the unified endpoints' handlers by path: the routes whose common case
    the native edge serves too (server/native.py), with the same handlers as here."""
    router = app.router
    router.add_get("/", root)
    router.add_get("/v1/health", health)
    unified_routes = {
        "/v1/chat/completions": unified("chat"),
        "/v1/completions": unified("completions"),
        "/v1/embeddings": unified("embeddings"),
        "/v1/messages": in_anthropic_envelope(unified("messages")),
        "/v1/messages/count_tokens": in_anthropic_envelope(unified("count_tokens")),
    }
    for path, handler in unified_routes.items():
        router.add_post(path, handler)
    router.add_route("*", "/v1/{tail:.*}", passthrough)
    return unified_routes
