"""The Anthropic Messages surface: ``POST /v1/messages`` and ``/v1/messages/count_tokens``.

The request runs the same pipeline as ``/v1/chat/completions`` (configs, fallbacks, retries, logs); what
differs is at the edge: the body is checked as a Messages request, the credential may come as
``x-api-key`` (the anthropic SDKs send it there), and every error (the gateway's own refusals and failed
attempts alike) is answered in Anthropic's envelope ``{"type": "error", "error": {"type", "message"}}``,
which the anthropic SDKs turn into their exception classes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from ..errors import BadRequest
from ..providers.translate.errors import anthropic_error, error_message
from .appkeys import TRACE_ID
from .middleware import error_for

ENDPOINTS = ("messages", "count_tokens")
_ROLES = ("user", "assistant")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def check_messages_body(body: dict[str, Any], endpoint: str) -> None:
    """A Messages request's shape, so malformed input gets a clear 400 here (the translators check the
    blocks inside)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required and must be a non-empty array")
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages.{position}: an object is required")
        if message.get("role") not in _ROLES:
            raise BadRequest(f"messages.{position}.role: 'user' or 'assistant' is required")
        if not isinstance(message.get("content"), (str, list)):
            raise BadRequest(f"messages.{position}.content: a string or an array of content blocks is required")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise BadRequest("'system' must be a string or an array of text blocks")
    if endpoint == "messages":
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise BadRequest("'max_tokens' is required and must be a positive integer")
    tools = body.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise BadRequest("'tools' must be an array of objects")


def _anthropic_response(status: int, message: str, response: web.StreamResponse | None,
                        trace_id: str | None) -> web.Response:
    # Case-insensitive: a plain dict kept the answer's "content-type" beside the "Content-Type" set here, and
    # the client got both.
    headers = CIMultiDict(response.headers) if response is not None else CIMultiDict()
    headers.popall("Content-Length", None)
    if trace_id:
        headers["x-portkey-trace-id"] = trace_id
    headers["Content-Type"] = "application/json"
    return web.Response(status=status, body=orjson.dumps(anthropic_error(status, message)), headers=headers)


def _parsed(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _is_anthropic_error(parsed: object) -> bool:
    return isinstance(parsed, dict) and parsed.get("type") == "error" and isinstance(parsed.get("error"), dict)


def in_anthropic_envelope(handler: Handler) -> Handler:
    """Answer errors the way the anthropic SDKs read them: a refusal raised by the gateway, or a failed
    attempt in the unified envelope (timeouts, unreachable hosts, a stream that broke before it started)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except Exception as exc:  # the /v1 middleware's decision, in Anthropic's words
            error = error_for(exc, request)
            return _anthropic_response(error.status, error.detail(), None, request.get(TRACE_ID))
        if response.status < 400 or not isinstance(response, web.Response) or response.body is None:
            return response
        body = bytes(response.body)  # type: ignore[arg-type]
        parsed = _parsed(body)
        if _is_anthropic_error(parsed):
            return response
        return _anthropic_response(response.status, error_message(parsed, body, response.status), response,
                                   request.get(TRACE_ID))

    return answer
