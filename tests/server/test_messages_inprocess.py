"""/v1/messages and /v1/chat/completions across the two specs, in-process: build_app on a fake transport.

What the upstream receives (path, translated body, credential and protocol headers), what the client gets
(translated answers, streams, errors in the envelope of the endpoint it called), fallbacks across specs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sluicegate.app import build_app
from sluicegate.providers.translate.frames import SSEDecoder
from sluicegate.settings import Settings
from tests.fakes.transport import (
    FakeResponse,
    FakeTransport,
    chat_completion,
    content_chunk,
    json_response,
    refused,
    sse_response,
)
from tests.inprocess import HOST

OPENAI = {"x-portkey-provider": "openai", "x-portkey-custom-host": HOST, "x-api-key": "sk-ant-secret-1"}
ANTHROPIC = {"x-portkey-provider": "anthropic", "x-portkey-custom-host": HOST, "x-api-key": "sk-ant-secret-1",
             "anthropic-version": "2023-06-01"}
MESSAGES = {"model": "m", "max_tokens": 64, "system": "be brief",
            "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def message(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 4}, **extra}


def anthropic_events(text: str = "hello there") -> list[dict[str, Any]]:
    words = text.split(" ")
    return [
        {"type": "message_start", "message": {**message(""), "content": [], "usage": {"input_tokens": 9,
                                                                                      "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w + " "}}
          for w in words),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
    ]


def anthropic_sse(*events: Any) -> FakeResponse:
    body = [(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n") if isinstance(e, dict)
            else e for e in events]
    return FakeResponse(200, [("content-type", "text/event-stream")], body)


def events_of(raw: bytes) -> list[tuple[str | None, Any]]:
    return SSEDecoder().push(raw)


@pytest.fixture
async def client_for(tmp_path) -> AsyncIterator:
    clients: list[TestClient] = []

    async def make(transport: FakeTransport, **settings: Any) -> TestClient:
        app = build_app(Settings(data_dir=tmp_path, admin_token="t" * 32, **settings), transport=transport)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_messages_to_an_openai_target_are_translated_both_ways(client_for):
    transport = FakeTransport(script=[json_response(chat_completion("hello"))])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json=MESSAGES, headers=OPENAI)
    assert response.status == 200
    body = await response.json()
    assert body["type"] == "message" and body["content"] == [{"type": "text", "text": "hello"}]
    assert body["stop_reason"] == "end_turn" and body["usage"]["input_tokens"] == 5
    assert body["id"] == "msg_" + response.headers["x-portkey-trace-id"]
    sent = transport.sent[0]
    assert sent.url == HOST + "/chat/completions"
    assert sent.json() == {"model": "m", "max_tokens": 64, "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    assert sent.headers["authorization"] == "Bearer sk-ant-secret-1"
    assert "x-api-key" not in sent.headers and "anthropic-version" not in sent.headers


async def test_messages_to_an_anthropic_target_are_relayed_as_is(client_for):
    transport = FakeTransport(script=[json_response(message())])
    client = await client_for(transport)
    raw = orjson.dumps({**MESSAGES, "thinking": {"type": "enabled", "budget_tokens": 10}})
    response = await client.post("/v1/messages", data=raw, headers={
        **ANTHROPIC, "content-type": "application/json", "anthropic-beta": "tools-2024-04-04"})
    assert response.status == 200 and await response.json() == message()
    sent = transport.sent[0]
    assert sent.url == HOST + "/messages" and sent.body == raw
    assert sent.headers["x-api-key"] == "sk-ant-secret-1"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "tools-2024-04-04"
    assert "authorization" not in sent.headers


async def test_anthropic_version_defaults_and_a_bearer_credential_becomes_x_api_key(client_for):
    transport = FakeTransport(script=[json_response(message())])
    client = await client_for(transport)
    headers = {"x-portkey-provider": "anthropic", "x-portkey-custom-host": HOST, "authorization": "Bearer sk-b"}
    response = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status == 200
    sent = transport.sent[0]
    assert sent.headers["anthropic-version"] == "2023-06-01" and sent.headers["x-api-key"] == "sk-b"
    assert "authorization" not in sent.headers and "anthropic-beta" not in sent.headers


async def test_the_default_base_url_of_anthropic_is_configurable(client_for):
    transport = FakeTransport(script=[json_response(message())])
    client = await client_for(transport, provider_base_urls={"anthropic": "http://127.0.0.1:9/anthropic/v1"})
    headers = {"x-portkey-provider": "anthropic", "x-api-key": "k"}
    response = await client.post("/v1/messages", json=MESSAGES, headers=headers)
    assert response.status == 200
    assert transport.sent[0].url == "http://127.0.0.1:9/anthropic/v1/messages"


async def test_chat_to_an_anthropic_target_is_translated_both_ways(client_for):
    transport = FakeTransport(script=[json_response(message("bonjour"))])
    client = await client_for(transport)
    headers = {"x-portkey-provider": "anthropic", "x-portkey-custom-host": HOST, "authorization": "Bearer k"}
    body = {**CHAT, "messages": [{"role": "system", "content": "s"}, *CHAT["messages"]], "stop": "END"}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    answer = await response.json()
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"] == "bonjour"
    assert answer["usage"]["prompt_tokens"] == 11 and answer["usage"]["completion_tokens"] == 4
    assert transport.sent[0].url == HOST + "/messages"
    assert transport.sent[0].json() == {"model": "m", "max_tokens": 4096, "system": "s", "stop_sequences": ["END"],
                                        "messages": [{"role": "user", "content": "hi"}]}


async def test_a_streamed_chat_over_an_anthropic_target(client_for):
    transport = FakeTransport(script=[anthropic_sse(*anthropic_events("one two"))])
    client = await client_for(transport)
    headers = {"x-portkey-provider": "anthropic", "x-portkey-custom-host": HOST, "authorization": "Bearer k"}
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    chunks = [data for _, data in events_of(await response.read())]
    assert chunks[-1] is not None and chunks[-2]["usage"]["completion_tokens"] == 7
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-2] if c["choices"])
    assert text == "one two "


async def test_a_streamed_message_over_an_openai_target(client_for):
    chunks = [{"id": "c", "model": "up", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
              content_chunk("hel"), content_chunk("lo"),
              {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {"id": "c", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}}, "[DONE]"]
    transport = FakeTransport(script=[sse_response(*chunks)])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=OPENAI)
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = events_of(await response.read())
    assert [name for name, _ in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]
    assert events[5][1]["usage"] == {"output_tokens": 2, "input_tokens": 12, "cache_read_input_tokens": 0}
    assert transport.sent[0].json()["stream_options"] == {"include_usage": True}


async def test_an_openai_stream_cut_without_done_ends_with_an_error_event(client_for):
    transport = FakeTransport(script=[sse_response(content_chunk("partial"))])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=OPENAI)
    events = events_of(await response.read())
    assert events[0][0] == "message_start" and events[-1][0] == "error"
    assert "message_stop" not in [name for name, _ in events]


async def test_an_anthropic_stream_cut_before_message_stop_ends_with_an_error_chunk(client_for):
    transport = FakeTransport(script=[anthropic_sse(*anthropic_events()[:4])])
    client = await client_for(transport)
    headers = {"x-portkey-provider": "anthropic", "x-portkey-custom-host": HOST}
    response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers)
    raw = await response.read()
    assert b"[DONE]" not in raw and events_of(raw)[-1][1]["error"]["type"] == "server_error"


async def test_a_relayed_anthropic_stream_passes_every_event_through_pings_included(client_for):
    sent = anthropic_events("a b")
    transport = FakeTransport(script=[anthropic_sse(*sent)])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=ANTHROPIC)
    assert response.status == 200
    assert [data for _, data in events_of(await response.read())] == sent  # ping kept, in its place


async def test_a_relayed_anthropic_stream_cut_early_ends_with_an_error_event(client_for):
    transport = FakeTransport(script=[anthropic_sse(*anthropic_events()[:4])])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=ANTHROPIC)
    events = events_of(await response.read())
    assert [n for n, _ in events][:2] == ["message_start", "content_block_start"] and events[-1][0] == "error"


@pytest.mark.parametrize("split", [False, True], ids=["all-in-one-read", "end-in-a-later-read"])
async def test_what_follows_message_stop_in_the_same_read_is_not_relayed(client_for, split):
    """An upstream that ends with message_stop and then a ``data: [DONE]`` (or any event) in the same read: the
    client's stream ends at the message_stop, clean (the SDK raised on an error event added after it)."""
    sent = anthropic_events("a b")
    after = [b"data: [DONE]\n\n", b'event: ping\ndata: {"type": "ping"}\n\n',
             b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
             b'"delta": {"type": "text_delta", "text": "late"}}\n\n']
    frames = b"".join(anthropic_sse(*sent).chunks)
    start, end = frames.split(b"event: content_block_stop")
    chunks = [start, b"event: content_block_stop" + end + b"".join(after)] if split else [frames + b"".join(after)]
    transport = FakeTransport(script=[FakeResponse(200, [("content-type", "text/event-stream")], chunks)])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=ANTHROPIC)
    raw = await response.read()
    assert raw == frames and [data for _, data in events_of(raw)] == sent


def fallback(first: dict[str, Any], second: dict[str, Any]) -> dict[str, str]:
    return {"x-portkey-config": orjson.dumps({"strategy": {"mode": "fallback"}, "targets": [first, second]}).decode()}


OPENAI_TARGET = {"provider": "openai", "api_key": "sk-o", "custom_host": HOST}
ANTHROPIC_TARGET = {"provider": "anthropic", "api_key": "sk-a", "custom_host": "http://127.0.0.1:9/a/v1"}


async def test_messages_fall_back_from_an_anthropic_target_to_an_openai_one(client_for):
    transport = FakeTransport(script=[json_response({"type": "error", "error": {"type": "overloaded_error",
                                                                                 "message": "busy"}}, 529),
                                      json_response(chat_completion("from openai"))])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json=MESSAGES, headers=fallback(ANTHROPIC_TARGET, OPENAI_TARGET))
    assert response.status == 200 and (await response.json())["content"][0]["text"] == "from openai"
    assert [s.url for s in transport.sent] == ["http://127.0.0.1:9/a/v1/messages", HOST + "/chat/completions"]
    assert transport.sent[0].headers["x-api-key"] == "sk-a"
    assert transport.sent[1].headers["authorization"] == "Bearer sk-o"
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


async def test_a_stream_failing_before_its_start_falls_back_across_specs(client_for):
    error_first = sse_response({"error": {"message": "model loading", "code": 503}})
    transport = FakeTransport(script=[error_first, anthropic_sse(*anthropic_events("ok then"))])
    client = await client_for(transport)
    response = await client.post("/v1/chat/completions", json={**CHAT, "stream": True},
                                 headers=fallback(OPENAI_TARGET, ANTHROPIC_TARGET))
    raw = await response.read()
    assert response.status == 200 and raw.endswith(b"data: [DONE]\n\n") and b"ok then" not in raw
    assert "".join(c["choices"][0]["delta"].get("content") or "" for _, c in events_of(raw)[:-1]
                   if isinstance(c, dict) and c.get("choices")) == "ok then "


async def test_chat_falls_back_from_an_openai_target_to_an_anthropic_one(client_for):
    transport = FakeTransport(script=[refused(), json_response(message("from anthropic"))])
    client = await client_for(transport)
    response = await client.post("/v1/chat/completions", json=CHAT, headers=fallback(OPENAI_TARGET, ANTHROPIC_TARGET))
    assert response.status == 200
    assert (await response.json())["choices"][0]["message"]["content"] == "from anthropic"


async def test_count_tokens_is_estimated_for_an_openai_target_and_relayed_for_an_anthropic_one(client_for):
    transport = FakeTransport(script=[json_response({"input_tokens": 42})])
    client = await client_for(transport)
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}]}
    estimated = await client.post("/v1/messages/count_tokens", json=body, headers=OPENAI)
    assert estimated.status == 200 and await estimated.json() == {"input_tokens": 104}
    assert transport.sent == []
    relayed = await client.post("/v1/messages/count_tokens", json=body, headers=ANTHROPIC)
    assert await relayed.json() == {"input_tokens": 42}
    assert transport.sent[0].url == HOST + "/messages/count_tokens"


@pytest.mark.parametrize(("status", "kind"), [(400, "invalid_request_error"), (401, "authentication_error"),
                                              (429, "rate_limit_error"), (500, "api_error")])
async def test_openai_upstream_errors_reach_a_messages_client_in_anthropic_s_envelope(client_for, status, kind):
    transport = FakeTransport(script=[json_response({"error": {"message": "nope", "type": "x"}}, status)])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json=MESSAGES, headers=OPENAI)
    assert response.status == status
    assert await response.json() == {"type": "error", "error": {"type": kind, "message": "nope"}}


async def test_anthropic_upstream_errors_reach_a_chat_client_in_the_openai_envelope(client_for):
    error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    transport = FakeTransport(script=[json_response(error, 429)])
    client = await client_for(transport)
    headers = {"x-portkey-provider": "anthropic", "x-portkey-custom-host": HOST}
    response = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    body = await response.json()
    assert response.status == 429 and body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"] == "anthropic error: slow down"


async def test_gateway_failures_on_messages_are_in_anthropic_s_envelope(client_for):
    client = await client_for(FakeTransport(script=[refused()]))
    unreachable = await client.post("/v1/messages", json=MESSAGES, headers=OPENAI)
    assert unreachable.status == 502
    body = await unreachable.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert "Could not connect" in body["error"]["message"]
    refused_here = await client.post("/v1/messages", json=MESSAGES)
    assert refused_here.status == 400
    assert (await refused_here.json())["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_a_config_s_problems_are_named_in_anthropic_s_envelope(client_for, path):
    # The chat route names each path and reason; this said only "Invalid config passed".
    transport = FakeTransport()
    client = await client_for(transport)
    config = {"provider": "openai", "custom_host": HOST, "retry": {"attempts": 9}, "weight": "x"}
    response = await client.post(path, json=MESSAGES, headers={"x-portkey-config": orjson.dumps(config).decode()})
    message = (await response.json())["error"]["message"]
    assert response.status == 400 and message.startswith("Invalid config passed: "), message
    assert "retry,attempts" in message and "weight" in message and transport.sent == []


async def test_a_failed_attempt_on_messages_has_one_content_type(client_for):
    # The rewrapped answer carried the unified one's "content-type" beside its own "Content-Type".
    client = await client_for(FakeTransport(script=[refused()]))
    response = await client.post("/v1/messages", json=MESSAGES, headers=OPENAI)
    assert response.status == 502 and response.headers.getall("content-type") == ["application/json"]
    assert int(response.headers["content-length"]) == len(await response.read())


async def test_an_untranslatable_request_is_a_400_in_the_client_s_envelope(client_for):
    transport = FakeTransport()
    client = await client_for(transport)
    server_tool = {**MESSAGES, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    response = await client.post("/v1/messages", json=server_tool, headers=OPENAI)
    assert response.status == 400
    assert (await response.json())["error"]["type"] == "invalid_request_error"
    headers = {"x-portkey-provider": "anthropic", "x-portkey-custom-host": HOST}
    chat = await client.post("/v1/chat/completions", json={**CHAT, "n": 2}, headers=headers)
    assert chat.status == 400 and (await chat.json())["status"] == "failure"
    assert transport.sent == []


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[1]", b'{"model": "m", "max_tokens": 5}',
    b'{"model": "m", "max_tokens": 5, "messages": []}',
    b'{"model": "m", "max_tokens": 5, "messages": ["hi"]}',
    b'{"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}',
    b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user"}]}',
    b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}',
    b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "m", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": 5, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "m", "max_tokens": 5, "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "m", "max_tokens": 5, "system": 5, "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "m", "max_tokens": 5, "tools": {}, "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]}',
    b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [5]}]}',
    b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}, '
    b'{"role": "assistant", "content": [{"type": ["text"]}]}]}',
])
@pytest.mark.parametrize("target", ["openai", "anthropic"])
async def test_malformed_messages_get_a_4xx_in_anthropic_s_envelope(client_for, body, target):
    transport = FakeTransport(handler=lambda sent: json_response(message()))
    client = await client_for(transport)
    headers = {**(OPENAI if target == "openai" else ANTHROPIC), "content-type": "application/json"}
    response = await client.post("/v1/messages", data=body, headers=headers)
    answer = await response.json()
    if target == "anthropic" and transport.sent:  # block-level checks are the Anthropic server's own
        assert body.endswith(b"]}]}") and response.status == 200
        return
    assert 400 <= response.status < 500, answer
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    assert transport.sent == []


async def test_conditional_routing_and_retries_across_specs(client_for):
    def answer(sent):
        if sent.url.endswith("/chat/completions"):
            return json_response(chat_completion("openai side"))
        return json_response(message("anthropic side"))

    transport = FakeTransport(handler=answer)
    client = await client_for(transport)
    conditional = {"strategy": {"mode": "conditional", "conditions": [
        {"query": {"metadata.tier": {"$eq": "gold"}}, "then": "claude"}], "default": "oai"},
        "targets": [{**ANTHROPIC_TARGET, "name": "claude"}, {**OPENAI_TARGET, "name": "oai"}]}
    headers = {"x-portkey-config": orjson.dumps(conditional).decode()}
    for tier, text in (("gold", "anthropic side"), ("free", "openai side")):
        meta = {**headers, "x-portkey-metadata": orjson.dumps({"tier": tier}).decode()}
        via_messages = await client.post("/v1/messages", json=MESSAGES, headers=meta)
        assert (await via_messages.json())["content"][0]["text"] == text
        via_chat = await client.post("/v1/chat/completions", json=CHAT, headers=meta)
        assert (await via_chat.json())["choices"][0]["message"]["content"] == text


async def test_retries_on_an_anthropic_target_then_success(client_for):
    busy = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    transport = FakeTransport(script=[json_response(busy, 529), json_response(message("second try"))])
    client = await client_for(transport)
    target = {**ANTHROPIC_TARGET, "retry": {"attempts": 2, "on_status_codes": [529]}}
    response = await client.post("/v1/chat/completions", json=CHAT,
                                 headers={"x-portkey-config": orjson.dumps(target).decode()})
    assert response.status == 200 and response.headers["x-portkey-retry-attempt-count"] == "1"
    assert (await response.json())["choices"][0]["message"]["content"] == "second try"


async def test_the_first_event_rule_role_chunk_then_error_still_falls_back(client_for):
    """As on the OpenAI relay: a stream that failed before its first content has shown the client nothing."""
    role_then_error = sse_response({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
                                   {"error": {"message": "out of memory"}})
    transport = FakeTransport(script=[role_then_error, anthropic_sse(*anthropic_events("rescued"))])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True},
                                 headers=fallback(OPENAI_TARGET, ANTHROPIC_TARGET))
    events = events_of(await response.read())
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert [name for name, _ in events].count("message_start") == 1 and events[-1][0] == "message_stop"
    assert "error" not in [name for name, _ in events]


async def test_an_anthropic_stream_failing_after_message_start_only_falls_back(client_for):
    start_then_error = anthropic_sse(anthropic_events()[0], {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}})
    transport = FakeTransport(script=[start_then_error, json_response(chat_completion("plan b"))])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json=MESSAGES, headers=fallback(ANTHROPIC_TARGET, OPENAI_TARGET))
    assert response.status == 200 and (await response.json())["content"][0]["text"] == "plan b"


@pytest.mark.parametrize("events", [anthropic_events()[1:], anthropic_events()[-1:]], ids=["no-start", "stop-alone"])
async def test_an_anthropic_stream_without_message_start_falls_back(client_for, events):
    # Relayed as a 200: the anthropic SDK then failed with a bare AssertionError, not an API error.
    transport = FakeTransport(script=[anthropic_sse(*events), anthropic_sse(*anthropic_events("rescued"))])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True},
                                 headers=fallback(ANTHROPIC_TARGET, ANTHROPIC_TARGET))
    relayed = events_of(await response.read())
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert relayed[0][0] == "message_start" and relayed[-1][0] == "message_stop"


async def test_an_error_event_after_the_start_is_relayed_once(client_for):
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    transport = FakeTransport(script=[anthropic_sse(*anthropic_events()[:4], error)])
    client = await client_for(transport)
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=ANTHROPIC)
    names = [name for name, _ in events_of(await response.read())]
    assert names[-1] == "error" and names.count("error") == 1


async def test_an_error_chunk_after_the_start_gives_one_error_event(client_for):
    stream = sse_response(content_chunk("some"), {"error": {"message": "boom", "code": 500}}, content_chunk("x"))
    client = await client_for(FakeTransport(script=[stream]))
    response = await client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=OPENAI)
    events = events_of(await response.read())
    assert [name for name, _ in events].count("error") == 1 and events[-1] == (
        "error", {"type": "error", "error": {"type": "api_error", "message": "boom"}})


@pytest.mark.parametrize(("weights", "expected"), [((1, 0), "openai side"), ((0, 1), "anthropic side")])
async def test_loadbalance_across_specs_on_both_endpoints(client_for, weights, expected):
    def answer(sent):
        if sent.url.endswith("/chat/completions"):
            return json_response(chat_completion("openai side"))
        return json_response(message("anthropic side"))

    client = await client_for(FakeTransport(handler=answer))
    balanced = {"strategy": {"mode": "loadbalance"}, "targets": [
        {**OPENAI_TARGET, "weight": weights[0]}, {**ANTHROPIC_TARGET, "weight": weights[1]}]}
    headers = {"x-portkey-config": orjson.dumps(balanced).decode()}
    for _ in range(3):
        via_messages = await client.post("/v1/messages", json=MESSAGES, headers=headers)
        assert (await via_messages.json())["content"][0]["text"] == expected
        via_chat = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert (await via_chat.json())["choices"][0]["message"]["content"] == expected


async def test_an_answer_that_cannot_be_translated_is_a_failed_attempt(client_for):
    not_a_completion = FakeResponse(200, [("content-type", "application/json")], [b'{"unexpected": true}'])
    transport = FakeTransport(script=[not_a_completion, json_response(message("from the fallback"))])
    client = await client_for(transport)
    single = await client.post("/v1/messages", json=MESSAGES, headers=OPENAI)
    body = await single.json()
    assert single.status == 502 and body["type"] == "error" and body["error"]["type"] == "api_error"
    assert "not a chat completion" in body["error"]["message"]
    transport2 = FakeTransport(script=[FakeResponse(200, [("content-type", "application/json")], [b"[]"]),
                                       json_response(chat_completion("from the fallback"))])
    client2 = await client_for(transport2)
    fell_back = await client2.post("/v1/chat/completions", json=CHAT,
                                   headers=fallback(ANTHROPIC_TARGET, OPENAI_TARGET))
    assert (await fell_back.json())["choices"][0]["message"]["content"] == "from the fallback"


async def test_endpoints_the_anthropic_spec_lacks_are_refused(client_for):
    transport = FakeTransport()
    client = await client_for(transport)
    headers = {"x-portkey-provider": "anthropic", "x-portkey-custom-host": HOST}
    response = await client.post("/v1/embeddings", json={"model": "e", "input": "x"}, headers=headers)
    assert response.status == 400 and "not supported by anthropic" in (await response.json())["message"]
    assert transport.sent == []


async def test_edge_refusals_on_messages_are_in_anthropic_s_envelope(client_for):
    client = await client_for(FakeTransport(), max_body_bytes=1024)
    wrong_type = await client.post("/v1/messages", data=b"hi", headers={**OPENAI, "content-type": "text/plain"})
    assert wrong_type.status == 400 and await wrong_type.json() == {
        "type": "error", "error": {"type": "invalid_request_error", "message": "Invalid content type passed"}}
    too_large = await client.post("/v1/messages", json={**MESSAGES, "system": "x" * 4096}, headers=OPENAI)
    assert too_large.status == 413 and (await too_large.json())["error"]["type"] == "request_too_large"
    bad_timeout = await client.post("/v1/messages", json=MESSAGES,
                                    headers={**OPENAI, "x-portkey-request-timeout": "nan"})
    assert bad_timeout.status == 400 and (await bad_timeout.json())["type"] == "error"


async def test_the_beta_query_of_the_sdks_beta_namespace_is_accepted(client_for):
    """``client.beta.messages`` (and Claude Code) call ``/v1/messages?beta=true``."""
    transport = FakeTransport(handler=lambda sent: json_response(message()))
    client = await client_for(transport)
    response = await client.post("/v1/messages?beta=true", json=MESSAGES, headers=ANTHROPIC)
    assert response.status == 200 and transport.sent[0].url == HOST + "/messages"
    counted = await client.post("/v1/messages/count_tokens?beta=true", json=MESSAGES, headers=OPENAI)
    assert counted.status == 200 and (await counted.json())["input_tokens"] > 0


async def test_event_names_inside_the_text_do_not_fool_the_relay(client_for):
    """A cut stream whose last text says "message_stop" still ends with an error event; a clean one whose
    text says "event: error" gets none added."""
    tricky = {"type": "content_block_delta", "index": 0,
              "delta": {"type": "text_delta", "text": "event: error\n the message_stop event"}}
    cut = anthropic_sse(*anthropic_events()[:2], tricky)
    clean = anthropic_sse(*anthropic_events()[:2], tricky, *anthropic_events()[-3:])
    client = await client_for(FakeTransport(script=[cut, clean]))
    for expected_last in ("error", "message_stop"):
        response = await client.post("/v1/messages", json={**MESSAGES, "stream": True}, headers=ANTHROPIC)
        names = [name for name, _ in events_of(await response.read())]
        assert names[-1] == expected_last and names.count("error") == (expected_last == "error")
