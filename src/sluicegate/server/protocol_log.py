"""The HTTP server's own log: one line per bad request, never a byte of what the request carried.

aiohttp logs every request it cannot parse with a traceback, and the parser's message quotes the raw
line it choked on: an ``Authorization`` value, an inline ``x-portkey-config`` with its ``api_key``, a
header value split by a raw newline. Handed to aiohttp's ``RequestHandler`` as its ``logger``, this
object keeps the remote address and the kind of error (the exception's class) and drops the rest: the
message, its arguments' reprs and the traceback. Errors in the gateway's own handlers never reach it
(``edge_middleware`` logs those), so what arrives here is about the connection, not about our code.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError

log = logging.getLogger("sluicegate.http")


def _kind(exc_info: Any) -> str:
    if isinstance(exc_info, BaseException):
        return type(exc_info).__name__
    return "unknown error"


class ProtocolLog:
    """Duck-types the few ``logging.Logger`` methods aiohttp's server calls on its ``logger``."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger

    def exception(self, msg: str, *args: Any, exc_info: Any = None, **_: Any) -> None:
        self._log.warning("%s (%s)", self._summary(msg, args, exc_info), _kind(exc_info))

    def error(self, msg: str, *args: Any, exc_info: Any = None, **_: Any) -> None:
        self.exception(msg, *args, exc_info=exc_info)

    def debug(self, msg: str, *args: Any, exc_info: Any = None, **_: Any) -> None:
        # A bad method on a fresh connection is usually TLS or a scanner on the port: noise, kept at debug.
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("%s (%s)", self._summary(msg, args, exc_info), _kind(exc_info))

    def warning(self, msg: str, *args: Any, **_: Any) -> None:
        self._log.warning("HTTP server: %s", msg.split(" %", 1)[0])  # the text only, no argument values

    def info(self, msg: str, *args: Any, **_: Any) -> None:
        self.warning(msg)

    @staticmethod
    def _summary(msg: str, args: tuple, exc_info: Any) -> str:
        # Only aiohttp's "Error handling request from %s" passes an argument worth keeping: the peer's address.
        remote = args[0] if args and msg.endswith("request from %s") and isinstance(args[0], str) else None
        what = "bad HTTP request" if isinstance(exc_info, (HttpProcessingError, BadHttpMethod)) else (
            f"HTTP server: {msg.split(' %', 1)[0]}")
        return f"{what.removesuffix(' from')} from {remote}" if remote else what
