"""One exchange in-process (fake transport): outcomes for answers, errors, timeouts and stream starts."""

from __future__ import annotations

import asyncio

import orjson

from sluicegate.providers import openai
from sluicegate.types import Prepared
from sluicegate.upstream.exchange import STREAM_PEEK_LIMIT, exchange
from tests.fakes.transport import (
    FakeResponse,
    FakeTransport,
    broken_body,
    content_chunk,
    json_response,
    refused,
    sse_event,
    sse_response,
)


def prepared(*, timeout_ms: int | None = None, rewrite_errors: bool = True) -> Prepared:
    return Prepared(provider="openai", translation=openai.SPEC.translation("chat"), method="POST",
                    url="http://127.0.0.1:9/v1/chat/completions", host="http://127.0.0.1:9/v1",
                    headers={"content-type": "application/json"}, body=b"{}", timeout_ms=timeout_ms,
                    rewrite_errors=rewrite_errors)


async def test_an_upstream_error_is_rewritten_into_the_unified_envelope():
    transport = FakeTransport(script=[json_response({"error": {"message": "no", "type": "invalid"}}, 400,
                                                    {"x-portkey-x": "dropped", "x-request-id": "kept"})])
    outcome = await exchange(transport, prepared(), "config")
    assert outcome.status == 400 and outcome.responded
    assert orjson.loads(outcome.body or b"") == {
        "error": {"message": "openai error: no", "type": "invalid", "param": None, "code": None},
        "provider": "openai"}
    assert ("x-request-id", "kept") in outcome.headers and all(k != "x-portkey-x" for k, _ in outcome.headers)


async def test_a_passthrough_error_is_relayed_as_is():
    transport = FakeTransport(script=[json_response({"detail": "nope"}, 404)])
    outcome = await exchange(transport, prepared(rewrite_errors=False), "config")
    assert (outcome.status, outcome.body) == (404, b'{"detail":"nope"}')


async def test_a_timeout_is_a_408_outcome():
    async def slow(sent):
        await asyncio.sleep(10)

    outcome = await exchange(FakeTransport(slow), prepared(timeout_ms=20), "config")
    assert outcome.status == 408 and not outcome.responded
    assert b"Request exceeded the timeout sent in the request: 20ms" in (outcome.body or b"")


async def test_a_refused_connection_is_a_502_outcome():
    outcome = await exchange(FakeTransport(script=[refused()]), prepared(), "config.targets[1]")
    assert (outcome.status, outcome.target_path) == (502, "config.targets[1]")
    assert b"Could not connect to http://127.0.0.1:9/v1: Connection refused" in (outcome.body or b"")


async def test_a_stream_is_held_back_until_its_first_content_then_handed_over_open():
    response = sse_response(b": ping\n\n", content_chunk("Hel"), content_chunk("lo"), "[DONE]")
    outcome = await exchange(FakeTransport(script=[response]), prepared(), "config")
    assert outcome.stream is not None and outcome.ok
    assert outcome.body == b": ping\n\n" + sse_event(content_chunk("Hel"))
    assert await outcome.stream.body.read_chunk() == sse_event(content_chunk("lo"))  # the rest is left
    assert not response.closed


async def test_an_error_event_before_any_content_is_a_retryable_502():
    response = sse_response({"error": {"message": "overloaded"}})
    outcome = await exchange(FakeTransport(script=[response]), prepared(), "config")
    assert outcome.status == 502 and outcome.stream is None and response.closed
    assert b"openai error: overloaded" in (outcome.body or b"")


async def test_a_stream_that_ends_or_breaks_before_content_is_a_502():
    # Only a connection that broke is a connection error; a stream the upstream ended was its answer's failure.
    for response, kind in ((sse_response(b": ping\n\n"), "upstream_error"),
                           (sse_response(b": ping\n\n", broken_body()), "upstream_connection_error")):
        outcome = await exchange(FakeTransport(script=[response]), prepared(), "config")
        assert outcome.status == 502 and b"openai stream ended before any content" in (outcome.body or b"")
        assert orjson.loads(outcome.body)["error"]["type"] == kind


async def test_a_stream_without_content_is_handed_over_at_the_peek_limit():
    comment = b": " + b"x" * 1022 + b"\n\n"
    response = sse_response(*[comment] * (STREAM_PEEK_LIMIT // len(comment) + 2))
    outcome = await exchange(FakeTransport(script=[response]), prepared(), "config")
    assert outcome.stream is not None and len(outcome.body or b"") >= STREAM_PEEK_LIMIT


async def test_an_answer_without_an_http_status_is_a_502_and_its_connection_dropped():
    for status in (0, 99, 100, 600, 999):
        response = FakeResponse(status, chunks=[b"{}"])
        outcome = await exchange(FakeTransport(script=[response]), prepared(), "config")
        assert outcome.status == 502 and not outcome.responded and response.closed, status
        assert b"Upstream http://127.0.0.1:9/v1 failed: InvalidResponse" in (outcome.body or b"")


async def test_an_encoding_a_transport_may_not_have_decoded_is_a_502_not_bytes_under_a_dropped_header():
    """aiohttp's client decodes a single gzip, deflate or br and keeps the header (h1 takes the header off
    what it decoded): anything else left on an answer may still be encoded."""
    for lines in (["x-gzip"], ["gzip, identity"], ["gzip", "gzip"], ["bogus"]):
        response = FakeResponse(200, [("content-type", "application/json")]
                                + [("Content-Encoding", line) for line in lines], [b"\x1f\x8b..."])
        outcome = await exchange(FakeTransport(script=[response]), prepared(), "config")
        assert outcome.status == 502 and response.closed, lines
        assert b"failed: ContentEncodingError" in (outcome.body or b"")
    for line in ("gzip", "BR", "identity"):
        response = FakeResponse(200, [("content-type", "application/json"), ("content-encoding", line)], [b"{}"])
        outcome = await exchange(FakeTransport(script=[response]), prepared(), "config")
        assert (outcome.status, outcome.body) == (200, b"{}")
        assert all(name != "content-encoding" for name, _ in outcome.headers)
