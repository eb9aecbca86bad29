"""Error envelopes: an upstream error of one API rewritten in the envelope of the API the client called."""

from __future__ import annotations

from typing import Any

_TEXT_LIMIT = 2000

ANTHROPIC_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",  # a private server loading its model or out of slots: retry later
    529: "overloaded_error",
}

# The OpenAI error type a client's SDK expects for each Anthropic one (the HTTP status carries the class).
OPENAI_TYPE_BY_ANTHROPIC_TYPE = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_error",
    "api_error": "server_error",
    "overloaded_error": "server_error",
}


def anthropic_error_type(status: int) -> str:
    """The Anthropic error type for an HTTP status; other 4xx are request errors, other 5xx API errors."""
    if status in ANTHROPIC_TYPE_BY_STATUS:
        return ANTHROPIC_TYPE_BY_STATUS[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    """``{"type": "error", "error": {"type": ..., "message": ...}}`` for an HTTP status."""
    return {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}


def openai_error(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``, the OpenAI envelope."""
    if error_type is None:
        error_type = OPENAI_TYPE_BY_ANTHROPIC_TYPE[anthropic_error_type(status)]
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def error_message(body: object, raw: bytes = b"", status: int = 0) -> str:
    """The human message of an error body in either API's shape (or plain text), never empty."""
    message: object = None
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            message = inner.get("message")
        elif isinstance(inner, str):  # some servers answer {"error": "text"}
            message = inner
        if not message:
            message = body.get("message") or body.get("detail")
    elif isinstance(body, str):
        message = body
    if not message and raw:
        message = raw[:_TEXT_LIMIT].decode("utf-8", "replace").strip()
    if not isinstance(message, str):
        message = str(message) if message else ""
    return message or f"upstream returned HTTP {status}"


def openai_error_to_anthropic(status: int, body: object, raw: bytes = b"") -> dict[str, Any]:
    """An OpenAI-spec upstream's error (parsed JSON ``body`` or ``raw`` text) as an Anthropic error."""
    return anthropic_error(status, error_message(body, raw, status))


def anthropic_error_to_openai(status: int, body: object, raw: bytes = b"") -> dict[str, Any]:
    """An Anthropic-spec upstream's error as an OpenAI error; the Anthropic type decides the OpenAI type."""
    upstream_type = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        upstream_type = body["error"].get("type")
    known = isinstance(upstream_type, str) and upstream_type in OPENAI_TYPE_BY_ANTHROPIC_TYPE
    anthropic_type = str(upstream_type) if known else anthropic_error_type(status)
    return openai_error(status, error_message(body, raw, status), OPENAI_TYPE_BY_ANTHROPIC_TYPE[anthropic_type])


# The HTTP status an error's type (or OpenAI's string code) stands for, where a client or a fallback acts on
# it. api_error, server_error and unknown types name none: the gateway's own 502 for a failed upstream.
_STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,  # OpenAI's code for it
    "insufficient_quota": 429,  # OpenAI answers it with a 429
    "overloaded_error": 529,
}


def error_status(error: object) -> int | None:
    """The HTTP status an error object found in a stream stands for: its own status or numeric code (vLLM's
    ``"code": 400``), else its type or string code; None when it says neither."""
    if not isinstance(error, dict):
        return None
    for key in ("status", "code", "status_code"):
        value = error.get(key)
        if isinstance(value, int) and 400 <= value < 600:
            return value
    for key in ("type", "code"):
        value = error.get(key)
        if isinstance(value, str) and value in _STATUS_BY_ERROR_TYPE:
            return _STATUS_BY_ERROR_TYPE[value]
    return None


def stream_error_object(event: object) -> object:
    """The error object of a stream's error event: under "error" (Chat Completions, Anthropic), or the
    event itself for the Responses API's ``{"type": "error", "code": …, "message": …}``."""
    if not isinstance(event, dict):
        return None
    if "error" not in event and event.get("type") == "error":
        return event
    return event.get("error")


def stream_error_status(event: object) -> int | None:
    """The HTTP status an error event stands for (its error object: ``stream_error_object``), so that retries
    and fallbacks judge a stream that failed with it as the same error answered before a stream; None when
    it names none."""
    return error_status(stream_error_object(event))


def stream_error_type(chunk_error: object) -> str:
    """The Anthropic type for an error object found inside an OpenAI stream (by its status, code or type)."""
    status = error_status(chunk_error)
    return "api_error" if status is None else anthropic_error_type(status)
