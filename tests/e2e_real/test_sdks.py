"""Chat, streaming and completions through the real SDKs, the gateway, and a real llama.cpp server.

The model's words are never asserted: only the structure of what comes back and the behaviour
(parameters honoured, streams complete, headers set) that a user of the gateway relies on.
"""

from __future__ import annotations

import httpx
import orjson

from tests.e2e_real.clients import (
    MODEL,
    SHORT,
    async_portkey,
    direct_headers,
    openai_client,
    portkey,
    user,
)


def _assert_chat_completion(response) -> None:
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert response.usage.prompt_tokens > 0 and 0 < response.usage.completion_tokens <= SHORT


def test_chat_through_the_portkey_sdk(gateway, smol):
    response = portkey(gateway, smol.v1).chat.completions.create(
        model=MODEL, messages=user("Say hello."), max_tokens=SHORT)
    _assert_chat_completion(response)


def test_chat_through_the_openai_sdk_with_response_headers(gateway, smol):
    raw = openai_client(gateway, smol.v1).chat.completions.with_raw_response.create(
        model=MODEL, messages=user("Name a colour."), max_tokens=SHORT)
    assert raw.headers["x-portkey-provider"] == "openai"
    assert raw.headers["x-portkey-last-used-option-index"] == "config"
    _assert_chat_completion(raw.parse())


def test_max_tokens_reaches_the_model(gateway, smol):
    """The body goes upstream untouched: a 3-token cap is obeyed by the model itself."""
    response = openai_client(gateway, smol.v1).chat.completions.create(
        model=MODEL, messages=user("Write a long story about a lighthouse."), max_tokens=3)
    assert response.usage.completion_tokens <= 3
    assert response.choices[0].finish_reason == "length"


def test_llama_specific_parameters_pass_through(gateway, smol):
    """Fields the OpenAI API lacks (llama.cpp's top_k, repeat_penalty) reach the model and do not
    break the call; greedy decoding (top_k=1) then gives the same answer twice."""
    client = openai_client(gateway, smol.v1)
    extra = {"top_k": 1, "repeat_penalty": 1.1}
    answers = [client.chat.completions.create(model=MODEL, messages=user("Count to five."), max_tokens=SHORT,
                                              extra_body=extra).choices[0].message.content for _ in range(2)]
    assert answers[0] and answers[0] == answers[1]


def test_streaming_through_the_portkey_sdk(gateway, smol):
    stream = portkey(gateway, smol.v1).chat.completions.create(
        model=MODEL, messages=user("List three fruits."), max_tokens=SHORT, stream=True)
    chunks = [chunk for chunk in stream if chunk.choices]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert len(chunks) >= 3 and text.strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert len({chunk.id for chunk in chunks}) == 1


async def test_streaming_through_the_async_portkey_sdk(gateway, smol):
    stream = await async_portkey(gateway, smol.v1).chat.completions.create(
        model=MODEL, messages=user("Name two planets."), max_tokens=SHORT, stream=True)
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert len(parts) >= 3 and "".join(parts).strip()


def test_stream_on_the_wire_ends_with_done(gateway, smol):
    """Raw SSE: every event is JSON until the final `[DONE]`; llama.cpp sends no usage chunk even when
    asked for one (its quirk), and the gateway relays the stream as it is."""
    response = httpx.post(
        f"{gateway.v1}/chat/completions", headers=direct_headers(smol.v1), timeout=60,
        json={"model": MODEL, "messages": user("Hi!"), "max_tokens": SHORT, "stream": True,
              "stream_options": {"include_usage": True}})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [event for event in response.text.split("\n\n") if event.strip()]
    assert events[-1] == "data: [DONE]"
    payloads = [orjson.loads(event.removeprefix("data: ")) for event in events[:-1]]
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_completions_through_the_openai_sdk(gateway, smol):
    response = openai_client(gateway, smol.v1).completions.create(
        model=MODEL, prompt="The capital of France is", max_tokens=SHORT)
    assert response.object == "text_completion"
    assert isinstance(response.choices[0].text, str) and response.choices[0].text
    assert response.choices[0].finish_reason in ("stop", "length")


def test_streamed_completions(gateway, smol):
    stream = openai_client(gateway, smol.v1).completions.create(
        model=MODEL, prompt="One, two, three,", max_tokens=SHORT, stream=True)
    parts = [chunk.choices[0].text for chunk in stream if chunk.choices]
    assert len(parts) >= 3 and "".join(parts)


def test_model_listing_passes_through(gateway, smol):
    models = openai_client(gateway, smol.v1).models.list()
    assert MODEL in [model.id for model in models]
