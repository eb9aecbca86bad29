"""aiohttp's protocol, its answer to a request it cannot parse in the gateway's envelope and words.

aiohttp answers a request head it cannot parse (a control character in a header value, two Content-Lengths,
a line folded onto the next, a bad request line) with a plain-text 400 whose body quotes the raw line it
choked on: an ``Authorization`` value, an ``x-portkey-api-key``, a key in a query string went back in the
answer, to the client and to whatever logs answers on the way. protocol_log.py keeps those bytes out of the
operator's log; this keeps them out of the answer. The refusal is the JSON envelope every other refusal
has, its message the parser's reason with every quoted piece of the request left out, and the connection
closes after it as before (a stream that could not be parsed cannot be trusted to frame the next request).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web_protocol, web_request, web_server

from ..errors import GatewayError, InternalError
from .envelope import SERVER_NAME, error_response

GENERIC_REASON = "the request could not be parsed"
REASON_MAX = 120
# aiohttp quotes the bytes it shows (Python's repr) and puts them after a colon: both are cut. What is left
# may hold the parser's own words and figures only; anything else (a control character, a byte that is
# not ASCII) could be the client's, and the whole reason is then the generic one.
_PLAIN_REASON = re.compile(r"[A-Za-z0-9 ,.()/'-]*")
# A quoted piece starts a word (Python's repr of the bytes, b'...', or of a str); "can't" is not one.
_QUOTED = re.compile(r"""(?<![A-Za-z0-9])b?(?:'[^']*'?|"[^"]*"?)""")
# The header names the parser itself names ("Missing 'Host' header", "Duplicate 'Content-Length' header
# found."): its own words, not the client's bytes, and the reason says nothing without them.
_NAMED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "content-type", "content-location",
                            "content-range", "etag", "max-forwards", "server", "user-agent"})


def _unquoted(match: re.Match[str]) -> str:
    name = match.group(0).removeprefix("b").strip("'\"")
    return name if name.lower() in _NAMED_HEADERS else ""


def parser_reason(message: str | None) -> str:
    """The parser's reason for refusing a request, without any of the request's bytes."""
    first_line = (message or "").split("\n", 1)[0]
    # What follows a colon is what the parser choked on ("Invalid HTTP Header: <name>"), quoted or not.
    reason = _QUOTED.sub(_unquoted, first_line).split(":", 1)[0].replace("()", "").strip()
    if reason.endswith(" when reading"):  # the line it read came next, and is gone: say what it was
        reason += " a line of the request head"
    if not reason or len(reason) > REASON_MAX or not _PLAIN_REASON.fullmatch(reason):
        return GENERIC_REASON
    return reason


class EnvelopedRefusals(web_protocol.RequestHandler):
    """aiohttp's RequestHandler but for the answer it makes when a request cannot be parsed (or, which our
    middleware never lets happen, when a handler's exception reaches aiohttp)."""

    __slots__ = ()

    def handle_error(self, request: web_request.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web_protocol.StreamResponse:
        # aiohttp's own first: it logs (through protocol_log.py) and raises when an answer has already begun.
        theirs = super().handle_error(request, status, exc, message)
        error = InternalError() if theirs.status >= 500 else GatewayError(
            f"malformed HTTP request: {parser_reason(message)}", status=theirs.status)
        ours = error_response(error, None)
        ours.headers["Server"] = SERVER_NAME  # answered before routing: no app's response hook runs for it
        ours.force_close()
        return ours


def enveloped_refusals(server: web_server.Server) -> Callable[[], asyncio.Protocol]:
    """The protocol factory ``server`` is, making EnvelopedRefusals instead of aiohttp's RequestHandler.

    aiohttp offers no hook for these answers: this does what its ``Server.__call__`` does, with its
    arguments (the loop and the handler settings the runner was given)."""
    settings: dict[str, Any] = server._kwargs
    return lambda: EnvelopedRefusals(server, loop=server._loop, **settings)
