"""The gateway's error tree and its mapping to HTTP status and JSON envelope, in one place.

Two envelopes exist on the wire (Portkey compatibility):
  - the gateway's own refusals: ``{"status": "failure", "message": ...}`` (+ ``errors`` for config schema);
  - failures of an upstream attempt: ``{"error": {"message", "type", "param", "code"}, "provider": ...}``.
Messages never carry credentials: callers pass redacted text only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def is_utf8(text: str) -> bool:
    """Is ``text`` free of lone surrogates: the form bytes that were not UTF-8 take in a decoded header, path
    or environment variable (surrogateescape)?"""
    return text.isascii() or _LONE_SURROGATE.search(text) is None


def sendable(text: str) -> str:
    """``text`` with each lone surrogate as U+FFFD. A client's bytes that were not UTF-8 (a header, a path)
    reach Python as lone surrogates, which no JSON encoder writes: a message that echoed one made its own
    answer fail (a 500)."""
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


def first_line(exc: BaseException) -> str:
    """The first line of what ``exc`` says ("" for nothing): database drivers append the SQL text, SQLAlchemy
    a link to its documentation, and the first line names the problem without them."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


class GatewayError(Exception):
    """Base of every error the gateway answers with itself."""

    status: int = 500

    def __init__(self, message: str, *, status: int | None = None) -> None:
        message = sendable(message)
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        return {"status": "failure", "message": self.message}

    def detail(self) -> str:
        """The message with everything ``body`` says besides it, for an envelope that has only a message
        (Anthropic's)."""
        return self.message


INTERNAL_MESSAGE = "Something went wrong"  # a 500's whole message: the traceback is for the operator only


class InternalError(GatewayError):
    """What any unexpected exception becomes on the wire (server/middleware.py ``error_for``)."""

    def __init__(self) -> None:
        super().__init__(INTERNAL_MESSAGE)


class BadRequest(GatewayError):
    """A request the gateway refuses before any upstream attempt (HTTP 400)."""

    status = 400


class ConfigError(BadRequest):
    """A Gateway Config that fails validation; ``errors`` names each offending path."""

    def __init__(self, errors: list[str], message: str = "Invalid config passed") -> None:
        super().__init__(message)
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {"status": "failure", "message": self.message, "errors": self.errors}

    def detail(self) -> str:
        shown = "; ".join(self.errors[:_DETAILED])
        more = f" (and {len(self.errors) - _DETAILED} more)" if len(self.errors) > _DETAILED else ""
        return f"{self.message}: {shown}{more}" if shown else self.message


_DETAILED = 5  # a config's problems named in a one-message envelope


class RouterError(BadRequest):
    """Conditional routing could not pick a target (unknown operator, unknown target name …)."""


class InvalidCustomHost(BadRequest):
    """The SSRF guard refused an upstream URL; ``reason`` tells the user what to change."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid custom host: {reason}")
        self.reason = reason


class Unauthorized(GatewayError):
    status = 401


class NotFound(GatewayError):
    status = 404

    def body(self) -> dict[str, Any]:
        return {"message": "Not Found", "ok": False}


class MethodNotAllowed(GatewayError):
    status = 405

    def __init__(self, message: str, *, allowed: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.headers = {"Allow": ", ".join(sorted(allowed))} if allowed else {}


class Conflict(GatewayError):
    status = 409


class TooManyRequests(GatewayError):
    """A rate limit refused the request (Retry-After and x-ratelimit-* headers go with it)."""

    status = 429

    def __init__(self, message: str, *, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = headers


class BudgetExhausted(GatewayError):
    """A usage limit (budget) is used up: Portkey answers 412."""

    status = 412

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class LimitsUnavailable(GatewayError):
    """The limits store cannot be reached and limits fail closed."""

    status = 503


# The message of the cancellation shutdown sends the requests still running once its drain bound has passed
# (server/connections.py): the stream relay, the native edge and the request log tell it from a client that left.
SHUTDOWN_CUT = "the gateway shut down before the response was complete (its drain bound passed)"


def cut_by_shutdown(exc: BaseException) -> bool:
    return exc.args[:1] == (SHUTDOWN_CUT,)


# The message of the cancellation a request gets when its client took none of the answer for the send bound
# (SLUICEGATE_SEND_TIMEOUT, server/connections.py): logged as a client that left (499), with this reason.
SEND_STALLED = ("the client took none of the response for the send timeout (SLUICEGATE_SEND_TIMEOUT): "
                "the gateway closed the connection")


def stalled_send(exc: BaseException) -> bool:
    return exc.args[:1] == (SEND_STALLED,)


class ShuttingDown(GatewayError):
    """What a request still unanswered when shutdown's drain bound passes is told (another replica, or this
    one restarted, can take it: SDKs retry a 503)."""

    status = 503

    def __init__(self) -> None:
        super().__init__(SHUTDOWN_CUT)


class PayloadTooLarge(GatewayError):
    status = 413


class UpstreamFailure(GatewayError):
    """An attempt that produced no usable upstream response: timeout, refused connection, broken stream.

    It takes part in retries and fallbacks exactly like an upstream status would.
    """

    error_type = "upstream_error"

    def __init__(self, message: str, *, status: int, provider: str | None = None) -> None:
        super().__init__(message, status=status)
        self.provider = provider

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": {"message": self.message, "type": self.error_type, "param": None, "code": None}
        }
        if self.provider:
            body["provider"] = self.provider
        return body


class UpstreamTimeout(UpstreamFailure):
    """HTTP 408. The message names the timeout that fired and where it was set: ``header``
    (x-portkey-request-timeout, Portkey's wording), ``config`` (request_timeout), or the gateway's own
    ``connect`` / ``read`` timeouts (settings, in seconds) when the request set none."""

    error_type = "timeout_error"
    _MESSAGES: ClassVar[dict[str, str]] = {
        "header": "Request exceeded the timeout sent in the request: {ms}ms",
        "config": "Request exceeded the request_timeout of the config: {ms}ms",
        "connect": "Could not connect to the upstream within {s:g} s (SLUICEGATE_UPSTREAM_CONNECT_TIMEOUT)",
        "read": "The upstream sent nothing for {s:g} s "
                "(SLUICEGATE_UPSTREAM_READ_TIMEOUT; no request timeout was set)",
    }

    def __init__(self, timeout_ms: float, provider: str | None = None, *, source: str = "header") -> None:
        message = self._MESSAGES[source].format(ms=round(timeout_ms), s=timeout_ms / 1000)
        super().__init__(message, status=408, provider=provider)


class UpstreamUnreachable(UpstreamFailure):
    """Connection refused, DNS failure, reset before a response: HTTP 502, retryable."""

    error_type = "upstream_connection_error"

    def __init__(self, message: str, provider: str | None = None) -> None:
        super().__init__(message, status=502, provider=provider)


class UpstreamStreamError(UpstreamFailure):
    """A stream whose first event was an error naming an HTTP status (a rate limit, a bad request): an
    answer with that status, which retries, fallbacks and the circuit breaker judge as they judge the
    same error answered before a stream. ``answer``: the event's data, the upstream's error as its JSON
    answer would carry it (None: it had none), which the client gets in the envelope that answer would get."""

    def __init__(self, message: str, *, status: int, provider: str | None = None,
                 answer: bytes | None = None) -> None:
        super().__init__(message, status=status, provider=provider)
        self.answer = answer


class EndpointNotSupported(GatewayError):
    """The target's API spec has no such endpoint; stops fallback (gateway exception)."""

    status = 400
    gateway_exception = True
