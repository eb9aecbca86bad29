"""Malformed upstream answers as the openai SDK sees them through a real gateway process: raw loopback upstreams
write the exact bytes (tests/upstream/test_malformed_answers.py covers every case in-process).

Before: a status of 099 reached the SDK as an invalid HTTP answer (APIConnectionError), a body sent with
``Content-Encoding: gzip, identity`` reached it as gzip bytes under a dropped header (a decoding error), and a
stream ending ``data:[DONE]`` got an error chunk appended after its end.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest

from tests.gateway import GatewayProcess
from tests.upstream.raw import Upstream, answering, in_a_thread

ANSWER = orjson.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "decoded"}, "finish_reason": "stop"}]})
CHUNK = (b'data:{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
         b'"choices":[{"index":0,"delta":{"content":"streamed"},"finish_reason":null}]}\n\n')
ANSWERS = {
    "/status099/v1/chat/completions": b"HTTP/1.1 099 Low\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
                                      b"\r\n{}",
    "/identity/v1/chat/completions": b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                     b"content-encoding: gzip, identity\r\ncontent-length: %d\r\n\r\n%s"
                                     % (len(gzip.compress(ANSWER)), gzip.compress(ANSWER)),
    "/nospace/v1/chat/completions": b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                                    + CHUNK + b"data:[DONE]\n\n",
    # A header value in UTF-8 (RFC 9110 calls such bytes obs-text; servers send them): relayed as its bytes.
    "/utf8/v1/chat/completions": b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-note: caf\xc3\xa9 \xe2\x98\x95\r\n"
                                b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER),
    "/latin1/v1/chat/completions": b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-note: caf\xe9\r\n"
                                  b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER),
    "/latin1ct/v1/chat/completions": b"HTTP/1.1 200 OK\r\ncontent-type: application/json; note=caf\xe9\r\n"
                                    b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER),
    "/utf8stream/v1/chat/completions": b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                       b"x-note: caf\xc3\xa9 \xe2\x98\x95\r\nconnection: close\r\n\r\n"
                                       + CHUNK + b"data: [DONE]\n\n",
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """One raw upstream on loopback, in a thread of its own; the path picks the answer."""

    async def answer(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = head.split(b" ", 2)[1].decode()
        await answering(ANSWERS[path])(head, reader, writer)

    with in_a_thread(answer) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("malformed-answers")).start()
    yield process
    process.stop()


def client(gateway: GatewayProcess, upstream: Upstream, case: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key="sk-not-a-secret", max_retries=0, timeout=30,
                         default_headers={"x-portkey-provider": "openai",
                                          "x-portkey-custom-host": f"http://127.0.0.1:{upstream.port}/{case}/v1"})


def test_a_status_outside_200_599_is_a_502_the_sdk_can_read(gateway, upstream) -> None:
    with pytest.raises(openai.APIStatusError) as failed:
        client(gateway, upstream, "status099").chat.completions.create(model="m", messages=[
            {"role": "user", "content": "hi"}])
    assert failed.value.status_code == 502
    assert "InvalidResponse" in failed.value.response.text


def test_identity_beside_gzip_is_decoded(gateway, upstream) -> None:
    answer = client(gateway, upstream, "identity").chat.completions.create(model="m", messages=[
        {"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "decoded"


def test_a_stream_ending_data_done_without_a_space_ends_cleanly(gateway, upstream) -> None:
    chunks = list(client(gateway, upstream, "nospace").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert [chunk.choices[0].delta.content for chunk in chunks] == ["streamed"]
    # The SDK stops reading at [DONE]: the bytes after it (where an error chunk was appended) are read raw.
    with httpx.stream("POST", f"{gateway.v1}/chat/completions", timeout=30, json={
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}, headers={
            "x-portkey-provider": "openai", "authorization": "Bearer sk-not-a-secret",
            "x-portkey-custom-host": f"http://127.0.0.1:{upstream.port}/nospace/v1"}) as relayed:
        body = relayed.read()
    assert relayed.status_code == 200 and body.endswith(b"data:[DONE]\n\n") and b"error" not in body


def _chunked(body: bytes) -> Iterator[bytes]:
    yield body  # a body of unknown length goes out chunked: aiohttp's own path serves it, not the native edge


@pytest.mark.parametrize("case", ["utf8", "utf8stream"])
@pytest.mark.parametrize("edge", ["native", "aiohttp"])
def test_an_upstream_header_in_utf8_reaches_the_client_as_its_bytes(gateway, upstream, case, edge) -> None:
    # The upstream client read header values as latin-1 and the edges wrote them as UTF-8: "café ☕" reached
    # the client as "cafÃ© â\x98\x95", every byte past ASCII encoded twice.
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                         "stream": case == "utf8stream"})
    with httpx.stream("POST", f"{gateway.v1}/chat/completions", timeout=30,
                      content=body if edge == "native" else _chunked(body), headers={
            "content-type": "application/json", "x-portkey-provider": "openai",
            "authorization": "Bearer sk-not-a-secret",
            "x-portkey-custom-host": f"http://127.0.0.1:{upstream.port}/{case}/v1"}) as relayed:
        relayed.read()
    assert relayed.status_code == 200
    assert (b"x-note", "café ☕".encode()) in relayed.headers.raw


@pytest.mark.parametrize("edge", ["native", "aiohttp"])
def test_an_upstream_header_byte_that_is_not_utf8_is_left_out_by_both_edges(gateway, upstream, edge) -> None:
    # What aiohttp's writer does with such a byte (it reads header values as UTF-8, as the client does now).
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    relayed = httpx.post(f"{gateway.v1}/chat/completions", timeout=30,
                         content=body if edge == "native" else _chunked(body), headers={
            "content-type": "application/json", "x-portkey-provider": "openai",
            "authorization": "Bearer sk-not-a-secret",
            "x-portkey-custom-host": f"http://127.0.0.1:{upstream.port}/latin1/v1"})
    assert relayed.status_code == 200 and orjson.loads(relayed.content) == orjson.loads(ANSWER)
    assert (b"x-note", b"caf") in relayed.headers.raw


def test_a_cached_answer_whose_content_type_is_not_utf8_is_replayed_as_first_sent(gateway, upstream) -> None:
    # The cache keeps the content type, encoded as JSON: a value holding a byte that is not UTF-8 must not
    # cost the answer, nor its entry.
    config = orjson.dumps({"provider": "openai", "api_key": "sk-not-a-secret", "cache": {"mode": "simple"},
                           "custom_host": f"http://127.0.0.1:{upstream.port}/latin1ct/v1"}).decode()
    answers = [httpx.post(f"{gateway.v1}/chat/completions", timeout=30, headers={"x-portkey-config": config},
                          json={"model": "m", "messages": [{"role": "user", "content": "latin-1 content type"}]})
               for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.headers["x-portkey-cache-status"] for a in answers] == ["MISS", "HIT"]
    first, second = (dict(a.headers.raw)[b"content-type"] for a in answers)
    assert first == second == b"application/json; note=caf" and answers[1].content == answers[0].content
