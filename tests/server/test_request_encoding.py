"""Compressed request bodies (Content-Encoding gzip, deflate, br): decoded in bounded slices and cut at
the body limit, so a bomb is a quick 413 and never stalls other requests; a broken encoding is a 400."""

from __future__ import annotations

import threading
import time
import zlib

import brotli
import httpx
import orjson
import pytest

from tests.gateway import GatewayProcess

CHAT = {"model": "m", "messages": [{"role": "user", "content": "compressed hello"}]}


def _deflate(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


ENCODERS = {
    "gzip": lambda data: _deflate(data, 31),
    "x-gzip": lambda data: _deflate(data, 31),
    "deflate": lambda data: _deflate(data, 15),  # zlib-wrapped, as RFC 9110 says
    "raw deflate": lambda data: _deflate(data, -15),  # what some clients send as "deflate"
    "br": brotli.compress,
}


def _zeros_bomb(encoding: str, expanded: int) -> bytes:
    """``expanded`` zero bytes, compressed; built block by block so the test never holds them."""
    block = b"\0" * (1 << 20)
    if encoding == "br":
        compressor = brotli.Compressor(quality=5)
        return b"".join([compressor.process(block) for _ in range(expanded >> 20)] + [compressor.finish()])
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([compressor.compress(block) for _ in range(expanded >> 20)] + [compressor.flush()])


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    bomb = _zeros_bomb("gzip", 1 << 30)
    assert len(bomb) <= 1100 * 1024  # about 1 MiB on the wire, 1 GiB once decoded
    return bomb


def _headers(upstream, encoding: str) -> dict[str, str]:
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1,
            "content-type": "application/json", "content-encoding": encoding}


@pytest.mark.parametrize("name", list(ENCODERS))
def test_a_compressed_body_is_decoded_and_forwarded_plain(gateway, upstream, name):
    encoding = "deflate" if name == "raw deflate" else name
    raw = orjson.dumps(CHAT)
    response = httpx.post(f"{gateway.v1}/chat/completions", content=ENCODERS[name](raw),
                          headers=_headers(upstream, encoding))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "echo: compressed hello"
    assert upstream.last.body == raw
    assert "content-encoding" not in upstream.last.headers


def test_a_gzip_bomb_is_refused_quickly_while_other_requests_are_served(gateway, upstream, gzip_bomb):
    result: dict = {}

    def send_bomb() -> None:
        started = time.monotonic()
        result["response"] = httpx.post(f"{gateway.v1}/chat/completions", content=gzip_bomb,
                                        headers=_headers(upstream, "gzip"), timeout=60)
        result["elapsed"] = time.monotonic() - started

    slowest = 0.0
    with httpx.Client(timeout=30) as client:
        client.get(f"{gateway.v1}/health")  # a warm keep-alive connection: only the server's time counts
        thread = threading.Thread(target=send_bomb)
        thread.start()
        answered = 0
        while thread.is_alive() or answered < 5:
            started = time.monotonic()
            assert client.get(f"{gateway.v1}/health").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            answered += 1
            time.sleep(0.01)
        thread.join()
    response = result["response"]
    assert response.status_code == 413, response.text
    assert response.json() == {"status": "failure",
                               "message": "Request body is larger than the gateway's limit of 33554432 bytes"}
    assert result["elapsed"] < 5
    # Unbounded decoding held the loop for 2.7 s here; slices keep it to milliseconds. The bound leaves
    # room for a loaded 2-core machine's scheduling, not for decoding.
    assert slowest < 0.5, slowest
    assert upstream.received == []


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_bomb_is_cut_at_the_configured_limit(tmp_path, upstream, encoding):
    process = GatewayProcess(tmp_path, env={"SLUICEGATE_MAX_BODY_BYTES": str(1 << 20)}).start()
    try:
        response = httpx.post(f"{process.v1}/chat/completions", content=_zeros_bomb(encoding, 64 << 20),
                              headers=_headers(upstream, encoding), timeout=60)
        assert response.status_code == 413
        assert response.json()["message"] == "Request body is larger than the gateway's limit of 1048576 bytes"
    finally:
        process.stop()
    assert upstream.received == []


BROKEN = [
    ("gzip", b"\x1f\x8bnot gzip at all", "Invalid request body: it is not valid gzip data"),
    ("gzip", _deflate(orjson.dumps(CHAT), 31)[:-12], "Invalid request body: the gzip data is truncated"),
    ("deflate", b"\x78\x9c\xff\xff garbage", "Invalid request body: it is not valid deflate data"),
    ("br", b"\xff\xff\xff not brotli", "Invalid request body: it is not valid br data"),
]


@pytest.mark.parametrize(("encoding", "body", "message"), BROKEN, ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(BROKEN)])
def test_a_broken_encoding_is_a_400(gateway, upstream, encoding, body, message):
    response = httpx.post(f"{gateway.v1}/chat/completions", content=body, headers=_headers(upstream, encoding))
    assert response.status_code == 400, response.text
    assert response.json() == {"status": "failure", "message": message}
    assert upstream.received == []


@pytest.mark.parametrize("encoding", ["compress", "zstd", "gzip, br", "bogus"])
def test_an_unsupported_encoding_is_a_415(gateway, upstream, encoding):
    response = httpx.post(f"{gateway.v1}/chat/completions", content=b"{}", headers=_headers(upstream, encoding))
    assert response.status_code == 415, response.text
    assert response.json() == {"status": "failure", "message": (
        f"Unsupported Content-Encoding '{encoding}': send the body as is, or gzip, deflate or br")}
    assert upstream.received == []
