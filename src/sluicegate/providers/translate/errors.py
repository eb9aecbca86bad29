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


def stream_error_type(chunk_error: object) -> str:
    """The Anthropic type for an error object found inside an OpenAI stream (by its code or status)."""
    if isinstance(chunk_error, dict):
        for key in ("status", "code", "status_code"):
            value = chunk_error.get(key)
            if isinstance(value, int) and 400 <= value < 600:
                return anthropic_error_type(value)
        if chunk_error.get("type") in ANTHROPIC_TYPE_BY_STATUS.values():
            return str(chunk_error["type"])
    return "api_error"
