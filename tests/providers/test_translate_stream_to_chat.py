"""Anthropic events in, OpenAI chunks out: the real ``openai`` SDK reads the translated bytes."""

from __future__ import annotations

import re

import openai
import orjson
import pytest

from sluicegate.providers import anthropic as anthropic_spec
from sluicegate.providers import contract
from sluicegate.providers.translate.frames import DONE, DONE_FRAME, openai_frame
from sluicegate.providers.translate.stream_messages_to_chat import MessagesToChatStream
from tests.providers.streams import decode, openai_sdk_chunks, openai_sdk_completion

START = {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-like", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 21, "output_tokens": 1}}}


def block_start(index: int, block: dict) -> dict:
    return {"type": "content_block_start", "index": index, "content_block": block}


def text(index: int, value: str) -> dict:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": value}}


def json_delta(index: int, value: str) -> dict:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": value}}


def stop(index: int) -> dict:
    return {"type": "content_block_stop", "index": index}


def end(reason: str, output_tokens: int = 6) -> list[dict]:
    return [{"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
             "usage": {"output_tokens": output_tokens}}, {"type": "message_stop"}]


def translate(events: list[dict], include_usage: bool = False) -> tuple[MessagesToChatStream, list[bytes]]:
    stream = MessagesToChatStream(completion_id="chatcmpl-1", created=1700000000, include_usage=include_usage)
    frames = [frame for event in events for frame in stream.feed(event)]
    return stream, frames + stream.finish()


def test_text_stream_with_usage_and_done() -> None:
    stream, frames = translate([START, {"type": "ping"}, block_start(0, {"type": "text", "text": ""}),
                                text(0, "Hel"), {"type": "ping"}, text(0, "lo"), stop(0), *end("end_turn")],
                               include_usage=True)
    assert decode(frames)[-1] == (None, DONE)
    chunks = openai_sdk_chunks(frames)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].model == "claude-like"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 21
    assert chunks[-1].usage.completion_tokens == 6 and stream.usage["total_tokens"] == 27
    assert len(chunks) == 5  # role, Hel, lo, finish, usage: the pings left no trace


def test_parallel_tool_use_blocks_become_indexed_tool_calls() -> None:
    _, frames = translate([
        START, block_start(0, {"type": "text", "text": ""}), text(0, "Checking."), stop(0),
        block_start(1, {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}}),
        json_delta(1, '{"city": '), json_delta(1, '"Oslo"}'), stop(1),
        block_start(2, {"type": "tool_use", "id": "toolu_b", "name": "time", "input": {}}), stop(2),
        *end("tool_use")])
    calls: dict[int, dict] = {}
    chunks = openai_sdk_chunks(frames)
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(call.index, {"id": call.id, "name": call.function.name, "arguments": ""})
            entry["arguments"] += call.function.arguments or ""
    assert calls == {0: {"id": "toolu_a", "name": "weather", "arguments": '{"city": "Oslo"}'},
                     1: {"id": "toolu_b", "name": "time", "arguments": "{}"}}  # no arguments is "{}", not ""
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    final = openai_sdk_completion(frames)["choices"][0]
    assert final["finish_reason"] == "tool_calls" and final["message"]["content"] == "Checking."
    assert [c["function"] for c in final["message"]["tool_calls"]] == [
        {"name": "weather", "arguments": '{"city": "Oslo"}'}, {"name": "time", "arguments": "{}"}]


@pytest.mark.parametrize("reason, finish", [("max_tokens", "length"), ("stop_sequence", "stop"),
                                            ("refusal", "content_filter"), ("end_turn", "stop")])
def test_stop_reason_to_finish_reason(reason: str, finish: str) -> None:
    _, frames = translate([START, block_start(0, {"type": "text", "text": ""}), text(0, "a"), stop(0), *end(reason)])
    assert openai_sdk_chunks(frames)[-1].choices[0].finish_reason == finish


def test_error_event_becomes_an_error_the_sdk_raises() -> None:
    _, frames = translate([START, block_start(0, {"type": "text", "text": ""}), text(0, "Hel"),
                           {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}])
    assert decode(frames)[-1] == ("error", {"error": {"message": "Overloaded", "type": "server_error",
                                                   "param": None, "code": None}})
    with pytest.raises(openai.APIError, match="Overloaded"):
        openai_sdk_chunks(frames)


def test_a_stream_cut_before_message_stop_is_an_error_not_a_clean_end() -> None:
    _, frames = translate([START, block_start(0, {"type": "text", "text": ""}), text(0, "Hel")])
    assert all(data is not DONE for _, data in decode(frames))
    with pytest.raises(openai.APIError, match="before message_stop"):
        openai_sdk_chunks(frames)


def test_after_the_end_nothing_more() -> None:
    stream, _ = translate([START, *end("end_turn")])
    assert stream.closed and stream.feed(text(0, "late")) == [] and stream.fail("x") == []


# Fields of another type than Anthropic's are passed over: a "text" of 5 reached the client as
# "content": 5, which clients that add strings cannot take.
ODD_EVENTS = [
    text(0, 5), text(0, ["x"]), text(0, {"a": 1}),
    json_delta(1, 7), block_start(2, {"type": "text", "text": 9}),
    block_start(3, {"type": "tool_use", "id": 4, "name": ["f"], "input": {}}),
]


def test_fields_of_another_type_are_passed_over() -> None:
    odd_start = {**START, "message": {**START["message"], "model": 12}}
    _, frames = translate([odd_start, block_start(0, {"type": "text", "text": ""}), text(0, "ok"), *ODD_EVENTS,
                           stop(0), *end("end_turn")])
    for _, data in decode(frames):
        if isinstance(data, dict):
            assert isinstance(data["model"], str)
            for choice in data["choices"]:
                delta = choice["delta"]
                assert isinstance(delta.get("content", ""), str), delta
                for call in delta.get("tool_calls", []):
                    assert all(isinstance(v, str) for v in (call.get("id", ""), call["function"].get("name", ""),
                                                           call["function"].get("arguments", ""))), call
    chunks = openai_sdk_chunks(frames)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ok"


# -- strict_open_ai_compliance: false (what the portkey-ai SDKs send) ----------------------------------------

THINKING_EVENTS = [
    START, block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}, stop(0),
    block_start(1, {"type": "redacted_thinking", "data": "opaque"}), stop(1),
    block_start(2, {"type": "text", "text": ""}), text(2, "Hel"), text(2, "lo"), stop(2),
    block_start(3, {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}}), json_delta(3, "{}"), stop(3),
    *end("tool_use"),
]


def translate_with(events: list[dict], *, strict: bool) -> list[dict]:
    stream = MessagesToChatStream(completion_id="chatcmpl-1", created=1700000000, include_usage=True, strict=strict)
    frames = [frame for event in events for frame in stream.feed(event)] + stream.finish()
    return [data for _, data in decode(frames) if isinstance(data, dict)]


def test_not_strict_chunks_carry_the_block_deltas_the_provider_and_anthropic_s_stop_reason() -> None:
    chunks = translate_with(THINKING_EVENTS, strict=False)
    assert {chunk.get("provider") for chunk in chunks} == {"anthropic"}  # the usage chunk included
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    assert [block for delta in deltas for block in delta.get("content_blocks", [])] == [
        {"index": 0, "delta": {"thinking": "Hmm."}}, {"index": 0, "delta": {"signature": "sig"}},
        {"index": 1, "delta": {"data": "opaque"}},  # a redacted block has no deltas: its start is the content
        {"index": 2, "delta": {"text": "Hel"}}, {"index": 2, "delta": {"text": "lo"}}]
    assert all("content_blocks" not in delta for delta in deltas if "tool_calls" in delta)
    assert "".join(delta.get("content") or "" for delta in deltas) == "Hello"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] \
        == ["tool_use"]
    assert openai_sdk_completion([openai_frame(c) for c in chunks] + [DONE_FRAME])["choices"][0]["message"][
        "tool_calls"][0]["function"] == {"name": "weather", "arguments": "{}"}


def test_strict_chunks_are_as_they_were() -> None:
    chunks = translate_with(THINKING_EVENTS, strict=True)
    assert all("provider" not in chunk for chunk in chunks)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    assert deltas[:3] == [{"role": "assistant", "content": ""}, {"content": "Hel"}, {"content": "lo"}]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls" and chunks[-1]["choices"] == []


def test_not_strict_a_server_tool_block_is_content_blocks_not_a_tool_call() -> None:
    """Only tool_use blocks become tool_calls; a server tool's block (web search …) is a content block."""
    chunks = translate_with([START, block_start(0, {"type": "server_tool_use", "id": "srvtoolu_1",
                                                    "name": "web_search", "input": {}}),
                             json_delta(0, '{"query": "x"}'), json_delta(0, ""), stop(0), *end("end_turn")],
                            strict=False)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    assert [block for delta in deltas for block in delta.get("content_blocks", [])] == [
        {"index": 0, "delta": {"id": "srvtoolu_1", "name": "web_search", "input": {}}},
        {"index": 0, "delta": {"partial_json": '{"query": "x"}'}}]
    assert all("tool_calls" not in delta for delta in deltas)
    assert translate_with([START, block_start(0, {"type": "server_tool_use", "id": "s", "name": "n", "input": {}}),
                           json_delta(0, "{}"), stop(0), *end("end_turn")], strict=True)[1]["choices"][0][
        "finish_reason"] == "stop"  # strict: the block leaves no trace


# An upstream event the translation cannot read (invalid UTF-8 in a text delta, not JSON, not an object).
# Before: skipped, so the text vanished and the client got a clean finish and [DONE]. Now a malformed
# answer (as the non-streamed translation's 502 for the same bytes): before the start a failed attempt,
# after it an error chunk and no [DONE].
INVALID_UTF8 = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\xff\xfe\xc3"}}'
UNREADABLE = [INVALID_UTF8, b"not json", b'{"type": "content_block_delta", ', b"[1]", b"7"]
NOT_READ = r"upstream sent an event that is not (JSON|a JSON object) \("


def frame(event: dict | bytes) -> bytes:
    data = event if isinstance(event, bytes) else orjson.dumps(event)
    name = event["type"].encode() if isinstance(event, dict) else b"content_block_delta"
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


def test_an_unreadable_event_before_the_start_is_a_failed_attempt_not_a_clean_answer() -> None:
    for data in UNREADABLE:
        decoder = anthropic_spec.SPEC.translation("chat").stream_decoder()
        rest = b"".join(map(frame, [START, block_start(0, {"type": "text", "text": ""})])) + frame(data) + \
            b"".join(map(frame, [stop(0), *end("end_turn")]))
        opening = decoder.opening(rest)
        assert opening.verdict == contract.FAILED and re.match(NOT_READ, opening.message or ""), (data, opening)
        assert ("not valid UTF-8" in (opening.message or "")) is (data is INVALID_UTF8)


def test_an_unreadable_event_after_the_start_is_an_error_chunk_and_no_done() -> None:
    for data in UNREADABLE:
        decoder = anthropic_spec.SPEC.translation("chat").stream_decoder()
        closed: list[bool] = []
        decoder.attach(lambda closed=closed: closed.append(True))
        assert decoder.opening(b"".join(map(frame, [START, block_start(0, {"type": "text", "text": ""}),
                                                   text(0, "Hel")]))) == contract.START
        frames = [decoder.head(), decoder.relay(frame(data)), decoder.relay(b"".join(map(frame, [stop(0),
                                                                                             *end("end_turn")])))]
        last = decode(frames)[-1][1]
        assert isinstance(last, dict) and re.match(NOT_READ, last["error"]["message"]), (data, last)
        assert all(data is not DONE for _, data in decode(frames)) and closed == [True]
        with pytest.raises(openai.APIError, match=NOT_READ):
            openai_sdk_chunks(frames)
