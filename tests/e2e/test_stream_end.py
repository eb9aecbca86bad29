"""A relayed stream's answer ends with its last event, through a real gateway process, on both of its edges.

An upstream may send a stream's last event (``data: [DONE]``, Anthropic's ``message_stop``) and end its HTTP
body only later: a server that flushes the terminating chunk on its next write, a proxy in between. The gateway
used to end the client's answer only once the upstream's body ended, so a client that reads its answer to the
end (the anthropic SDK does, after the last event; so does any HTTP client reading the whole body) waited that
long too. Now the answer's end goes out with its last event; the upstream's rest is read and dropped after.
Raw upstreams on loopback hold their body's end for ``LINGER_S``.

Network hygiene: the raw upstream and the gateways bind 127.0.0.1; the clients target them only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.gateway import GatewayProcess
from tests.upstream.raw import Upstream, in_a_thread

LINGER_S = 3.0  # how long the upstream holds its body's end after the stream's last event
SOON_S = 1.5  # a client that has its whole answer within this did not wait for the upstream's end
CHUNK = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
         b'"choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}\n\n')
OPENAI_EVENTS = [CHUNK, b"data: [DONE]\n\n"]
ANTHROPIC_EVENTS = [
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n',
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"hello"}}\n\n',
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
    b'"stop_sequence":null},"usage":{"output_tokens":2}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """Streams each event as a chunk, then holds the body's end (and, for ``/comment``, a comment after the
    last event) for LINGER_S; in a thread of its own, so the gateway's answer is timed apart from it."""

    async def answer(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = head.split(b" ", 2)[1]
        events = ANTHROPIC_EVENTS if path.endswith(b"/messages") else OPENAI_EVENTS
        writer.write(HEAD + b"".join(_chunk(event) for event in events))
        await writer.drain()
        await asyncio.sleep(LINGER_S)
        writer.write((_chunk(b": after the end\n\n") if b"/comment/" in path else b"") + b"0\r\n\r\n")
        await writer.drain()

    with in_a_thread(answer) as server:  # answers still holding their ends are cancelled at its end
        yield server


@pytest.fixture(scope="module", params=["native edge", "aiohttp's edge"])
def gateway(request, tmp_path_factory) -> Iterator[GatewayProcess]:
    """The default gateway (its native edge serves these requests), and one with the access log on, whose
    requests all go through aiohttp's server."""
    env = {"SLUICEGATE_ACCESS_LOG": "on"} if request.param == "aiohttp's edge" else {}
    process = GatewayProcess(tmp_path_factory.mktemp("stream-end"), env=env).start()
    yield process
    process.stop()


def _headers(upstream: Upstream, provider: str, prefix: str = "") -> dict[str, str]:
    return {"x-portkey-provider": provider, "x-portkey-custom-host": f"http://127.0.0.1:{upstream.port}{prefix}/v1"}


def test_the_answers_bytes_end_with_the_last_event_and_nothing_after(gateway, upstream):
    started = time.monotonic()
    with httpx.stream("POST", f"{gateway.v1}/chat/completions", timeout=30, trust_env=False,
                      headers={**_headers(upstream, "openai", "/comment"), "authorization": "Bearer sk-not-a-secret"},
                      json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}) as answer:
        body = answer.read()
    assert time.monotonic() - started < SOON_S
    assert answer.status_code == 200 and body == b"".join(OPENAI_EVENTS)  # no error event, nor the comment


def test_an_anthropic_stream_ends_for_the_client_with_its_message_stop(gateway, upstream):
    client = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-not-a-secret", max_retries=0, timeout=30,
                                 default_headers=_headers(upstream, "anthropic"))
    started = time.monotonic()
    with client.messages.stream(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert time.monotonic() - started < SOON_S
    assert text == "hello" and message.stop_reason == "end_turn"


def test_the_next_request_on_the_connection_is_answered_after_the_upstreams_rest_is_read(gateway, upstream):
    """The answer's end is out early; the connection's next request still follows the first one's end (the
    gateway reads the upstream's rest first, so that connection can serve again): both answers arrive whole."""
    with httpx.Client(base_url=gateway.v1, timeout=30, trust_env=False,
                      headers={**_headers(upstream, "openai"), "authorization": "Bearer sk-not-a-secret"}) as client:
        bodies = []
        for _ in range(2):
            bodies.append(client.post("/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}).content)
    assert bodies == [b"".join(OPENAI_EVENTS)] * 2
