"""Reading a request body: within the body limit and the body timeout, Content-Encoding decoded here.

aiohttp's own decoding is off (``auto_decompress=False`` in serve.py): a small compressed body can expand
a thousandfold, so it is decoded in slices of at most ``SLICE`` bytes, counted against the limit as it
grows, and the event loop gets a turn between slices. A bomb is a 413 after at most limit + SLICE bytes
of work, and other requests are served meanwhile. A body that does not decode is a 400.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator

from aiohttp import web

from ..errors import BadRequest, GatewayError, PayloadTooLarge

SLICE = 256 * 1024  # decoded bytes per step, at most (br: up to twice that); well under a millisecond

try:  # Brotli is a dependency; without it "br" is refused like any unknown encoding
    import brotli
except ImportError:  # pragma: no cover
    brotli = None


class UnsupportedEncoding(GatewayError):
    status = 415


class BodyTimeout(GatewayError):
    status = 408


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than the gateway's limit of {limit} bytes")


class _Zlib:
    """gzip (``x-gzip``) and deflate: zlib-wrapped as the standard says, or raw as some clients send."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._inflate: zlib._Decompress | None = zlib.decompressobj(31) if name == "gzip" else None

    def slices(self, data: bytes) -> Iterator[bytes]:
        if self._inflate is None:  # deflate: the first byte tells a zlib header (CM = 8) from raw data
            self._inflate = zlib.decompressobj(15 if data[0] & 0x0F == 8 else -15)
        while True:
            out = self._inflate.decompress(data, SLICE)
            yield out
            if self._inflate.unused_data:
                raise zlib.error("data after the end of the compressed stream")
            data = self._inflate.unconsumed_tail
            if not data and len(out) < SLICE:
                return

    def finished(self) -> bool:
        return self._inflate is not None and self._inflate.eof


class _Brotli:
    name = "br"

    def __init__(self) -> None:
        self._decoder = brotli.Decompressor()

    def slices(self, data: bytes) -> Iterator[bytes]:
        yield self._decoder.process(data, output_buffer_limit=SLICE)
        while not self._decoder.can_accept_more_data():
            yield self._decoder.process(b"", output_buffer_limit=SLICE)

    def finished(self) -> bool:
        return self._decoder.is_finished()


def decoder_for(header: str | None) -> _Zlib | _Brotli | None:
    coding = (header or "").strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return _Zlib("gzip")
    if coding == "deflate":
        return _Zlib("deflate")
    if coding == "br" and brotli is not None:
        return _Brotli()
    raise UnsupportedEncoding(f"Unsupported Content-Encoding '{(header or '')[:64]}': send the body as is, "
                              "or gzip, deflate or br")


async def read_body(request: web.Request, *, limit: int, timeout_s: float) -> bytes:
    """The request body, decoded; 413 beyond ``limit``, 408 when it takes longer than ``timeout_s``."""
    decoder = decoder_for(request.headers.get("content-encoding"))
    declared = request.content_length  # parsed from the header on each access
    if declared is not None and declared > limit:
        raise too_large(limit)
    if decoder is None and request.content.is_eof():  # the usual small body came with the head: no timer
        return _buffered(request, limit)
    try:
        async with asyncio.timeout(timeout_s):
            if decoder is None:
                return await _read_plain(request, limit)
            return await _read_decoded(request, decoder, limit)
    except TimeoutError:
        raise BodyTimeout(f"Request body was not received within {timeout_s:g} seconds") from None


async def read_at_most(request: web.Request, limit: int) -> bytes:
    """An admin or dashboard body, whole, as it arrives: 413 once more than ``limit`` bytes came or were
    announced. ``content.read(n)`` returns what has arrived so far, not ``n`` bytes: a body sent in two TCP
    segments was cut at the first, and refused as "not valid JSON"."""
    if (request.content_length or 0) > limit:
        raise _admin_too_large(limit)
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise _admin_too_large(limit)
    return bytes(body)


def _admin_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"body: larger than {limit // 1024} KiB")


def _buffered(request: web.Request, limit: int) -> bytes:
    """The whole body, already received: taken from aiohttp's buffer as is, without ``request.read()``'s
    coroutine and copies (the gateway reads a body once, through here)."""
    body = request.content.read_nowait()
    if len(body) > limit:
        raise too_large(limit)
    return body


async def _read_plain(request: web.Request, limit: int) -> bytes:
    try:
        return await request.read()  # the app's client_max_size is the same limit
    except web.HTTPRequestEntityTooLarge:
        raise too_large(limit) from None


async def _read_decoded(request: web.Request, decoder: _Zlib | _Brotli, limit: int) -> bytes:
    body, received = bytearray(), 0
    async for chunk in request.content.iter_any():
        received += len(chunk)
        if received > limit:
            raise too_large(limit)
        try:
            for piece in decoder.slices(chunk):
                body += piece
                if len(body) > limit:
                    raise too_large(limit)
                await asyncio.sleep(0)  # let other requests run between slices
        except (zlib.error, _brotli_error()):
            raise BadRequest(f"Invalid request body: it is not valid {decoder.name} data") from None
    if received and not decoder.finished():
        raise BadRequest(f"Invalid request body: the {decoder.name} data is truncated")
    return bytes(body)


def _brotli_error() -> type[Exception]:
    return brotli.error if brotli is not None else zlib.error
