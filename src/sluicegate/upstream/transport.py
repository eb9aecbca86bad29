"""The transport seam: the one interface the exchange sends upstream requests through.

``AiohttpTransport`` is the real one (the pooled session of ``client.py``); tests hand the dispatcher an
in-process fake instead (``tests/fakes/transport.py``, like httpx's MockTransport), so the core runs against a
scripted upstream in milliseconds. A transport speaks in the gateway's terms, never its library's:

  - an upstream that cannot be reached or breaks off raises ``TransportError`` (``BodyBroken`` when the
    body's framing broke mid-read); ``kind`` names what happened, for messages;
  - the SSRF guard's refusal raises ``InvalidCustomHost`` (the gateway's own decision);
  - a timeout raises ``TimeoutError``, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

import aiohttp
from multidict import CIMultiDict

from .guard import blocked_reason


class TransportError(Exception):
    """No usable answer: refused connection, DNS failure, reset, broken body."""

    def __init__(self, kind: str, *, connect_reason: str | None = None) -> None:
        super().__init__(kind)
        self.kind = kind  # the failure's name, e.g. "ServerDisconnectedError"
        self.connect_reason = connect_reason  # set when the connection itself failed, e.g. "Connection refused"


class BodyBroken(TransportError):
    """The body's framing broke mid-read (truncated chunked encoding, wrong length)."""


class TransportResponse(Protocol):
    status: int
    headers: Iterable[tuple[str, str]]
    content_type: str

    async def read(self) -> bytes:
        """The whole body, then the connection is released."""
        ...

    async def read_chunk(self) -> bytes:
        """The next bytes as they arrive; b"" at the end."""
        ...

    def close(self) -> None: ...


class Transport(Protocol):
    async def send(
        self, method: str, url: str, headers: dict[str, str] | CIMultiDict[str], body: bytes | None
    ) -> TransportResponse:
        """Send one request (redirects are never followed) and return once the headers are in."""
        ...

    async def close(self) -> None:
        """Release every connection (at shutdown)."""
        ...


@dataclass(slots=True)
class _AiohttpResponse:
    response: aiohttp.ClientResponse
    status: int
    headers: Iterable[tuple[str, str]]
    content_type: str

    async def read(self) -> bytes:
        try:
            async with self.response:
                return await self.response.read()
        except TimeoutError:
            raise
        except aiohttp.ClientError as exc:
            raise TransportError(type(exc).__name__) from exc

    async def read_chunk(self) -> bytes:
        try:
            return await self.response.content.readany()
        except TimeoutError:
            raise
        except aiohttp.ClientPayloadError as exc:
            raise BodyBroken(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(type(exc).__name__) from exc

    def close(self) -> None:
        self.response.close()


class AiohttpTransport:
    """The real transport: the gateway's one pooled ``aiohttp.ClientSession`` (``client.py``)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def send(
        self, method: str, url: str, headers: dict[str, str] | CIMultiDict[str], body: bytes | None
    ) -> _AiohttpResponse:
        try:
            response = await self.session.request(method, url, headers=headers, data=body,
                                                  allow_redirects=False)
        except TimeoutError:
            raise
        except aiohttp.ClientError as exc:
            blocked = blocked_reason(exc)
            if blocked is not None:
                raise blocked from None
            raise _transport_error(exc) from exc
        return _AiohttpResponse(response, response.status, response.headers.items(), response.content_type)

    async def close(self) -> None:
        await self.session.close()


def _transport_error(exc: aiohttp.ClientError) -> TransportError:
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return TransportError(type(exc).__name__, connect_reason=reason)
    return TransportError(type(exc).__name__)
