"""Usage, model and estimates from what the upstream sent (pure functions)."""

from __future__ import annotations

import orjson
import pytest

from sluicegate.telemetry import usage
from sluicegate.telemetry.usage import Usage


def sse(*events) -> bytes:
    out = b""
    for event in events:
        out += b"data: " + (event.encode() if isinstance(event, str) else orjson.dumps(event)) + b"\n\n"
    return out


def chunk(content=None, *, role=None, finish=None, usage_=None, model="m"):
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    body = {"model": model, "choices": [] if usage_ else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage_:
        body["usage"] = usage_
    return body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model":"gpt","usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}',
         (Usage(5, 3, 8), "gpt")),
        (b'{"usage":{"prompt_tokens":7,"total_tokens":7}}', (Usage(7, 0, 7), None)),  # embeddings
        (b'{"usage":{"input_tokens":2,"output_tokens":4}}', (Usage(2, 4, 6), None)),  # Anthropic names
        (b'{"usage":{"prompt_tokens":-1}}', (None, None)),
        (b'{"usage":{"prompt_tokens":true}}', (None, None)),
        (b'{"usage":null,"model":3}', (None, None)),
        (b"[1,2]", (None, None)),
        (b"not json", (None, None)),
        (b"", (None, None)),
    ],
)
def test_json_answers(body, expected):
    assert tuple(usage.from_json_body(body)) == expected


def test_stream_usage_in_the_tail_and_model_in_the_head():
    head = sse(chunk(role="assistant", content=""), chunk("Hel"))
    tail = sse(chunk("lo"), chunk(finish="stop"), chunk(usage_={"prompt_tokens": 4, "completion_tokens": 2,
                                                                 "total_tokens": 6}), "[DONE]")
    answer = usage.from_stream(head, tail, whole=False)
    assert answer == (Usage(4, 2, 6), "m")


def test_stream_whose_end_arrived_with_its_head():
    head = sse(chunk("a"), chunk(usage_={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}), "[DONE]")
    assert usage.from_stream(head, b"", whole=True).usage == Usage(1, 1, 2)
    assert usage.from_stream(head, b"", whole=False).usage is None  # the head is not searched for the end


def test_estimate_counts_content_events_only():
    head = sse(chunk(role="assistant", content=""), chunk("one"))
    middle = [sse(chunk(f"w{i}")) for i in range(10)]
    end = [sse(chunk("last")), sse(chunk(finish="stop")), sse("[DONE]")]
    chunks = middle + end
    events_after_head = sum(c.count(b"data:") for c in chunks)
    tail = b"".join(chunks[-4:])
    # one + w0..w9 + last = 12 content events; the role chunk, the finish chunk and [DONE] are not content
    assert usage.estimate_completion(head, tail, events_after_head, whole=False) == 12
    assert usage.estimate_completion(head, b"".join(chunks), events_after_head, whole=True) == 12


# Chunks an upstream may send whose fields are not the shapes OpenAI's are: passed over as carrying no
# content (a `delta` of 5 made the estimate raise, and the request's log record was dropped).
ODD_CHUNKS = [
    {"choices": [{"delta": 5}]}, {"choices": [{"delta": [1]}]}, {"choices": [{"delta": "text"}]},
    {"choices": [{"delta": None}]}, {"choices": 5}, {"choices": "abc"}, {"choices": {"delta": {}}},
    {"choices": [5, None, "x"]}, {"choices": None},
]


@pytest.mark.parametrize("odd", ODD_CHUNKS)
def test_an_odd_chunk_counts_as_no_content(odd):
    head = sse(chunk("one"))
    stream = sse(chunk("two")) + sse(odd) + sse("[DONE]")
    assert usage.estimate_completion(head, stream, stream.count(b"data:"), whole=True) == 2
    assert usage.estimate_completion(head, stream, stream.count(b"data:"), whole=False) == 2


def test_a_relayed_anthropic_stream_without_usage_counts_its_content_deltas():
    """Its completion was estimated 0 (its events have no ``choices``): logged as free."""
    def event(body: dict) -> bytes:
        return b"event: " + body["type"].encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"

    head = (event({"type": "message_start", "message": {"model": "c", "content": []}})
            + event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
            + event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}}))
    middle = [event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"w{i}"}})
              for i in range(6)]
    end = [event({"type": "content_block_stop", "index": 0}), event({"type": "ping"}),
           event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}), event({"type": "message_stop"})]
    chunks = middle + end
    events_after_head = sum(c.count(b"data:") for c in chunks)
    assert usage.from_stream(head, b"".join(chunks), whole=True).usage is None  # nothing reported: estimated
    assert usage.estimate_completion(head, b"".join(chunks), events_after_head, whole=True) == 7
    assert usage.estimate_completion(head, b"".join(chunks[-5:]), events_after_head, whole=False) == 7


def test_estimate_when_the_tail_starts_mid_event():
    head = sse(chunk("a"))
    stream = b"".join(sse(chunk(f"t{i}")) for i in range(6)) + sse(chunk(finish="stop")) + sse("[DONE]")
    cut = stream[10:]  # the kept tail begins inside the first event
    assert usage.estimate_completion(head, cut, stream.count(b"data:"), whole=False) == 7


@pytest.mark.parametrize(
    ("body", "tokens"),
    [
        ({"messages": [{"role": "user", "content": "abcdefgh"}]}, 2),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "abcd"}, {"type": "image_url"}]}]}, 1),
        ({"prompt": "abcde"}, 2),
        ({"input": ["abcd", "efgh"]}, 2),
        (None, 0),
        ({"prompt": "abcd", "messages": 5}, 1),  # raised: a stream's record was dropped
        ({"prompt": "abcd", "messages": "abcdefgh"}, 1),
        ({"messages": {"content": "abcdefgh"}}, 0),
    ],
)
def test_prompt_estimate(body, tokens):
    assert usage.estimate_prompt(body) == tokens


def test_an_anthropic_stream_s_usage_is_read_from_its_start_and_its_last_delta():
    head = (b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-x",'
            b'"usage":{"input_tokens":20,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n')
    tail = b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":7}}\n\n'
    assert usage.from_stream(head, tail, whole=False) == usage.Answer(Usage(25, 7, 32), "claude-x")
    odd = head.replace(b'"model":"claude-x"', b'"model":5')
    assert usage.from_stream(odd, b"", whole=False) == usage.Answer(Usage(25, 1, 26), None)


ANTHROPIC_USAGE = {"input_tokens": 9, "output_tokens": 4, "cache_read_input_tokens": 100,
                   "cache_creation_input_tokens": 50}


def test_anthropic_usage_counts_the_cache_s_reads_and_writes_as_prompt_tokens():
    """A relayed /v1/messages answer logged 9 prompt tokens, its stream 109 or 9, and the same answer
    translated to chat completions 159: one count now, the translation's."""
    assert usage.usage_of(ANTHROPIC_USAGE) == Usage(159, 4, 163)
    assert usage.usage_of({"prompt_tokens": 159, "completion_tokens": 4, "cache_read_input_tokens": 100}) == Usage(
        159, 4, 163)  # OpenAI's prompt tokens hold the cache already: not added twice
    start = (b'event: message_start\ndata: {"type":"message_start","message":{"model":"c","usage":'
             + orjson.dumps({**ANTHROPIC_USAGE, "output_tokens": 1}) + b'}}\n\n')
    later = b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":4}}\n\n'
    assert usage.from_stream(start, later, whole=False).usage == Usage(159, 4, 163)
    every = (b'event: message_delta\ndata: {"type":"message_delta","usage":' + orjson.dumps(ANTHROPIC_USAGE)
             + b"}\n\n")  # the current API repeats every count in message_delta
    assert usage.from_stream(start, every, whole=False).usage == Usage(159, 4, 163)
