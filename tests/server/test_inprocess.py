"""The whole app in-process: build_app on a fake transport, driven through aiohttp's test client (the
store is a SQLite file in tmp_path; no upstream socket is ever opened). Routes, headers, streaming relay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sluicegate.app import build_app
from sluicegate.server.appkeys import GATEWAY
from sluicegate.server.native import NATIVE
from sluicegate.settings import Settings
from tests.fakes.transport import FakeTransport, chat_completion, content_chunk, json_response, sse_response
from tests.inprocess import HOST
from tests.telemetry.test_journal import lines

HEADERS = {"x-portkey-provider": "openai", "x-portkey-custom-host": HOST, "authorization": "Bearer sk-test-12345"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def client_for(tmp_path) -> AsyncIterator:
    clients: list[TestClient] = []

    async def make(transport: FakeTransport) -> TestClient:
        app = build_app(Settings(data_dir=tmp_path, admin_token="t" * 32), transport=transport)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_chat_answers_with_the_portkey_headers(client_for):
    transport = FakeTransport(script=[json_response(chat_completion("hello"))])
    client = await client_for(transport)
    response = await client.post("/v1/chat/completions", json=CHAT, headers=HEADERS)
    assert response.status == 200 and (await response.json())["choices"][0]["message"]["content"] == "hello"
    assert response.headers["x-portkey-cache-status"] == "DISABLED"
    assert response.headers["x-portkey-last-used-option-index"] == "config"
    assert response.headers["x-portkey-retry-attempt-count"] == "0"
    assert transport.sent[0].url == HOST + "/chat/completions"


async def test_a_cache_block_answers_the_second_request_from_the_cache(client_for):
    transport = FakeTransport(script=[json_response(chat_completion())])
    client = await client_for(transport)
    config = {"provider": "openai", "api_key": "sk-x", "custom_host": HOST, "cache": {"mode": "simple"}}
    headers = {"x-portkey-config": orjson.dumps(config).decode()}
    first = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert first.status == 200 and first.headers["x-portkey-cache-status"] == "MISS"
    await client.app[GATEWAY].cache.drain()
    second = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert second.status == 200 and second.headers["x-portkey-cache-status"] == "HIT"
    assert await second.read() == await first.read() and len(transport.sent) == 1


async def test_a_cached_stream_is_replayed_through_the_relay_with_the_same_events(client_for):
    transport = FakeTransport(script=[sse_response(content_chunk("Hel"), content_chunk("lo"), "[DONE]")])
    client = await client_for(transport)
    config = {"provider": "openai", "api_key": "sk-x", "custom_host": HOST, "cache": {"mode": "simple"}}
    headers = {"x-portkey-config": orjson.dumps(config).decode()}
    streamed = {**CHAT, "stream": True}
    first = await client.post("/v1/chat/completions", json=streamed, headers=headers)
    original = await first.read()
    await client.app[GATEWAY].cache.drain()
    second = await client.post("/v1/chat/completions", json=streamed, headers=headers)
    assert second.headers["x-portkey-cache-status"] == "HIT"
    assert second.headers["content-type"].startswith("text/event-stream")
    assert await second.read() == original and original.endswith(b"data: [DONE]\n\n")
    assert len(transport.sent) == 1


async def test_a_request_without_provider_or_config_is_a_400_envelope(client_for):
    client = await client_for(FakeTransport())
    response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status == 400
    assert await response.json() == {"status": "failure",
                                     "message": "Either x-portkey-config or x-portkey-provider header is required"}


async def test_the_passthrough_route_sends_the_url_tail_with_its_query(client_for):
    transport = FakeTransport(script=[json_response({"data": []})])
    client = await client_for(transport)
    response = await client.get("/v1/models?limit=2", headers=HEADERS)
    assert response.status == 200 and transport.sent[0].url == HOST + "/models?limit=2"


async def test_a_stream_is_relayed_and_a_break_after_the_start_ends_with_an_error_event(client_for):
    upstream = sse_response(content_chunk("Hel"), content_chunk("lo"))  # no [DONE]: cut short
    client = await client_for(FakeTransport(script=[upstream]))
    response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=HEADERS)
    text = await response.text()
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in text.split("\n\n") if line]
    assert [orjson.loads(e[6:])["choices"][0]["delta"]["content"] for e in events[:2]] == ["Hel", "lo"]
    assert events[2].startswith("event: error\ndata: ")  # named: the portkey-ai Node SDK raises only then
    assert orjson.loads(events[2].removeprefix("event: error\ndata: "))["error"] == {
        "message": "upstream closed the stream before it finished", "type": "upstream_stream_error",
        "param": None, "code": None}
    assert upstream.closed


async def test_a_clean_stream_ends_with_done_and_no_error(client_for):
    upstream = sse_response(content_chunk("a"), "[DONE]")
    client = await client_for(FakeTransport(script=[upstream]))
    response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=HEADERS)
    text = await response.text()
    assert text.endswith("data: [DONE]\n\n") and "error" not in text


async def test_an_answer_aiohttp_writes_is_prepared_only_once_its_record_is_journaled(tmp_path):
    """The routes do not wait for the journal (Telemetry.answered): on aiohttp's path the app's response-prepare
    hook journals the answered records before the answer's head is written."""
    app = build_app(Settings(data_dir=tmp_path, admin_token="t" * 32),
                    transport=FakeTransport(script=[json_response(chat_completion("hello"))]))
    journaled_at_prepare: list[bool] = []

    async def check(request, response) -> None:  # type: ignore[no-untyped-def]
        drafts = lines(tmp_path / "journal")
        journaled_at_prepare.append(any(draft["row"]["trace_id"] == "on-aiohttps-path" for draft in drafts))

    app.on_response_prepare.append(check)  # after the app's own hook
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        response = await client.post("/v1/chat/completions", json=CHAT,
                                     headers={**HEADERS, "x-portkey-trace-id": "on-aiohttps-path"})
        assert response.status == 200
    finally:
        await client.close()
    assert journaled_at_prepare == [True]


def test_the_request_log_waits_on_the_requests_the_native_edge_counts(tmp_path):
    """The sink's drain waits for a quiet loop (foreground.py) on the one count the native edge keeps."""
    app = build_app(Settings(data_dir=tmp_path, admin_token="t" * 32), transport=FakeTransport())
    assert app[GATEWAY].telemetry.sink._foreground is app[NATIVE].foreground


def test_the_native_edges_write_batch_journals_the_answered_requests_before_it_sends(tmp_path):
    """The native edge's answers leave through the loop turn's write batch (write_batch.py): its step before
    sending is the request log's sealing, as the aiohttp path's is the prepare hook above."""
    app = build_app(Settings(data_dir=tmp_path, admin_token="t" * 32), transport=FakeTransport())
    assert app[NATIVE].writes.before_send == app[GATEWAY].telemetry.seal_answered
    assert app[NATIVE].guard.writes is app[NATIVE].writes  # one batch: eviction sees the answers it holds
