"""``strict_open_ai_compliance`` on an Anthropic-spec upstream answering ``/v1/chat/completions``, end to end: a
real gateway process, the real ``portkey-ai`` and ``openai`` SDKs, a scripted Anthropic fake on 127.0.0.1.

Portkey's gateway is strict by default, and the portkey-ai SDKs send ``x-portkey-strict-open-ai-compliance:
false`` unless told otherwise: their users get the non-strict answer (Anthropic's ``stop_reason`` as the
``finish_reason``, ``message.content_blocks``, ``delta.content_blocks``, ``provider``). A config's
``strict_open_ai_compliance`` (inherited by nested targets) sets it when no header does; the header overrides
the config for every target.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from portkey_ai import Portkey

from tests.fakes.anthropic_upstream import AnthropicUpstream, message, message_events
from tests.fakes.upstream import Reply
from tests.gateway import GatewayProcess

KEY = "sk-ant-strictness-5e1f"
HEADER = "x-portkey-strict-open-ai-compliance"
THINKING = {"type": "thinking", "thinking": "The user wants the weather.", "signature": "sig-1"}
TEXT = {"type": "text", "text": "Let me check."}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
BLOCKS = [THINKING, TEXT, TOOL_USE]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ASK = {"model": "claude-fake", "max_tokens": 64, "messages": [{"role": "user", "content": "weather in Paris?"}]}
CALL = {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}


@pytest.fixture(scope="module")
def upstream():
    server = AnthropicUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory, upstream):
    process = GatewayProcess(tmp_path_factory.mktemp("strict"),
                             env={"SLUICEGATE_PROVIDER_URL_ANTHROPIC": upstream.v1}).start()
    yield process
    process.stop()


@pytest.fixture
def claude(upstream):
    upstream.reset()
    return upstream


def portkey(gw, **options: Any) -> Portkey:
    """The portkey-ai SDK as its users write it: it sends the strictness header, ``false`` by default."""
    return Portkey(base_url=gw.v1, Authorization=f"Bearer {KEY}", max_retries=0, **options)


def openai_sdk(gw, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=gw.v1, max_retries=0, default_headers=headers)


def config(strict: bool | None = None, *, nested: bool = False) -> str:
    target: dict[str, Any] = {"provider": "anthropic", "api_key": KEY}
    node: dict[str, Any] = {"strategy": {"mode": "fallback"}, "targets": [target]} if nested else target
    return json.dumps(node if strict is None else {**node, "strict_open_ai_compliance": strict})


def answer(client: Portkey | openai.OpenAI, claude: AnthropicUpstream, blocks: list[dict[str, Any]],
           **extra: Any) -> dict[str, Any]:
    """One non-streamed chat completion of ``blocks``, as JSON: the fields the gateway sent, no SDK defaults."""
    claude.push(Reply(json=message(blocks, stop_reason="tool_use" if TOOL_USE in blocks else "end_turn")))
    result = client.chat.completions.create(**ASK, tools=TOOLS, **extra)
    assert HEADER not in claude.last.headers  # no x-portkey-* header goes upstream
    return result.model_dump(exclude_unset=True)


def streamed(client: Portkey | openai.OpenAI, claude: AnthropicUpstream, blocks: list[dict[str, Any]],
             **extra: Any) -> list[dict[str, Any]]:
    claude.push(Reply(stream=message_events(blocks)))
    return [chunk.model_dump(exclude_unset=True)
            for chunk in client.chat.completions.create(**ASK, tools=TOOLS, stream=True, **extra)]


def assert_strict(result: dict[str, Any], finish: str) -> None:
    """Today's strict answer: OpenAI's finish_reason and fields only."""
    assert "provider" not in result
    choice = result["choices"][0]
    assert choice["finish_reason"] == finish and "content_blocks" not in choice["message"]


def assert_non_strict(result: dict[str, Any], finish: str, blocks: list[dict[str, Any]]) -> None:
    assert result["provider"] == "anthropic"
    choice = result["choices"][0]
    assert choice["finish_reason"] == finish and choice["message"]["content_blocks"] == blocks


def stream_parts(chunks: list[dict[str, Any]]) -> tuple[set[Any], list[Any], list[str], str]:
    """(the chunks' providers, their content_blocks in order, their finish reasons, the text)."""
    choices = [c["choices"][0] for c in chunks if c.get("choices")]
    deltas = [choice.get("delta") or {} for choice in choices]
    return ({c.get("provider") for c in chunks}, [b for d in deltas for b in d.get("content_blocks") or ()],
            [c["finish_reason"] for c in choices if c.get("finish_reason")], "".join(d.get("content") or "" for d in deltas))


NON_STRICT_STREAM_BLOCKS = [{"index": 0, "delta": {"thinking": "The user wants the weather."}},
                            {"index": 0, "delta": {"signature": "sig-1"}},
                            {"index": 1, "delta": {"text": "Let "}}, {"index": 1, "delta": {"text": "me "}},
                            {"index": 1, "delta": {"text": "check."}}]


def test_the_portkey_sdk_gets_non_strict_answers_and_the_openai_sdk_strict_ones(gw, claude):
    sdk = answer(portkey(gw, provider="anthropic"), claude, BLOCKS)
    assert_non_strict(sdk, "tool_use", [THINKING, TEXT])
    message_ = sdk["choices"][0]["message"]
    assert message_["content"] == "Let me check." and message_["tool_calls"] == [CALL]
    assert_non_strict(answer(portkey(gw, provider="anthropic"), claude, [TEXT]), "end_turn", [TEXT])

    plain = answer(openai_sdk(gw, **{"x-portkey-provider": "anthropic"}), claude, BLOCKS)
    assert_strict(plain, "tool_calls")
    assert plain["choices"][0]["message"] == {"role": "assistant", "content": "Let me check.", "tool_calls": [CALL]}
    assert_strict(answer(openai_sdk(gw, **{"x-portkey-provider": "anthropic"}), claude, [TEXT]), "stop")
    # The SDK's own switch sends the header as true: strict again.
    assert_strict(answer(portkey(gw, provider="anthropic", strict_open_ai_compliance=True), claude, [TEXT]), "stop")


def test_the_portkey_sdk_gets_non_strict_streams_and_the_openai_sdk_strict_ones(gw, claude):
    providers, blocks, finishes, text = stream_parts(streamed(portkey(gw, provider="anthropic"), claude, BLOCKS))
    assert (providers, blocks, finishes, text) == ({"anthropic"}, NON_STRICT_STREAM_BLOCKS, ["tool_use"],
                                                   "Let me check.")
    providers, blocks, finishes, text = stream_parts(streamed(portkey(gw, provider="anthropic"), claude, [TEXT]))
    assert (providers, finishes, text) == ({"anthropic"}, ["end_turn"], "Let me check.")
    assert blocks == [{"index": 0, "delta": {"text": t}} for t in ("Let ", "me ", "check.")]

    plain = openai_sdk(gw, **{"x-portkey-provider": "anthropic"})
    chunks = streamed(plain, claude, BLOCKS, stream_options={"include_usage": True})
    assert stream_parts(chunks) == ({None}, [], ["tool_calls"], "Let me check.")
    assert chunks[-1]["usage"]["completion_tokens"] == 4  # the usage chunk, as before
    assert stream_parts(streamed(plain, claude, [TEXT])) == ({None}, [], ["stop"], "Let me check.")


def assert_mode(result: dict[str, Any], chunks: list[dict[str, Any]], *, strict: bool) -> None:
    """Both answers to ``BLOCKS`` in one mode; whatever the mode, the text and the tool call are the same."""
    if strict:
        assert_strict(result, "tool_calls")
        assert stream_parts(chunks)[:3] == ({None}, [], ["tool_calls"])
    else:
        assert_non_strict(result, "tool_use", [THINKING, TEXT])
        assert stream_parts(chunks)[:3] == ({"anthropic"}, NON_STRICT_STREAM_BLOCKS, ["tool_use"])
    assert result["choices"][0]["message"]["content"] == "Let me check."
    assert result["choices"][0]["message"]["tool_calls"] == [CALL]
    assert stream_parts(chunks)[3] == "Let me check."


@pytest.mark.parametrize(("strict", "nested"), [
    (True, False),  # an explicit config: strict; the header false overrides it
    (False, False),  # a config turns it off; the header true overrides it
    (False, True),  # ... for the targets it holds too (inherited), the header for them all
    (None, True),  # neither: strict, Portkey's default; the header false overrides it
])
def test_a_config_sets_strictness_and_the_header_overrides_it(gw, claude, strict, nested):
    by_config = openai_sdk(gw, **{"x-portkey-config": config(strict, nested=nested)})
    assert_mode(answer(by_config, claude, BLOCKS), streamed(by_config, claude, BLOCKS), strict=strict is not False)
    overridden = strict is False
    by_header = openai_sdk(gw, **{"x-portkey-config": config(strict, nested=nested), HEADER: str(overridden).lower()})
    assert_mode(answer(by_header, claude, BLOCKS), streamed(by_header, claude, BLOCKS), strict=overridden)


def test_the_portkey_sdk_with_a_strict_config_still_gets_non_strict_answers(gw, claude):
    """The SDK's header (false) overrides the config's ``strict_open_ai_compliance: true``, as in Portkey."""
    client = portkey(gw, config=json.loads(config(True)))
    assert_non_strict(answer(client, claude, BLOCKS), "tool_use", [THINKING, TEXT])
    providers, blocks, finishes, _ = stream_parts(streamed(client, claude, BLOCKS))
    assert (providers, blocks, finishes) == ({"anthropic"}, NON_STRICT_STREAM_BLOCKS, ["tool_use"])
