"""upstream/decoding.py: which Content-Encodings are decoded, which fail the answer, and a body cut before its
encoded stream ends is broken (the transports turn DecodingFailed into ContentEncodingError, a 502)."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest

from sluicegate.upstream.decoding import DecodingFailed, decoder_for

PLAIN = b'{"choices":[{"text":"' + b"ha" * 5000 + b'"}]}'


def decoded(header: str, body: bytes, step: int = 1000) -> bytes:
    decoder = decoder_for(header)
    assert decoder is not None
    out = b"".join(piece for at in range(0, len(body), step) for piece in decoder.slices(body[at:at + step]))
    decoder.finish()
    return out


def test_identity_means_nothing_and_x_gzip_is_gzip():
    for header in (None, "", "identity", "IDENTITY", "identity, identity", " , identity"):
        assert decoder_for(header) is None, header
    for header in ("gzip", "x-gzip", "X-GZIP", "gzip, identity", "identity,gzip", "gzip,"):
        assert decoded(header, gzip.compress(PLAIN)) == PLAIN, header


def test_other_codings_fail_the_answer():
    for header in ("gzip, gzip", "gzip, br", "zstd", "compress", "x-compress", "bogus", "gzip, bogus", "gzïp"):
        with pytest.raises(DecodingFailed):
            decoder_for(header)


def test_a_body_cut_before_its_stream_ends_is_broken():
    for header, body in [
        ("gzip", gzip.compress(PLAIN)[:-20]),
        ("gzip", gzip.compress(PLAIN)[:-4]),  # only the trailer's length is missing
        ("deflate", zlib.compress(PLAIN)[:-10]),
        ("br", brotli.compress(PLAIN)[:len(brotli.compress(PLAIN)) // 2]),
    ]:
        with pytest.raises(DecodingFailed):
            decoded(header, body)


def test_bytes_after_a_gzip_stream_are_ignored_not_kept():
    decoder = decoder_for("gzip")
    assert decoder is not None
    assert b"".join(decoder.slices(gzip.compress(PLAIN))) == PLAIN
    for _ in range(100):
        assert list(decoder.slices(b"trailing garbage" * 1000)) == []
    assert decoder._inflate.unused_data == b""  # type: ignore[attr-defined]
    decoder.finish()
