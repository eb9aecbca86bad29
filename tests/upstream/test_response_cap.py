"""An upstream that answers with an endless (or enormous) non-streamed body: the gateway stops reading at
SLUICEGATE_MAX_UPSTREAM_BODY_BYTES, answers 502 quickly, drops the connection, and keeps its memory."""

from __future__ import annotations

import time
import zlib

import httpx
import pytest

from tests.fakes.endless import EndlessUpstream
from tests.gateway import GatewayProcess

CAP = 1024 * 1024
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def capped_gateway(tmp_path_factory):
    process = GatewayProcess(tmp_path_factory.mktemp("capped"),
                             env={"SLUICEGATE_MAX_UPSTREAM_BODY_BYTES": str(CAP)}).start()
    yield process
    process.stop()


def _gzip_bomb(expanded: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    return b"".join([compressor.compress(block) for _ in range(expanded >> 20)] + [compressor.flush()])


HEADS = {
    "endless, no length": b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n",
    "endless, chunked": b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    "length announced over the cap":
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n",
    "error status, endless": b"HTTP/1.1 500 Oops\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n",
}


def _chunked_block() -> bytes:
    data = b"x" * 65536
    return b"%x\r\n" % len(data) + data + b"\r\n"


@pytest.mark.parametrize("case", list(HEADS))
def test_an_endless_upstream_body_is_cut_at_the_cap_with_a_502(capped_gateway, case):
    block = _chunked_block() if "chunked" in case else b"x" * 65536
    upstream = EndlessUpstream(HEADS[case], block=block, budget=256 * 1024 * 1024).start()
    try:
        started = time.monotonic()
        response = httpx.post(f"{capped_gateway.v1}/chat/completions", json=CHAT, timeout=60,
                              headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1})
        elapsed = time.monotonic() - started
        assert response.status_code == 502, response.text[:300]
        error = response.json()["error"]
        assert error["message"] == (f"openai: the upstream's response body is larger than the gateway's "
                                    f"limit of {CAP} bytes")
        assert elapsed < 5
        deadline = time.monotonic() + 10
        while upstream.dropped == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstream.dropped == 1  # the gateway closed the connection instead of reading on
        assert upstream.sent < CAP + 16 * 1024 * 1024  # the cap plus what socket buffers hold
    finally:
        upstream.stop()


def test_a_gzip_bomb_from_the_upstream_is_cut_at_the_cap(capped_gateway):
    bomb = _gzip_bomb(256 * 1024 * 1024)
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
            b"content-length: %d\r\n\r\n" % len(bomb))
    upstream = EndlessUpstream(head, block=bomb, budget=len(bomb)).start()
    try:
        response = httpx.post(f"{capped_gateway.v1}/chat/completions", json=CHAT, timeout=60,
                              headers={"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1})
        assert response.status_code == 502
        assert f"limit of {CAP} bytes" in response.json()["error"]["message"]
    finally:
        upstream.stop()


def test_memory_comes_back_after_many_oversized_answers(tmp_path):
    cap = 32 * 1024 * 1024  # large enough that keeping what was read would show in RSS
    process = GatewayProcess(tmp_path, env={"SLUICEGATE_MAX_UPSTREAM_BODY_BYTES": str(cap)}).start()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
    upstream = EndlessUpstream(head, budget=512 * 1024 * 1024).start()
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1}
    try:
        httpx.post(f"{process.v1}/chat/completions", json=CHAT, headers=headers, timeout=60)  # warm up
        baseline = rss_bytes(process.proc.pid)
        for _ in range(8):
            response = httpx.post(f"{process.v1}/chat/completions", json=CHAT, headers=headers, timeout=60)
            assert response.status_code == 502
        assert upstream.sent < 8 * (cap + 16 * 1024 * 1024)
        # 8 answers of 32 MiB went through; what stays is at most a couple of buffers' worth.
        assert rss_bytes(process.proc.pid) - baseline < 2 * cap
    finally:
        upstream.stop()
        process.stop()
