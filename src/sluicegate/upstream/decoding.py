"""Decoding an upstream response's Content-Encoding, for a client that hands the bytes over as sent.

The gateway never asks for a compressed answer (no Accept-Encoding), but an upstream may send one anyway;
clients then get the decoded body and no Content-Encoding header (``exchange.relayable_headers`` drops it),
whichever HTTP client the transport uses. So an answer is decoded, or it fails (``DecodingFailed``: the
transport's ``ContentEncodingError``, a 502): encoded bytes are never handed on as if they were plain.

The header's value (every Content-Encoding line of the answer, joined with commas) is a list of codings,
named case-insensitively: ``identity`` entries (and empty ones) mean nothing, ``x-gzip`` is ``gzip`` (RFC 9110,
8.4.1.3), and what remains must be a single coding of aiohttp's: ``gzip``, ``deflate`` (with or without its
zlib header) or ``br``. Anything else (``zstd``, ``compress``, an unknown name, two codings stacked) fails the
answer. A body that ends before its encoded stream does (a cut gzip, deflate or brotli stream) is broken too.
Output is bounded per step, so a small compressed chunk cannot expand without the reader's size count seeing
it (a decompression bomb stops at the cap).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli

DECODED = frozenset({"gzip", "deflate", "br"})
_ALIASES = {"x-gzip": "gzip"}
_NOTHING = frozenset({"", "identity"})
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
    """The decoder for a response's Content-Encoding (all its header lines joined with ", "), or None when
    the bytes are plain as sent (no header, or only ``identity``); DecodingFailed for what cannot be decoded
    (the module docstring)."""
    if not content_encoding:
        return None
    if not content_encoding.isascii():
        raise DecodingFailed("Can not decode content-encoding: not ASCII")
    codings = []
    for entry in content_encoding.lower().split(","):
        coding = entry.strip(" \t")
        coding = _ALIASES.get(coding, coding)
        if coding in _NOTHING:
            continue
        if coding not in DECODED:
            raise DecodingFailed(f"Can not decode content-encoding: {coding[:64]}")
        codings.append(coding)
    if not codings:
        return None
    if len(codings) > 1:  # stacked codings: each layer would multiply a bomb's expansion; nobody sends them
        raise DecodingFailed(f"Can not decode content-encoding: {', '.join(codings)}")
    return _BrotliDecoder() if codings[0] == "br" else _ZlibDecoder(codings[0])


class _ZlibDecoder:
    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._inflate: zlib._Decompress | None = None
        self._fed = False

    def slices(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        if self._inflate is not None and self._inflate.eof:
            return  # bytes after the stream's end are ignored, as aiohttp does (and not kept)
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
        if self._fed and self._inflate is not None and not self._inflate.eof:  # cut before the stream's end
            raise DecodingFailed(f"Can not decode content-encoding: {self._encoding} (the stream is cut short)")


class _BrotliDecoder:
    def __init__(self) -> None:
        self._inflate = brotli.Decompressor()
        self._fed = False

    def slices(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._fed = True
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
        if self._fed and not self._inflate.is_finished():  # cut before the stream's end
            raise DecodingFailed("Can not decode content-encoding: br (the stream is cut short)")
