"""Property tests over generated streams, both directions.

OpenAI → Anthropic: text, tool calls, parallel calls interleaved by ``index``, empty deltas, usage or none,
mid-stream errors. Every translation obeys Anthropic's event grammar; a clean one, accumulated by the real
``anthropic`` SDK, equals the non-streamed translation of the accumulated OpenAI response; a broken one
ends in an error event the SDK raises on.

Anthropic → OpenAI: generated messages streamed with pings and arbitrary splits; the completion the real
``openai`` SDK accumulates equals the non-streamed translation of the message.
"""

from __future__ import annotations

import itertools
from typing import Any

import anthropic
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sluicegate.providers.translate.chat_to_messages import chat_response_to_message
from sluicegate.providers.translate.frames import DONE
from sluicegate.providers.translate.messages_to_chat import message_to_chat_response
from sluicegate.providers.translate.stream_chat_to_messages import ChatToMessagesStream
from sluicegate.providers.translate.stream_messages_to_chat import MessagesToChatStream
from tests.providers.streams import (
    accumulate_chat,
    anthropic_events,
    anthropic_sdk_message,
    check_grammar,
    decode,
    normalise,
    openai_sdk_completion,
)

EXAMPLES = settings(max_examples=80, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

STOPS = ("END",)  # the client's stop sequences: "END" matched is stop_sequence, "</s>" is end_turn
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-99, 99) | texts,
                           lambda inner: st.lists(inner, max_size=2) | st.dictionaries(texts, inner, max_size=2),
                           max_leaves=4)
arguments = st.dictionaries(texts, json_values, max_size=3).map(lambda d: orjson.dumps(d).decode())


@st.composite
def split(draw: st.DrawFn, whole: str) -> list[str]:
    """``whole`` cut at arbitrary places (pieces concatenate back to it)."""
    cuts = sorted(draw(st.sets(st.integers(1, max(len(whole) - 1, 1)), max_size=4)))
    bounds = [0, *[c for c in cuts if c < len(whole)], len(whole)]
    return [whole[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "smol",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}


@st.composite
def tool_deltas(draw: st.DrawFn, count: int) -> list[list[dict[str, Any]]]:
    """Per call, its deltas: the first names it (with or without a first argument piece)."""
    calls = []
    for index in range(count):
        pieces = draw(split(draw(arguments)))
        first = {"index": index, "id": f"call_{index}", "type": "function",
                 "function": {"name": draw(st.sampled_from(["weather", "time", "noop"])), "arguments": ""}}
        if pieces and draw(st.booleans()):
            first["function"]["arguments"] = pieces.pop(0)
        calls.append([first] + [{"index": index, "function": {"arguments": piece}} for piece in pieces])
    return calls


@st.composite
def interleaved(draw: st.DrawFn, calls: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The calls' deltas interleaved at random, each call's own order kept, calls first seen by index."""
    queues, merged, started = [list(deltas) for deltas in calls], [], 0
    while any(queues):
        candidates = [n for n in range(started) if queues[n]] + ([started] if started < len(queues) else [])
        number = draw(st.sampled_from(candidates))
        started = max(started, number + 1)
        merged.append(queues[number].pop(0))
    return merged


@st.composite
def openai_streams(draw: st.DrawFn) -> dict[str, Any]:
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": piece}) for piece in draw(st.lists(texts, max_size=4))]
    call_count = draw(st.integers(0, 3))
    deltas = draw(interleaved(draw(tool_deltas(call_count))))
    while deltas:  # one or two tool-call entries per chunk
        take = draw(st.integers(1, 2))
        chunks.append(_chunk({"tool_calls": deltas[:take]}))
        deltas = deltas[take:]
    late_text = call_count > 0 and draw(st.booleans())
    if late_text:
        chunks.append(_chunk({"content": draw(texts.filter(bool))}))
    for _ in range(draw(st.integers(0, 3))):  # empty deltas anywhere after the first chunk
        chunks.insert(draw(st.integers(1, len(chunks))), _chunk(draw(st.sampled_from([{}, {"content": ""}, None]))))
    finish = draw(st.sampled_from(["tool_calls", "stop"] if call_count else ["stop", "length"]))
    chunks.append(_chunk({}, finish))
    if finish == "stop" and draw(st.booleans()):  # the upstream says which stop matched (vLLM does)
        chunks[-1]["choices"][0]["stop_reason"] = draw(st.sampled_from(["END", "</s>"]))
    if draw(st.booleans()):
        prompt, completion = draw(st.integers(1, 500)), draw(st.integers(0, 500))
        chunks.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "smol", "choices": [],
                       "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}})
    failure = draw(st.sampled_from([None, None, "error_chunk", "cut"]))
    cut_at = draw(st.integers(1, len(chunks) - 1))
    return {"chunks": chunks, "late_text": late_text, "failure": failure, "cut_at": cut_at,
            "live": draw(st.booleans())}


def _label(case: dict[str, Any]) -> None:
    """Kinds of stream, shown by ``--hypothesis-show-statistics``: proof the generator covers them."""
    indices = [entry["index"] for c in case["chunks"] for choice in c["choices"]
               for entry in choice["delta"].get("tool_calls") or []]
    event(f"tool calls: {len(set(indices))}")
    if any(a > b for a, b in itertools.pairwise(indices)):
        event("parallel calls interleaved")
    event(f"failure: {case['failure']}")
    if any(not choice["delta"].get("content") and not choice["delta"].get("tool_calls") and not choice["finish_reason"]
           for c in case["chunks"][1:] for choice in c["choices"]):
        event("empty deltas")


def _run(case: dict[str, Any]) -> list[bytes]:
    _label(case)
    stream = ChatToMessagesStream(message_id="msg_p", model="alias", estimated_input_tokens=17,
                                  stop_sequences=STOPS, stream_tool_arguments=case["live"])
    chunks = case["chunks"]
    if case["failure"] == "error_chunk":
        chunks = [*chunks[:case["cut_at"]], {"error": {"message": "boom", "type": "server_error"}}, *chunks]
    elif case["failure"] == "cut":
        chunks = chunks[:case["cut_at"]]
    frames = [frame for chunk in chunks for frame in stream.feed(chunk)]
    return frames + (stream.fail("boom") if case["failure"] == "cut" else stream.finish())


@EXAMPLES
@given(openai_streams())
def test_openai_stream_translates_to_a_well_formed_anthropic_stream(case: dict[str, Any]) -> None:
    frames = _run(case)
    events = anthropic_events(frames)
    check_grammar(events)
    if case["failure"]:
        assert events[-1] == {"type": "error", "error": {"type": "api_error", "message": "boom"}}
        with pytest.raises(anthropic.APIStatusError, match="boom"):
            anthropic_sdk_message(frames)
        return
    streamed = anthropic_sdk_message(frames)
    whole = chat_response_to_message(accumulate_chat(case["chunks"]), message_id="msg_p", stop_sequences=STOPS,
                                     estimated_input_tokens=17)
    streamed = {key: streamed.get(key) for key in whole}
    assert (normalise(streamed) if case["late_text"] else streamed) == (normalise(whole) if case["late_text"] else whole)


@st.composite
def anthropic_messages(draw: st.DrawFn) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for number in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            content.append({"type": "text", "text": draw(texts)})
        else:
            content.append({"type": "tool_use", "id": f"toolu_{number}", "name": "f",
                            "input": orjson.loads(draw(arguments))})
    reason = "tool_use" if any(b["type"] == "tool_use" for b in content) else draw(
        st.sampled_from(["end_turn", "max_tokens", "stop_sequence"]))
    usage = {"input_tokens": draw(st.integers(0, 99)), "output_tokens": draw(st.integers(0, 99)),
             "cache_read_input_tokens": draw(st.integers(0, 9)), "cache_creation_input_tokens": 0}
    return {"id": "msg_q", "type": "message", "role": "assistant", "model": "claude-like", "content": content,
            "stop_reason": reason, "stop_sequence": None, "usage": usage}


@st.composite
def anthropic_stream(draw: st.DrawFn, message: dict[str, Any]) -> list[dict[str, Any]]:
    start_usage = {**message["usage"], "output_tokens": 1}
    events = [{"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                    "usage": start_usage}}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            deltas = [{"type": "text_delta", "text": piece} for piece in draw(split(block["text"]))]
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}})
            pieces = draw(split(orjson.dumps(block["input"]).decode()))
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                   "usage": {"output_tokens": message["usage"]["output_tokens"]}})
    events.append({"type": "message_stop"})
    for _ in range(draw(st.integers(0, 2))):
        events.insert(draw(st.integers(1, len(events) - 1)), {"type": "ping"})
    return events


@EXAMPLES
@given(st.data())
def test_anthropic_stream_accumulates_to_the_non_streamed_translation(data: st.DataObject) -> None:
    message = data.draw(anthropic_messages())
    stream = MessagesToChatStream(completion_id="chatcmpl-q", created=5, include_usage=True)
    frames = [frame for event in data.draw(anthropic_stream(message)) for frame in stream.feed(event)]
    frames += stream.finish()
    payloads = [payload for _, payload in decode(frames)]
    assert payloads[-1] is DONE and all(isinstance(p, dict) and "error" not in p for p in payloads[:-1])
    if message["stop_reason"] == "max_tokens":  # the SDK's stream helper raises LengthFinishReasonError
        streamed = accumulate_chat(payloads[:-1])
    else:
        streamed = openai_sdk_completion(frames)
    whole = message_to_chat_response(message, completion_id="chatcmpl-q", created=5)
    assert streamed["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert streamed["usage"] == whole["usage"]
    got, want = streamed["choices"][0]["message"], whole["choices"][0]["message"]
    assert (got.get("content") or None, got.get("tool_calls")) == (want["content"] or None, want.get("tool_calls"))
