"""The request-body decoders, in process: every step yields at most one slice, whatever the input."""

from __future__ import annotations

import zlib

import brotli
import pytest

from sluicegate.server.bodies import SLICE, UnsupportedEncoding, decoder_for


def _zeros(encoding: str, size: int) -> bytes:
    if encoding == "br":
        return brotli.compress(b"\0" * size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    return compressor.compress(b"\0" * size) + compressor.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_each_step_yields_at_most_one_slice_and_all_of_it_in_the_end(encoding):
    size = 16 * 1024 * 1024 + 123
    decoder = decoder_for(encoding)
    pieces = list(decoder.slices(_zeros(encoding, size)))
    # Brotli stops growing its output buffer once it reaches the limit, in blocks: up to twice the slice.
    assert max(len(piece) for piece in pieces) <= (2 * SLICE if encoding == "br" else SLICE)
    assert sum(len(piece) for piece in pieces) == size
    assert decoder.finished()


def test_a_gzip_stream_fed_byte_by_byte_decodes_completely():
    data = b"hello, " * 1000
    decoder = decoder_for("GZip")
    wire = zlib.compressobj(6, zlib.DEFLATED, 31)
    wire = wire.compress(data) + wire.flush()
    out = b"".join(piece for i in range(len(wire)) for piece in decoder.slices(wire[i:i + 1]))
    assert out == data and decoder.finished()


@pytest.mark.parametrize("header", [None, "", "identity", " Identity "])
def test_no_encoding_needs_no_decoder(header):
    assert decoder_for(header) is None


@pytest.mark.parametrize("header", ["compress", "zstd", "gzip, br", "bogus"])
def test_other_encodings_are_refused_with_415(header):
    with pytest.raises(UnsupportedEncoding) as caught:
        decoder_for(header)
    assert caught.value.status == 415
