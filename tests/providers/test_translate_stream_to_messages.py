"""OpenAI chunks in, Anthropic events out: the event sequence, and the real ``anthropic`` SDK's
``get_final_message()`` over the translated bytes. The peers' known failure modes each have a test."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import pytest

from sluicegate.providers import contract, openai
from sluicegate.providers.translate.stream_chat_to_messages import ChatToMessagesStream
from tests.fakes.transport import sse_event
from tests.providers.streams import anthropic_events, anthropic_sdk_message, check_grammar


def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None, **choice: object) -> dict:
    body: dict = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "smol", "choices": []}
    if delta is not None or finish is not None:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish, **choice}]
    if usage is not None:
        body["usage"] = usage
    return body


def call(index: int, arguments: str = "", name: str | None = None, call_id: str | None = None) -> dict:
    function = {"arguments": arguments} if name is None else {"name": name, "arguments": arguments}
    entry: dict = {"index": index, "function": function}
    if call_id:
        entry.update(id=call_id, type="function")
    return entry


USAGE = {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40}


def translate(chunks: list[dict], end: str = "finish", **options: object) -> list[bytes]:
    stream = ChatToMessagesStream(message_id="msg_1", model="alias", estimated_input_tokens=25, **options)
    frames = [frame for c in chunks for frame in stream.feed(c)]
    return frames + (stream.finish() if end == "finish" else stream.fail("upstream connection lost"))


def test_text_stream_event_by_event() -> None:
    frames = translate([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}),
                        chunk({"content": "lo"}), chunk({}, "stop"), chunk(usage=USAGE)])
    events = anthropic_events(frames)
    assert [(e["type"], e.get("index")) for e in events] == [
        ("message_start", None), ("content_block_start", 0), ("content_block_delta", 0),
        ("content_block_delta", 0), ("content_block_stop", 0), ("message_delta", None), ("message_stop", None)]
    assert events[-2] == {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                          "usage": {"output_tokens": 9, "input_tokens": 31, "cache_read_input_tokens": 0}}
    final = anthropic_sdk_message(frames)
    assert final["content"] == [{"type": "text", "text": "Hello"}] and final["model"] == "smol"
    assert (final["stop_reason"], final["usage"]["input_tokens"], final["usage"]["output_tokens"]) == ("end_turn", 31, 9)


def test_message_start_usage_is_never_zero_zero() -> None:
    """Peers send input_tokens 0 at message_start: here the estimate, then the real count when reported."""
    frames = translate([chunk({"content": "Hi"}), chunk({}, "stop"), chunk(usage=USAGE)])
    start = anthropic_events(frames)[0]
    assert start["message"]["usage"]["input_tokens"] == 25
    assert anthropic_sdk_message(frames)["usage"]["input_tokens"] == 31


def test_usage_in_the_first_chunk_is_used_at_message_start() -> None:
    """Servers reporting usage on every chunk (vLLM's continuous usage stats) give the real count at once."""
    stream = ChatToMessagesStream(message_id="m", estimated_input_tokens=25)
    start = anthropic_events(stream.feed(chunk({"role": "assistant", "content": ""}, usage=USAGE)))[0]
    assert start["message"]["usage"]["input_tokens"] == 31 and not stream.usage["input_tokens_estimated"]


def test_without_upstream_usage_the_estimate_stays_and_is_marked() -> None:
    stream = ChatToMessagesStream(message_id="m", estimated_input_tokens=25)
    frames = stream.feed(chunk({"content": "Hi"})) + stream.feed(chunk({}, "stop")) + stream.finish()
    assert anthropic_sdk_message(frames)["usage"]["input_tokens"] == 25
    assert stream.usage["input_tokens_estimated"] is True and stream.usage["input_tokens"] == 25


def test_tool_called_is_tool_use_even_when_finish_reason_says_stop() -> None:
    frames = translate([chunk({"tool_calls": [call(0, "", "now", "call_a")]}), chunk({}, "stop")])
    assert anthropic_sdk_message(frames)["stop_reason"] == "tool_use"


def test_text_then_parallel_tool_calls_have_distinct_ordered_indices() -> None:
    frames = translate([
        chunk({"content": "Checking."}),
        chunk({"tool_calls": [call(0, "", "weather", "call_a")]}), chunk({"tool_calls": [call(0, '{"city":')]}),
        chunk({"tool_calls": [call(0, ' "Oslo"}')]}),
        chunk({"tool_calls": [call(1, '{"city": "Rome"}', "weather", "call_b")]}), chunk({}, "tool_calls")])
    events = anthropic_events(frames)
    check_grammar(events)
    starts = [(e["index"], e["content_block"]["type"]) for e in events if e["type"] == "content_block_start"]
    assert starts == [(0, "text"), (1, "tool_use"), (2, "tool_use")]
    assert anthropic_sdk_message(frames)["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_b", "name": "weather", "input": {"city": "Rome"}}]


def test_interleaved_parallel_calls_keep_every_call_and_every_argument() -> None:
    """Peers keep only the first call, or lose the arguments that arrive after another call started."""
    frames = translate([
        chunk({"tool_calls": [call(0, "", "weather", "call_a"), call(1, "", "time", "call_b")]}),
        chunk({"tool_calls": [call(1, '{"tz": ')]}), chunk({"tool_calls": [call(0, '{"city": ')]}),
        chunk({"tool_calls": [call(1, '"UTC"}')]}), chunk({"tool_calls": [call(0, '"Oslo"}')]}),
        chunk({"tool_calls": [call(2, "{}", "noop", "call_c")]}), chunk({}, "tool_calls"), chunk(usage=USAGE)])
    check_grammar(anthropic_events(frames))
    final = anthropic_sdk_message(frames)
    assert final["content"] == [
        {"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_b", "name": "time", "input": {"tz": "UTC"}},
        {"type": "tool_use", "id": "call_c", "name": "noop", "input": {}}]
    assert final["stop_reason"] == "tool_use"


def test_parallel_calls_under_one_index_stay_apart_by_their_ids() -> None:
    """Some servers give every parallel call index 0, each with its own id: merged, the two were one call
    whose input was "{}{}" (not JSON) and the second name was lost."""
    frames = translate([
        chunk({"tool_calls": [call(0, "", "weather", "call_a")]}), chunk({"tool_calls": [call(0, '{"city": "Oslo"}')]}),
        chunk({"tool_calls": [call(0, "", "time", "call_b")]}), chunk({"tool_calls": [call(0, '{"tz": "UTC"}')]}),
        chunk({"tool_calls": [call(1, "{}", "noop", "call_c")]}), chunk({}, "tool_calls"), chunk(usage=USAGE)])
    check_grammar(anthropic_events(frames))
    assert anthropic_sdk_message(frames)["content"] == [
        {"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_b", "name": "time", "input": {"tz": "UTC"}},
        {"type": "tool_use", "id": "call_c", "name": "noop", "input": {}}]


def test_arguments_before_the_name_are_not_lost() -> None:
    frames = translate([chunk({"tool_calls": [call(0, '{"a"', call_id="call_a")]}),
                        chunk({"tool_calls": [call(0, ": 1}", "f")]}), chunk({}, "tool_calls")])
    assert anthropic_sdk_message(frames)["content"] == [{"type": "tool_use", "id": "call_a", "name": "f",
                                                         "input": {"a": 1}}]


def test_tool_arguments_streamed_as_input_json_deltas() -> None:
    pieces = ['{"ci', 'ty": "O', 'slo"}']
    frames = translate([chunk({"tool_calls": [call(0, "", "weather", "call_a")]})]
                       + [chunk({"tool_calls": [call(0, piece)]}) for piece in pieces] + [chunk({}, "tool_calls")])
    deltas = [e["delta"] for e in anthropic_events(frames) if e["type"] == "content_block_delta"]
    assert deltas == [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]


def test_bad_json_of_a_buffered_call_arrives_as_raw() -> None:
    frames = translate([chunk({"tool_calls": [call(0, "{oops", "f", "call_a")]}), chunk({}, "tool_calls")],
                       stream_tool_arguments=False)
    assert anthropic_sdk_message(frames)["content"][0]["input"] == {"_raw": "{oops"}


def test_text_after_a_tool_call_is_kept_in_a_later_block() -> None:
    frames = translate([chunk({"tool_calls": [call(0, "{}", "f", "call_a")]}), chunk({"content": "done"}),
                        chunk({}, "tool_calls")])
    check_grammar(anthropic_events(frames))
    assert [b["type"] for b in anthropic_sdk_message(frames)["content"]] == ["tool_use", "text"]


def test_matched_stop_sequence_and_max_tokens() -> None:
    stopped = translate([chunk({"content": "a"}), chunk({}, "stop", stop_reason="END")], stop_sequences=["END"])
    assert anthropic_events(stopped)[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    cut = translate([chunk({"content": "a"}), chunk({}, "length")])
    assert anthropic_sdk_message(cut)["stop_reason"] == "max_tokens"


def test_failure_after_the_start_is_an_error_event_never_a_clean_end() -> None:
    frames = translate([chunk({"content": "Hel"})], end="fail")
    events = anthropic_events(frames)
    check_grammar(events)
    assert events[-1] == {"type": "error", "error": {"type": "api_error", "message": "upstream connection lost"}}
    with pytest.raises(anthropic.APIStatusError, match="upstream connection lost"):
        anthropic_sdk_message(frames)


def test_error_chunk_mid_stream_becomes_an_error_event_and_ends_the_stream() -> None:
    stream = ChatToMessagesStream(message_id="m", estimated_input_tokens=1)
    frames = stream.feed(chunk({"content": "Hel"}))
    frames += stream.feed({"error": {"message": "out of memory", "code": 503}})
    assert stream.feed(chunk({"content": "lo"})) == [] and stream.finish() == []
    assert anthropic_events(frames)[-1]["error"] == {"type": "overloaded_error", "message": "out of memory"}


def test_an_empty_clean_stream_is_an_empty_message() -> None:
    stream = ChatToMessagesStream(message_id="m", model="alias", estimated_input_tokens=3)
    assert not stream.started
    frames = stream.finish()
    check_grammar(anthropic_events(frames))
    final = anthropic_sdk_message(frames)
    assert (final["content"], final["stop_reason"], final["model"]) == ([], "end_turn", "alias")


def test_started_means_message_start_was_produced() -> None:
    stream = ChatToMessagesStream(message_id="m", estimated_input_tokens=1)
    assert stream.fail("refused") and not stream.started  # a failure before the start may still fall back
    stream = ChatToMessagesStream(message_id="m", estimated_input_tokens=1)
    stream.feed(chunk({"role": "assistant"}))
    assert stream.started


# An upstream event the translation cannot read. Before: ``SSEDecoder`` handed its raw bytes on, the state
# machine skipped them, and a text delta in invalid UTF-8 vanished: the client saw message_start, then
# end_turn with output_tokens 0 and message_stop. Now it is a malformed answer (as the non-streamed
# translation's 502 for the same bytes): before the start a failed attempt, after it an error event.
INVALID_UTF8 = b'{"choices":[{"index":0,"delta":{"content":"\xff\xfe\xc3"},"finish_reason":null}]}'
UNREADABLE = [INVALID_UTF8, b"not json", b'{"choices": [', b"[1, 2]", b'"text"', b"42"]
NOT_READ = r"upstream sent an event that is not (JSON \(str is not valid UTF-8|JSON \(|a JSON object \()"


def decoder_for_messages() -> Any:
    translation = openai.SPEC.translation("messages")
    translation.request_body({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
                             b"", edited=False)
    return translation.stream_decoder()


def test_an_unreadable_chunk_before_the_start_is_a_failed_attempt_not_an_empty_message() -> None:
    for data in UNREADABLE:
        decoder = decoder_for_messages()
        finish = sse_event(chunk({}, "stop")) + b"data: [DONE]\n\n"
        opening = decoder.opening(b"data: " + data + b"\n\n" + finish)
        assert opening.verdict == contract.FAILED, data
        assert re.match(NOT_READ, opening.message or ""), (data, opening)
        assert ("not valid UTF-8" in (opening.message or "")) is (data is INVALID_UTF8)


def test_an_unreadable_chunk_after_the_start_ends_the_stream_with_an_error_event() -> None:
    for data in UNREADABLE:
        decoder = decoder_for_messages()
        closed: list[bool] = []
        decoder.attach(lambda closed=closed: closed.append(True))
        assert decoder.opening(sse_event(chunk({"content": "Hel"}))) == contract.START
        frames = [decoder.head(), decoder.relay(b"data: " + data + b"\n\n"),
                  decoder.relay(sse_event(chunk({}, "stop")) + b"data: [DONE]\n\n")]
        events = anthropic_events(frames)
        check_grammar(events)
        assert events[-1]["type"] == "error" and re.match(NOT_READ, events[-1]["error"]["message"]), (data, events)
        assert closed == [True] and decoder.end_failure() == events[-1]["error"]["message"]
        with pytest.raises(anthropic.APIStatusError, match=NOT_READ):
            anthropic_sdk_message(frames)


def test_empty_data_lines_and_comments_are_still_nothing() -> None:
    decoder = decoder_for_messages()
    assert decoder.opening(b"data:\n\ndata: \n\n: keep-alive\n\n" + sse_event(chunk({"content": "Hi"}))) == contract.START
    frames = [decoder.head(), decoder.relay(b"data:\n\n" + sse_event(chunk({}, "stop")) + b"data: [DONE]\n\n")]
    assert decoder.end_failure() is None
    assert [block["text"] for block in anthropic_sdk_message(frames)["content"]] == ["Hi"]
