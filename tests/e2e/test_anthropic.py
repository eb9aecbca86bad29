"""The Anthropic Messages API end to end: a real gateway process, the real ``anthropic`` and ``openai`` SDKs,
and scripted fakes of both specs (an OpenAI-compatible server and an Anthropic-spec one) on 127.0.0.1.

The anthropic SDK reaches an OpenAI-spec private server through translation and an Anthropic-spec one as
is; the openai SDK reaches an Anthropic-spec server through translation; configs fall back across specs;
the request log has tokens for both.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.fakes.anthropic_upstream import AnthropicUpstream, frame, message_events
from tests.fakes.upstream import FakeUpstream, Reply
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN, LogApi, new_trace

KEY = "sk-ant-client-secret-7c1d"
STORED = "sk-ant-stored-secret-22ab"
TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


@pytest.fixture(scope="module")
def servers():
    chat, messages = FakeUpstream().start(), AnthropicUpstream().start()
    yield chat, messages
    chat.stop()
    messages.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory, servers):
    _, messages = servers
    data = tmp_path_factory.mktemp("anthropic")
    prices = data / "prices.json"
    prices.write_text(json.dumps({"default": {"prompt": 1, "completion": 2}}))  # USD per million tokens
    process = GatewayProcess(data / "gw", env={
        "SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN, "SLUICEGATE_PROVIDER_URL_ANTHROPIC": messages.v1,
        "SLUICEGATE_PRICING_FILE": str(prices)}).start()
    result = subprocess.run([sys.executable, "-m", "sluicegate", "providers", "add", "claude-box", "--spec",
                             "anthropic", "--custom-host", messages.v1, "--header", f"x-api-key: {STORED}"],
                            env=process.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    served_within(process, "@claude-box/small", seconds=5)
    yield process
    process.stop()


def served_within(process: GatewayProcess, model: str, *, seconds: float) -> None:
    """A provider the CLI added reaches the gateway's snapshot with its next poll (0.5 s on SQLite): with
    xdist, any test of this module may be the first one on its worker, right after the CLI."""
    deadline = time.monotonic() + seconds
    while True:
        answer = httpx.post(f"{process.url}/v1/messages/count_tokens", trust_env=False, timeout=10,
                            json={"model": model, "messages": [{"role": "user", "content": "x"}]})
        if "not found in the catalog" not in answer.text or time.monotonic() > deadline:
            assert "not found in the catalog" not in answer.text, answer.text
            return
        time.sleep(0.05)


@pytest.fixture
def chat(servers):
    servers[0].reset()
    return servers[0]


@pytest.fixture
def claude(servers):
    servers[1].reset()
    return servers[1]


def over_openai(gw, chat, **headers: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0, default_headers={
        "x-portkey-provider": "openai", "x-portkey-custom-host": chat.v1, **headers})


def direct_anthropic(gw, **headers: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0,
                               default_headers={"x-portkey-provider": "anthropic", **headers})


def openai_sdk(gw, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=gw.v1, max_retries=0, default_headers=headers)


def anthropic_sdk(gw, **headers: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0, default_headers=headers)


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "llama",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def call_delta(index: int, *, id: str | None = None, name: str | None = None, args: str | None = None):
    function = {k: v for k, v in (("name", name), ("arguments", args)) if v is not None}
    call: dict[str, Any] = {"index": index, "function": function}
    if id:
        call.update(id=id, type="function")
    return chunk({"tool_calls": [call]})


PARALLEL_CALLS = [  # two calls, their argument pieces interleaved as some servers send them
    chunk({"role": "assistant", "content": ""}),
    call_delta(0, id="call_a", name="get_weather", args=""), call_delta(1, id="call_b", name="get_weather"),
    call_delta(0, args='{"city": '), call_delta(1, args='{"city": "Oslo"}'), call_delta(0, args='"Paris"}'),
    chunk({}, "tool_calls"),
    {"id": "c1", "object": "chat.completion.chunk", "choices": [],
     "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}},
    "[DONE]",
]


# -- anthropic SDK → OpenAI-spec server (translated) ----------------------------------------------------------

def test_messages_create_through_translation(gw, chat):
    client = over_openai(gw, chat)
    result = client.messages.create(model="llama", max_tokens=32, system="be brief",
                                    messages=[{"role": "user", "content": "hello there"}])
    assert result.content[0].text == "echo: hello there" and result.stop_reason == "end_turn"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (5, 3)
    sent = chat.last
    assert sent.path == "/v1/chat/completions" and sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json()["messages"][0] == {"role": "system", "content": "be brief"}
    assert "x-api-key" not in sent.headers and "anthropic-version" not in sent.headers


def test_messages_stream_get_final_message_through_translation(gw, chat):
    client = over_openai(gw, chat)
    with client.messages.stream(model="llama", max_tokens=32,
                                messages=[{"role": "user", "content": "stream me"}]) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "echo: stream me " and final.content[0].text == "echo: stream me "
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 3)
    assert chat.last.json()["stream_options"] == {"include_usage": True}


def test_parallel_tool_calls_streamed_and_not(gw, chat):
    chat.push(Reply(stream=PARALLEL_CALLS))
    client = over_openai(gw, chat)
    ask = {"model": "llama", "max_tokens": 64, "tools": TOOLS,
           "messages": [{"role": "user", "content": "Weather in Paris and Oslo?"}]}
    with client.messages.stream(**ask) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.type, b.id, b.input) for b in final.content] == [
        ("tool_use", "call_a", {"city": "Paris"}), ("tool_use", "call_b", {"city": "Oslo"})]
    assert chat.last.json()["tools"][0]["function"]["name"] == "get_weather"
    calls = [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
             {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]
    chat.push(Reply(json={"id": "x", "object": "chat.completion", "model": "llama", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": calls}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}}))
    created = client.messages.create(**ask)
    assert created.stop_reason == "tool_use" and [b.input for b in created.content] == [{"city": "Paris"},
                                                                                         {"city": "Oslo"}]
    follow_up = client.messages.create(**{**ask, "messages": [
        *ask["messages"], {"role": "assistant", "content": created.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_a", "content": "sunny"},
                                     {"type": "tool_result", "tool_use_id": "call_b", "content": "rain"}]}]})
    assert follow_up.content[0].type == "text"
    sent = chat.last.json()["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [m.get("tool_call_id") for m in sent[2:]] == ["call_a", "call_b"]


def test_images_reach_the_openai_server_as_data_urls(gw, chat):
    client = over_openai(gw, chat)
    client.messages.create(model="llama", max_tokens=16, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "what is this?"}]}])
    parts = chat.last.json()["messages"][0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert parts[1] == {"type": "text", "text": "what is this?"}


def test_upstream_errors_raise_the_anthropic_sdk_s_exceptions(gw, chat):
    client = over_openai(gw, chat)
    chat.push(Reply(status=429, json={"error": {"message": "slow down", "type": "rate_limit"}}))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="llama", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["error"] == {"type": "rate_limit_error", "message": "slow down"}
    with pytest.raises(anthropic.BadRequestError):  # a server tool has no Chat Completions form
        client.messages.create(model="llama", max_tokens=8, messages=[{"role": "user", "content": "x"}],
                               tools=[{"type": "web_search_20250305", "name": "web_search"}])


def test_a_rate_limit_event_before_a_stream_starts_raises_the_sdk_s_rate_limit_error(gw, chat):
    client = over_openai(gw, chat)
    chat.push(Reply(stream=[{"error": {"message": "slow down", "code": "rate_limit_exceeded"}}]))
    with pytest.raises(anthropic.RateLimitError) as caught:
        with client.messages.stream(model="llama", max_tokens=8, messages=[{"role": "user", "content": "x"}]) as s:
            s.get_final_message()
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert "slow down" in caught.value.body["error"]["message"]


def test_a_stream_cut_after_its_start_raises_instead_of_ending_cleanly(gw, chat):
    chat.push(Reply(stream=[chunk({"role": "assistant", "content": ""}), chunk({"content": "part"}),
                            chunk({"content": "ial"})], drop_after=3))
    client = over_openai(gw, chat)
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(model="llama", max_tokens=8, messages=[{"role": "user", "content": "x"}]) as s:
            s.get_final_message()


# A text delta in invalid UTF-8 (raw bytes inside the JSON string): the translation cannot read the chunk.
# Before, it was skipped: the SDK got message_start, end_turn with output_tokens 0 and message_stop, an empty
# answer and no error. Now a malformed answer: a 502 before the stream starts, an error event after it.
INVALID_UTF8_CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"\xff\xfe\xc3"},"finish_reason":null}]}\n\n'


def test_a_chunk_in_invalid_utf8_is_an_error_for_the_anthropic_sdk_never_an_empty_answer(gw, chat):
    client = over_openai(gw, chat)
    chat.push(Reply(stream=[INVALID_UTF8_CHUNK, chunk({}, "stop"), "[DONE]"]))
    with pytest.raises(anthropic.APIStatusError) as failed:
        with client.messages.stream(model="llama", max_tokens=8, messages=[{"role": "user", "content": "x"}]) as s:
            s.get_final_message()
    assert failed.value.status_code == 502
    chat.push(Reply(stream=[chunk({"role": "assistant", "content": ""}), chunk({"content": "kept"}),
                            INVALID_UTF8_CHUNK, chunk({}, "stop"), "[DONE]"], chunk_interval=0.1))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="not JSON .*not valid UTF-8"):
        with client.messages.stream(model="llama", max_tokens=8, messages=[{"role": "user", "content": "x"}]) as s:
            seen.extend(s.text_stream)
    assert seen == ["kept"]  # what came before the bad chunk reached the client, then the error


def test_count_tokens_is_estimated_for_an_openai_server(gw, chat):
    client = over_openai(gw, chat)
    counted = client.messages.count_tokens(model="llama", messages=[{"role": "user", "content": "x" * 400}])
    assert counted.input_tokens == 104 and chat.received == []


# -- anthropic SDK → Anthropic-spec server (as is) -------------------------------------------------------------

def test_messages_to_an_anthropic_server_are_relayed_as_is(gw, claude):
    client = direct_anthropic(gw, **{"anthropic-beta": "prompt-caching-2024-07-31", "anthropic-version": "2023-01-01"})
    result = client.messages.create(model="claude-fake", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert result.content[0].text == "echo: hi" and result.id == "msg_fake"
    sent = claude.last
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-01-01"  # the client's own
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert not [h for h in sent.headers if h.lower().startswith("x-portkey-")]
    with client.messages.stream(model="claude-fake", max_tokens=16,
                                messages=[{"role": "user", "content": "a b c"}]) as stream:
        assert stream.get_final_message().content[0].text == "echo: a b c"
    assert client.messages.count_tokens(model="c", messages=[{"role": "user", "content": "hi"}]).input_tokens > 0
    assert claude.last.path == "/v1/messages/count_tokens"


def test_the_catalog_takes_an_anthropic_spec_provider(gw, claude):
    client = anthropic.Anthropic(base_url=gw.url, api_key="client-key-must-not-travel", max_retries=0)
    result = client.messages.create(model="@claude-box/small", max_tokens=8,
                                    messages=[{"role": "user", "content": "q"}])
    assert result.content[0].text == "echo: q"
    assert claude.last.headers["x-api-key"] == STORED and claude.last.json()["model"] == "small"
    assert claude.last.headers["anthropic-version"]  # the SDK's, relayed


# -- openai SDK → Anthropic-spec server (translated) -----------------------------------------------------------

def test_chat_completions_to_an_anthropic_server(gw, claude):
    client = openai_sdk(gw, **{"x-portkey-provider": "@claude-box"})
    result = client.chat.completions.create(model="small", messages=[
        {"role": "system", "content": "sys"}, {"role": "user", "content": "hola"}])
    assert result.choices[0].message.content == "echo: hola" and result.choices[0].finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (9, 4)
    sent = claude.last.json()
    assert sent["system"] == "sys" and sent["max_tokens"] == 4096 and claude.last.headers["x-api-key"] == STORED
    stream = client.chat.completions.create(model="small", stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "one two"}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: one two"
    assert chunks[-1].usage.completion_tokens == 4


def test_parallel_tool_calls_from_an_anthropic_server_reach_the_openai_sdk(gw, claude):
    blocks = [{"type": "text", "text": "Checking."},
              {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
              {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Oslo"}}]
    claude.push(Reply(stream=message_events(blocks)))
    client = openai_sdk(gw, **{"x-portkey-provider": "@claude-box"})
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": TOOLS[0]["input_schema"]}}]
    with client.chat.completions.stream(model="m", tools=tools, messages=[{"role": "user", "content": "w?"}]) as s:
        final = s.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [(c.id, json.loads(c.function.arguments)) for c in calls] == [("toolu_1", {"city": "Paris"}),
                                                                         ("toolu_2", {"city": "Oslo"})]
    assert final.choices[0].finish_reason == "tool_calls" and final.choices[0].message.content == "Checking."
    assert claude.last.json()["tools"][0] == {"name": "get_weather", "input_schema": TOOLS[0]["input_schema"]}


def test_an_anthropic_error_event_reaches_the_openai_sdk_as_an_error(gw, claude):
    events = message_events("never finished")[:4] + [
        frame({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]
    claude.push(Reply(stream=events))
    client = openai_sdk(gw, **{"x-portkey-provider": "@claude-box"})
    with pytest.raises(openai.APIError, match="Overloaded"):
        list(client.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "x"}]))


def test_an_anthropic_event_in_invalid_utf8_is_an_error_for_the_openai_sdk_never_a_clean_end(gw, claude):
    bad = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,' \
          b'"delta":{"type":"text_delta","text":"\xff\xfe\xc3"}}\n\n'
    events = message_events("kept")
    claude.push(Reply(stream=events[:4] + [bad] + events[4:], chunk_interval=0.1))  # after the text "kept"
    client = openai_sdk(gw, **{"x-portkey-provider": "@claude-box"})
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="not JSON .*not valid UTF-8"):
        for part in client.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "x"}]):
            seen.extend(choice.delta.content or "" for choice in part.choices)
    assert "".join(seen) == "kept"


# -- configs across specs ---------------------------------------------------------------------------------------

def config(*targets: dict[str, Any]) -> str:
    return json.dumps({"strategy": {"mode": "fallback"}, "targets": list(targets)})


def test_anthropic_target_falls_back_to_an_openai_one_for_both_sdks(gw, chat, claude):
    header = config({"provider": "anthropic", "api_key": "sk-a", "custom_host": claude.v1,
                     "retry": {"attempts": 1, "on_status_codes": [529]}},
                    {"provider": "openai", "api_key": "sk-o", "custom_host": chat.v1})
    busy = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    claude.push(*[Reply(status=529, json=busy)] * 4)
    client = anthropic_sdk(gw, **{"x-portkey-config": header})
    with client.messages.stream(model="m", max_tokens=8, messages=[{"role": "user", "content": "fb"}]) as stream:
        assert stream.get_final_message().content[0].text == "echo: fb "
    assert len(claude.received) == 2 and chat.last.headers["authorization"] == "Bearer sk-o"
    oai = openai_sdk(gw, **{"x-portkey-config": header})
    reply = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "fb2"}])
    assert reply.choices[0].message.content == "echo: fb2" and len(claude.received) == 4


def test_openai_target_falls_back_to_an_anthropic_one_for_both_sdks(gw, chat, claude):
    header = config({"provider": "openai", "api_key": "sk-o", "custom_host": chat.v1},
                    {"provider": "anthropic", "api_key": "sk-a", "custom_host": claude.v1})
    chat.push(Reply(status=503, json={"error": {"message": "loading"}}),
              Reply(stream=[{"error": {"message": "model loading", "code": 503}}]))
    client = anthropic_sdk(gw, **{"x-portkey-config": header})
    created = client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "r"}])
    assert created.content[0].text == "echo: r"
    oai = openai_sdk(gw, **{"x-portkey-config": header})
    stream = oai.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "s"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "echo: s"
    assert claude.last.headers["x-api-key"] == "sk-a" and len(chat.received) == 2


def test_an_anthropic_stream_that_is_no_message_falls_back_on_chat_completions(gw, chat, claude):
    """A [DONE] (OpenAI's end, not Anthropic's), and message events before message_start, began the translated
    stream: the client got a 200 ending in an error, and the fallback never took over."""
    header = config({"provider": "anthropic", "api_key": "sk-a", "custom_host": claude.v1},
                    {"provider": "openai", "api_key": "sk-o", "custom_host": chat.v1})
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}
    claude.push(Reply(stream=["[DONE]"]), Reply(stream=[frame(delta), frame({"type": "message_stop"})]))
    oai = openai_sdk(gw, **{"x-portkey-config": header})
    for prompt in ("done-only", "no-start"):
        stream = oai.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": prompt}])
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).strip() == f"echo: {prompt}"
    assert len(claude.received) == 2 and len(chat.received) == 2


# -- the request log ----------------------------------------------------------------------------------------------

def test_request_logs_have_tokens_and_cost_for_both_specs(gw, chat, claude):
    logs = LogApi(gw.url)
    traces = [new_trace() for _ in range(5)]
    over_openai(gw, chat, **{"x-portkey-trace-id": traces[0]}).messages.create(
        model="llama", max_tokens=8, messages=[{"role": "user", "content": "a"}])
    chat.push(Reply(stream=[chunk({"role": "assistant"}), chunk({"content": "no usage here"}), chunk({}, "stop"),
                            "[DONE]"]))
    with over_openai(gw, chat, **{"x-portkey-trace-id": traces[1]}).messages.stream(
            model="llama", max_tokens=8, messages=[{"role": "user", "content": "b" * 40}]) as stream:
        unreported = stream.get_final_message()
    # "no usage here": 13 characters, about 4 tokens, the same for the client and the log (never 0)
    assert unreported.usage.output_tokens == 4 and unreported.usage.input_tokens > 10
    with direct_anthropic(gw, **{"x-portkey-trace-id": traces[2]}).messages.stream(
            model="c", max_tokens=8, messages=[{"role": "user", "content": "c"}]) as stream:
        stream.get_final_message()
    openai_sdk(gw, **{"x-portkey-provider": "anthropic", "x-portkey-trace-id": traces[3]}).chat.completions.create(
        model="c", messages=[{"role": "user", "content": "d"}])
    over_openai(gw, chat, **{"x-portkey-trace-id": traces[4]}).messages.count_tokens(
        model="llama", messages=[{"role": "user", "content": "e"}])
    counted = logs.one(traces.pop())
    assert counted["endpoint"] == "count_tokens" and counted["usage"]["prompt_tokens"] is None
    assert counted["cost"] is None and counted["status"] == 200
    records = [logs.one(trace) for trace in traces]
    tokens = [(r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"], r["usage"]["estimated"])
              for r in records]
    assert tokens[0] == (5, 3, False) and tokens[2] == (9, 4, False) and tokens[3] == (9, 4, False)
    assert tokens[1][2] is True and tokens[1][0] > 10 and tokens[1][1] == 4
    assert [r["endpoint"] for r in records] == ["messages", "messages", "messages", "chat"]
    assert [r["provider"] for r in records] == ["openai", "openai", "anthropic", "anthropic"]
    for record in records:
        usage = record["usage"]
        assert record["cost"] == pytest.approx((usage["prompt_tokens"] + 2 * usage["completion_tokens"]) / 1e6)
        assert KEY not in orjson.dumps(record).decode()


def test_a_replayed_stream_is_logged_with_the_counts_and_model_of_the_answer_it_replays(gw, chat, claude):
    """A cache hit of a translated stream (no usage chunk: the client did not ask for one) was logged with
    re-estimated tokens and cost and no answering model."""
    logs = LogApi(gw.url)
    cached = json.dumps({"provider": "anthropic", "api_key": "sk-a", "custom_host": claude.v1,
                         "cache": {"mode": "simple"}})
    claude.push(Reply(stream=message_events("a fairly long answer " * 10, input_tokens=9, output_tokens=40)))
    traces = [new_trace(), new_trace()]
    for trace in traces:
        stream = openai_sdk(gw, **{"x-portkey-config": cached, "x-portkey-trace-id": trace}).chat.completions.create(
            model="c", stream=True, messages=[{"role": "user", "content": "replay me"}])
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).startswith("a fairly")
        time.sleep(0.3)  # the entry is written once the stream has ended
    miss, hit = (logs.one(trace) for trace in traces)
    assert (miss["cache_status"], hit["cache_status"]) == ("MISS", "HIT")
    assert hit["usage"] == miss["usage"] and miss["usage"]["completion_tokens"] == 40, (miss["usage"], hit["usage"])
    assert hit["model_answered"] == miss["model_answered"] == "claude-fake"
    assert len(claude.received) == 1


def test_answers_the_gateway_cannot_translate_are_502s_for_both_sdks_and_odd_input_a_400(gw, chat, claude):
    """What used to be 500s, as each SDK sees it now: an upstream answer the translator refuses is the
    upstream's failure (502, in each API's envelope), and a block whose type is a list is the client's (400)."""
    client = over_openai(gw, chat)
    chat.push(Reply(json={"id": "c", "object": "chat.completion", "created": 1, "model": "llama",
                          "choices": [{"index": 0, "finish_reason": "tool_calls",
                                       "message": {"role": "assistant", "content": "ok", "tool_calls": 7}}]}))
    answer = client.messages.create(model="llama", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert [block.type for block in answer.content] == ["text"]  # tool_calls of another type: passed over
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="llama", max_tokens=8, messages=[
            {"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": ["text"]}]},
            {"role": "user", "content": "y"}])
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    claude.push(Reply(json={"id": "msg", "type": "message", "role": "assistant", "model": "claude",
                            "content": [{"type": "tool_use", "input": {}}], "stop_reason": "tool_use",
                            "usage": {"input_tokens": 1, "output_tokens": 1}}))
    with pytest.raises(openai.APIStatusError) as failed:
        openai_sdk(gw, **{"x-portkey-provider": "anthropic"}).chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 502
    assert "the upstream's answer is not an Anthropic message (tool_use: id and name are required)" in str(
        failed.value.body)
