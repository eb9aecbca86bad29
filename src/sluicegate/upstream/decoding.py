"""Decoding an upstream response's Content-Encoding, for a client that hands the bytes over as sent.

The gateway never asks for a compressed answer (no Accept-Encoding), but an upstream may send one anyway;
clients then get the decoded body and no Content-Encoding header (``exchange.relayable_headers`` drops it),
whichever HTTP client the transport uses. The encodings decoded are aiohttp's: ``gzip``, ``deflate`` (with
or without its zlib header) and ``br``, a single one, named case-insensitively; any other value (``zstd``,
``identity``, a list) leaves the body as sent. Output is bounded per input chunk, so a small compressed
chunk cannot expand without the reader's size count seeing it (a decompression bomb stops at the cap).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli

DECODED = frozenset({"gzip", "deflate", "br"})
UNDECODABLE = frozenset({"zstd"})  # aiohttp refuses these answers (it lacks the codec): so do we
SLICE = 256 * 1024  # decoded bytes handed out per step


class DecodingFailed(ValueError):
    """The body is not valid in its announced encoding."""


class BodyDecoder(Protocol):
    def slices(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most SLICE (2 × SLICE for br)."""
        ...

    def finish(self) -> None:
        """At the end of the body: DecodingFailed if the encoded stream was cut short."""
        ...


def decoder_for(content_encoding: str | None) -> BodyDecoder | None:
    """The decoder for a response's Content-Encoding header, or None to relay the bytes as sent;
    DecodingFailed for an encoding that cannot be decoded."""
    if not content_encoding or not content_encoding.isascii():
        return None
    encoding = content_encoding.strip().lower()
    if encoding in UNDECODABLE:
        raise DecodingFailed(f"Can not decode content-encoding: {encoding}")
    if encoding not in DECODED:
        return None
    return _BrotliDecoder() if encoding == "br" else _ZlibDecoder(encoding)


class _ZlibDecoder:
    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._inflate: zlib._Decompress | None = None
        self._fed = False

    def slices(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        if self._inflate is None:
            # A deflate body should carry a zlib header (RFC 1950) but servers often send raw deflate:
            # the first byte tells which (the compression-method nibble is 8 in a zlib header).
            if self._encoding == "gzip":
                wbits = 16 + zlib.MAX_WBITS
            else:
                wbits = zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS
            self._inflate = zlib.decompressobj(wbits)
        self._fed = True
        pending = data
        try:
            while pending:
                out = self._inflate.decompress(pending, SLICE)
                pending = self._inflate.unconsumed_tail
                if out:
                    yield out
                if self._inflate.eof:
                    return  # trailing bytes after the stream's end are ignored, as aiohttp does
        except zlib.error as exc:
            raise DecodingFailed(f"Can not decode content-encoding: {self._encoding}") from exc

    def finish(self) -> None:
        if self._fed and self._encoding == "deflate" and self._inflate is not None and not self._inflate.eof:
            raise DecodingFailed("Can not decode content-encoding: deflate")


class _BrotliDecoder:
    def __init__(self) -> None:
        self._inflate = brotli.Decompressor()

    def slices(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        try:
            out = self._inflate.process(data, output_buffer_limit=SLICE)
            yield out
            while not self._inflate.can_accept_more_data():
                out = self._inflate.process(b"", output_buffer_limit=SLICE)
                if not out:
                    break
                yield out
        except brotli.error as exc:
            raise DecodingFailed("Can not decode content-encoding: br") from exc

    def finish(self) -> None:
        return None
