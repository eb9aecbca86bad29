"""Malformed upstream answers, through the whole gateway in-process (``build_app`` with its default transport,
h1) to raw upstreams on loopback writing the exact bytes: each is a failed attempt (502, retried and fallen
back like one) or, once a stream has started, a final error event; never relayed as if fine, never a 500.
Memory stays bounded: an endless head or event is cut at its limit and the upstream's connection dropped.

Network hygiene: the raw upstreams and the gateway bind 127.0.0.1 (the conftest's tripwire fails anything
else).
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import brotli
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sluicegate.app import build_app
from sluicegate.providers.sse import MAX_EVENT_BYTES
from sluicegate.providers.translate.frames import SSEDecoder
from sluicegate.settings import Settings
from sluicegate.upstream.h1 import HEAD_MAX_BYTES, HEAD_MAX_HEADERS
from tests.upstream.raw import Answer, answering

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
ANSWER = orjson.dumps({"id": "c1", "object": "chat.completion", "model": "m", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "hello " * 200}, "finish_reason": "stop"}]})
CHUNK = b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}'
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
CHUNKED_SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def answer(body: bytes, extra: bytes = b"", status: bytes = b"200 OK") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n" + extra
            + b"content-length: %d\r\n\r\n" % len(body) + body)


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def anthropic_event(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


ANTHROPIC_START = b"".join(anthropic_event(e) for e in [
    {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                          "content": [], "stop_reason": None, "stop_sequence": None,
                                          "usage": {"input_tokens": 3, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
     "usage": {"output_tokens": 2}},
])


class Counted:
    """An answer that writes ``head`` then ``block`` until the gateway drops the connection or ``budget``
    bytes are out: ``sent`` counts them, ``dropped`` says whether the gateway closed first."""

    def __init__(self, head: bytes, block: bytes, budget: int) -> None:
        self.head, self.block, self.budget = head, block, budget
        self.sent = 0
        self.dropped = False

    async def __call__(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self.head)
            while self.sent < self.budget:
                writer.write(self.block)
                await writer.drain()
                self.sent += len(self.block)
        except ConnectionError:
            self.dropped = True

    async def dropped_within(self, seconds: float) -> bool:
        """Did the gateway drop the connection (the upstream sees it at its next write)?"""
        for _ in range(int(seconds / 0.02)):
            if self.dropped:
                return True
            await asyncio.sleep(0.02)
        return self.dropped


@pytest.fixture
async def gateway(tmp_path) -> AsyncIterator[TestClient]:
    settings = Settings(host="127.0.0.1", data_dir=tmp_path, admin_token="t" * 32, upstream_read_timeout_s=10)
    client = TestClient(TestServer(build_app(settings), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


Post = Callable[..., Awaitable[tuple[int, dict[str, str], bytes]]]


@pytest.fixture
def post(gateway, upstreams) -> Post:
    """POST to the gateway with a raw upstream answering ``reply`` (bytes, or an Answer) as the openai or
    anthropic provider; (status, headers, body) of the client's answer."""

    async def send(reply: bytes | Answer, *, path: str = "/v1/chat/completions", body: dict | None = None,
                   provider: str = "openai", headers: dict[str, str] | None = None,
                   ) -> tuple[int, dict[str, str], bytes]:
        upstream = await upstreams(answering(reply) if isinstance(reply, bytes) else reply)
        sent = {"x-portkey-provider": provider, "x-portkey-custom-host": upstream.url(path="/v1"),
                "authorization": "Bearer sk-x", **(headers or {})}
        response = await gateway.post(path, json=body or CHAT, headers=sent)
        return response.status, dict(response.headers), await response.read()

    return send


def error_message(body: bytes) -> str:
    return str(orjson.loads(body)["error"]["message"])


# --- 1. the status line ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [b"099 Low", b"000 Zero", b"600 High", b"999 Nope"])
async def test_a_status_outside_200_to_599_is_a_502(post, status):
    code, _, body = await post(answer(b"{}", status=status))
    assert code == 502, body
    assert error_message(body).endswith("failed: InvalidResponse")


async def test_a_malformed_answer_falls_back_like_any_failed_attempt(gateway, upstreams):
    good = await upstreams(answering(answer(ANSWER)))
    for malformed in [answer(b"{}", status=b"099 Low"),
                      answer(gzip.compress(ANSWER)[:-20], b"content-encoding: gzip\r\n"),
                      answer(gzip.compress(gzip.compress(ANSWER)), b"content-encoding: gzip, gzip\r\n")]:
        bad = await upstreams(answering(malformed))
        config = {"strategy": {"mode": "fallback"}, "targets": [
            {"provider": "openai", "api_key": "sk-x", "custom_host": bad.url(path="/v1")},
            {"provider": "openai", "api_key": "sk-x", "custom_host": good.url(path="/v1")}]}
        response = await gateway.post("/v1/chat/completions", json=CHAT,
                                      headers={"x-portkey-config": orjson.dumps(config).decode()})
        assert response.status == 200 and await response.read() == ANSWER, malformed[:40]
        assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


# --- 2. the head's size ------------------------------------------------------------------------------


async def test_a_head_that_never_ends_is_cut_at_its_limit(post):
    filler = Counted(b"HTTP/1.1 200 OK\r\n", b"X-Filler: " + b"v" * 1000 + b"\r\n", 64 * 1024 * 1024)
    code, _, body = await post(filler)
    assert code == 502 and error_message(body).endswith("failed: InvalidResponse")
    assert await filler.dropped_within(5) and filler.sent < 32 * 1024 * 1024  # the limit, and socket buffers


async def test_a_head_beyond_its_limits_is_a_502_and_one_within_them_is_answered(post):
    for case, extra in [
        ("one long line", b"x-long: " + b"v" * (HEAD_MAX_BYTES + 1) + b"\r\n"),
        ("too many fields", b"".join(b"x-h%d: v\r\n" % n for n in range(HEAD_MAX_HEADERS))),
        ("too large in all", b"".join(b"x-h%d: %s\r\n" % (n, b"v" * 1000) for n in range(70))),
    ]:
        code, _, body = await post(answer(ANSWER, extra))
        assert code == 502, case
        assert error_message(body).endswith("failed: InvalidResponse")
    within = b"".join(b"x-h%d: %s\r\n" % (n, b"v" * 1000) for n in range(60))  # 60 KiB, 62 fields
    code, headers, body = await post(answer(ANSWER, within))
    assert (code, body) == (200, ANSWER) and headers["x-h59"] == "v" * 1000


# --- 3. an event that never ends ---------------------------------------------------------------------


async def test_an_endless_event_of_a_translated_stream_fails_it_at_the_limit(post):
    endless = Counted(SSE_HEAD + b"data: ", b"z" * 65536, 4 * MAX_EVENT_BYTES)
    code, _, body = await post(endless, path="/v1/messages", body={**MESSAGES, "stream": True})
    events = SSEDecoder().push(body)
    assert code == 200 and events[-1][0] == "error"
    assert events[-1][1]["error"]["message"] == (
        f"the upstream sent an event larger than the gateway's limit of {MAX_EVENT_BYTES} bytes")
    assert await endless.dropped_within(5) and endless.sent < MAX_EVENT_BYTES + 16 * 1024 * 1024


# --- 4, 5. content encodings -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [b"content-encoding: gzip, identity\r\n", b"content-encoding: x-gzip\r\n",
                                      b"content-encoding: identity, GZIP\r\n",
                                      b"content-encoding: identity\r\ncontent-encoding: gzip\r\n"])
async def test_listed_or_aliased_gzip_is_decoded(post, encoding):
    code, headers, body = await post(answer(gzip.compress(ANSWER), encoding))
    assert (code, body) == (200, ANSWER)
    assert "content-encoding" not in {name.lower() for name in headers}


@pytest.mark.parametrize("encoding", [b"content-encoding: gzip, gzip\r\n",
                                      b"content-encoding: gzip\r\ncontent-encoding: gzip\r\n",
                                      b"content-encoding: compress\r\n", b"content-encoding: bogus\r\n"])
async def test_codings_that_are_not_decoded_are_a_502_not_bytes_under_a_dropped_header(post, encoding):
    code, _, body = await post(answer(gzip.compress(gzip.compress(ANSWER)), encoding))
    assert code == 502, body[:100]
    assert error_message(body).endswith("failed: ContentEncodingError")


@pytest.mark.parametrize("encoding", ["gzip", "br"])
async def test_a_cut_compressed_body_is_a_502(post, encoding):
    whole = gzip.compress(ANSWER) if encoding == "gzip" else brotli.compress(ANSWER)
    cut = whole[:-20] if encoding == "gzip" else whole[:len(whole) // 2]
    code, _, body = await post(answer(cut, b"content-encoding: " + encoding.encode() + b"\r\n"))
    assert code == 502, body[:100]
    assert error_message(body).endswith("failed: ContentEncodingError")


async def test_a_compressed_stream_is_decoded_and_a_cut_one_fails(post):
    stream = (CHUNK + b"\n\n") * 50 + b"data: [DONE]\n\n"
    head = SSE_HEAD.replace(b"\r\n\r\n", b"\r\ncontent-encoding: gzip\r\n\r\n")
    code, _, body = await post(head + gzip.compress(stream), body={**CHAT, "stream": True})
    assert (code, body) == (200, stream)
    code, _, body = await post(head + gzip.compress(stream)[:-20], body={**CHAT, "stream": True})
    assert code == 200 and body.startswith(CHUNK)
    assert body.endswith(b'{"error":{"message":"upstream stream failed: ContentEncodingError",'
                         b'"type":"upstream_stream_error","param":null,"code":null}}\n\n')


# --- 6, 8. the end of a relayed OpenAI stream --------------------------------------------------------


DONE_CRLF = CHUNK + b"\r\n\r\ndata:[DONE]\r\n\r\n"
OPENAI_ENDS = [  # (what the upstream streams, what the client gets of it: None for a cut stream)
    (CHUNK + b"\n\ndata:[DONE]\n\n", CHUNK + b"\n\ndata:[DONE]\n\n"),
    (CHUNK + b"\n\ndata: [DONE]\n\n: keep-alive\n\n", CHUNK + b"\n\ndata: [DONE]\n\n"),  # nothing after the end
    (CHUNK + b"\r\rdata: [DONE]\r\r", CHUNK + b"\r\rdata: [DONE]\r\r"),  # CR alone ends lines too
    (DONE_CRLF + b": ping\r\n\r\n", DONE_CRLF),
    (CHUNK + b"\n\ndata: [DONE]\n\n" + CHUNK + b"\n\n", CHUNK + b"\n\ndata: [DONE]\n\n"),
    (CHUNK + b"\n\ndata: [DO", None),
    (CHUNK + b"\n\n: data: [DONE]\n\n", None),
]


async def test_a_relayed_openai_stream_is_clean_when_its_last_event_is_done(post):
    for stream, relayed in OPENAI_ENDS:
        code, _, body = await post(SSE_HEAD + stream, body={**CHAT, "stream": True})
        if relayed is not None:
            assert code == 200 and body == relayed, stream
            continue
        whole = stream[:stream.rindex(b"\n\n") + 2]  # an unfinished last event is not relayed
        assert code == 200 and body.startswith(whole), stream
        added = body[len(whole):]  # what the gateway wrote after the upstream's last whole event
        assert orjson.loads(added.removeprefix(b"event: error\ndata: "))["error"]["message"] == (
            "upstream closed the stream before it finished")


# --- 7. the end of a relayed Anthropic stream --------------------------------------------------------


CRLF_STOP = b'event: message_stop\r\ndata: {"type": "message_stop"}\r\n\r\n'
ANTHROPIC_ENDS = [  # (the upstream's last bytes, what the client gets of them: None for a cut stream)
    (anthropic_event({"type": "message_stop"}), anthropic_event({"type": "message_stop"})),
    (CRLF_STOP + b": bye\r\n\r\n", CRLF_STOP),  # nothing after the end is relayed
    (b'event: message_stop\ndata: {"type": "mess', None),
    (b"event: message_stop\n\n", None),
    (b"event: message_stop\n", None),
]


async def test_a_relayed_anthropic_stream_is_clean_only_after_a_whole_message_stop(post):
    for end, relayed in ANTHROPIC_ENDS:
        code, _, body = await post(CHUNKED_SSE_HEAD + chunked(ANTHROPIC_START, end), path="/v1/messages",
                                   body={**MESSAGES, "stream": True}, provider="anthropic")
        if relayed is not None:
            assert code == 200 and body == ANTHROPIC_START + relayed, end
            continue
        whole = end[:end.rindex(b"\n\n") + 2] if b"\n\n" in end else b""  # an unfinished event is not relayed
        assert code == 200 and body.startswith(ANTHROPIC_START + whole)
        added = body[len(ANTHROPIC_START + whole):]  # what the gateway wrote after the upstream's last whole event
        assert added.startswith(b"event: error\ndata: "), (end, added)
