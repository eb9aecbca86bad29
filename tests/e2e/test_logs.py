"""The request log as a client and an operator see it: real SDKs in, the admin API out.

Every test tags its requests with its own trace id (or metadata value) and reads back exactly those.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import openai
import pytest
from portkey_ai import Portkey
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.upstream import Reply, chat_chunks
from tests.logapi import new_trace

PROMPT = [{"role": "user", "content": "Explain quantum computing in simple terms"}]


def direct(upstream, **extra) -> dict[str, str]:
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream.v1, **extra}


def test_metadata_user_and_trace_id_through_the_portkey_sdk(logged_gateway, log_api, upstream):
    trace = new_trace()
    portkey = Portkey(base_url=logged_gateway.v1, provider="openai", custom_host=upstream.v1,
                      Authorization="Bearer upstream-key-0123456789", trace_id=trace,
                      metadata={"team": "search", "env": "prod", "_user": "alice@example.com"})
    portkey.chat.completions.create(model="my-model", messages=PROMPT)
    record = log_api.one(trace)
    assert record["trace_id"] == trace and record["status"] == 200
    assert record["metadata"] == {"team": "search", "env": "prod", "_user": "alice@example.com"}
    assert record["user"] == "alice@example.com"
    assert (record["provider"], record["model"], record["model_answered"]) == ("openai", "my-model", "my-model")
    assert record["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8, "estimated": False}
    assert record["cost"] == 0.0  # a private model without a price
    assert record["custom_host"] == upstream.v1 and record["route"] == "/v1/chat/completions"
    assert record["latency_ms"] > 0 and record["ttfb_ms"] <= record["latency_ms"]
    assert record["created_at"].endswith("Z") and record["cache_status"] == "DISABLED"
    (attempt,) = record["attempts"]
    assert (attempt["target_path"], attempt["status"], attempt["provider"]) == ("config", 200, "openai")
    assert PROMPT[0]["content"] in record["request_body"] and "echo:" in record["response_body"]


def test_the_body_user_becomes_the_log_user(logged_gateway, log_api, upstream):
    trace = new_trace()
    client = openai.OpenAI(api_key="k", base_url=logged_gateway.v1,
                           default_headers=direct(upstream, **{"x-portkey-trace-id": trace}))
    client.chat.completions.create(model="m", messages=PROMPT, user="bob")
    record = log_api.one(trace)
    assert record["user"] == "bob" and record["metadata"] == {"_user": "bob"}


def test_span_headers_and_traceparent_are_stored(logged_gateway, log_api, upstream):
    trace = new_trace()
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    httpx.post(f"{logged_gateway.v1}/chat/completions", json={"model": "m", "messages": PROMPT},
               headers=direct(upstream, **{"x-portkey-trace-id": trace, "x-portkey-span-id": "span-2",
                                           "x-portkey-parent-span-id": "span-1", "x-portkey-span-name": "answer",
                                           "traceparent": parent}))
    record = log_api.one(trace)
    assert (record["span_id"], record["parent_span_id"], record["span_name"], record["traceparent"]) == (
        "span-2", "span-1", "answer", parent)


def test_names_longer_than_their_columns_find_their_record(logged_gateway, log_api, upstream):
    # Stored cut to 256 characters, a trace id was echoed whole, and filtering by it (or by the model asked
    # for) found nothing.
    trace, model = new_trace() + "-" + "t" * 300, "m-" + "m" * 300
    client = openai.OpenAI(api_key="k", base_url=logged_gateway.v1,
                           default_headers=direct(upstream, **{"x-portkey-trace-id": trace}))
    raw = client.chat.completions.with_raw_response.create(model=model, messages=PROMPT)
    assert raw.headers["x-portkey-trace-id"] == trace
    record = log_api.one(trace)
    assert (record["trace_id"], record["model"]) == (trace[:256], model[:256])
    assert [r["id"] for r in log_api.wait(trace_id=f"{trace},other", model=model)] == [record["id"]]


def test_an_upstream_error_and_its_attempt(logged_gateway, log_api, upstream):
    trace = new_trace()
    upstream.push(Reply(status=503, json={"error": {"message": "overloaded", "type": "server_error"}}))
    client = openai.OpenAI(api_key="k", base_url=logged_gateway.v1, max_retries=0,
                           default_headers=direct(upstream, **{"x-portkey-trace-id": trace}))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=PROMPT)
    record = log_api.one(trace)
    assert record["status"] == 503 and record["error"] == {"type": "server_error",
                                                            "message": "openai error: overloaded"}
    assert [(a["target_path"], a["status"]) for a in record["attempts"]] == [("config", 503)]
    assert "overloaded" in record["attempts"][0]["error"]


def test_an_unreachable_upstream_is_logged_as_502(logged_gateway, log_api):
    trace = new_trace()
    response = httpx.post(f"{logged_gateway.v1}/chat/completions", json={"model": "m", "messages": PROMPT},
                          headers={"x-portkey-provider": "openai", "x-portkey-custom-host": "http://127.0.0.1:9/v1",
                                   "x-portkey-trace-id": trace})
    assert response.status_code == 502
    record = log_api.one(trace)
    assert record["status"] == 502 and record["error"]["type"] == "upstream_connection_error"
    assert record["attempts"][0]["status"] == 502 and record["attempts"][0]["host"] == "http://127.0.0.1:9/v1"


def test_a_refused_request_is_logged_too(logged_gateway, log_api):
    trace = new_trace()
    response = httpx.post(f"{logged_gateway.v1}/chat/completions", content=b"{oops",
                          headers={"x-portkey-provider": "openai", "x-portkey-trace-id": trace,
                                   "content-type": "application/json"})
    assert response.status_code == 400
    record = log_api.one(trace)
    assert record["status"] == 400 and record["error"]["type"] == "bad_request" and record["attempts"] == []


@pytest.mark.parametrize(("header", "value"), [
    ("x-portkey-metadata", "not json"), ("x-portkey-request-timeout", "0"), ("x-portkey-forward-headers", "host"),
    ("x-portkey-strict-open-ai-compliance", "maybe"), ("x-portkey-cache-force-refresh", "maybe"),
    ("x-portkey-virtual-key", "other"),
])
def test_a_refused_header_still_echoes_and_logs_the_trace_id(logged_gateway, log_api, header, value):
    """A header refused as it was read lost the client's trace id: the 400 carried none and its log row had
    none, so the client could not find the refusal by the id it sent."""
    trace = new_trace()
    response = httpx.post(f"{logged_gateway.v1}/chat/completions", json={"messages": PROMPT},
                          headers={"x-portkey-provider": "openai", "x-portkey-trace-id": trace, header: value})
    assert response.status_code == 400, response.text
    assert response.headers["x-portkey-trace-id"] == trace
    record = log_api.one(trace)
    assert record["status"] == 400 and record["error"]["type"] == "bad_request"


@pytest.mark.parametrize("sdk", ["portkey", "openai"])
def test_a_stream_logs_its_usage_and_time_to_first_token(logged_gateway, log_api, upstream, sdk):
    trace = new_trace()
    upstream.push(Reply(stream=chat_chunks("one two three four five"), chunk_interval=0.03))
    if sdk == "portkey":
        client = Portkey(base_url=logged_gateway.v1, provider="openai", custom_host=upstream.v1, trace_id=trace)
    else:
        client = openai.OpenAI(api_key="k", base_url=logged_gateway.v1,
                               default_headers=direct(upstream, **{"x-portkey-trace-id": trace}))
    stream = client.chat.completions.create(model="m", messages=PROMPT, stream=True,
                                            stream_options={"include_usage": True})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "one two three four five "
    record = log_api.one(trace)
    assert record["stream"] is True and record["status"] == 200 and record["error"] is None
    assert record["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8, "estimated": False}
    # Events come 30 ms apart: the first token is relayed long before the stream ends.
    assert 0 < record["ttfb_ms"] < record["latency_ms"] - 100
    assert record["response_body"].startswith("data: ") and "[DONE]" in record["response_body"]


def test_a_stream_without_usage_is_estimated(logged_gateway, log_api, upstream):
    trace = new_trace()
    upstream.push(Reply(stream=chat_chunks("a b c d e f g h i j k l", usage=False), chunk_interval=0.002))
    with httpx.stream("POST", f"{logged_gateway.v1}/chat/completions",
                      json={"model": "m", "messages": [{"role": "user", "content": "x" * 40}], "stream": True},
                      headers=direct(upstream, **{"x-portkey-trace-id": trace})) as response:
        response.read()
    usage = log_api.one(trace)["usage"]
    assert usage == {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22, "estimated": True}


def test_an_error_event_before_a_clean_end_is_logged_as_the_failure_the_client_saw(logged_gateway, log_api, upstream):
    """The record was sealed as the [DONE] went out, before the relay judged the stream: a stream that
    carried the upstream's error event was logged as a clean 200."""
    trace = new_trace()
    upstream.push(Reply(stream=[*chat_chunks("a b")[:2], {"error": {"message": "boom mid", "code": 500}}, "[DONE]"]))
    with httpx.stream("POST", f"{logged_gateway.v1}/chat/completions",
                      json={"model": "m", "messages": PROMPT, "stream": True},
                      headers=direct(upstream, **{"x-portkey-trace-id": trace})) as response:
        body = response.read()
    assert b"boom mid" in body and body.rstrip().endswith(b"data: [DONE]")  # the upstream's own events only
    record = log_api.one(trace)
    assert record["status"] == 200 and record["error"]["type"] == "upstream_stream_error", record


def test_nothing_is_relayed_after_the_stream_ended(logged_gateway, log_api, upstream):
    trace = new_trace()
    # Events 50 ms apart: the late one comes after the gateway relayed the [DONE] (in one read with it: below).
    upstream.push(Reply(stream=[*chat_chunks("a b"), {"choices": [{"index": 0, "delta": {"content": "late"}}]}],
                        chunk_interval=0.05))
    with httpx.stream("POST", f"{logged_gateway.v1}/chat/completions",
                      json={"model": "m", "messages": PROMPT, "stream": True},
                      headers=direct(upstream, **{"x-portkey-trace-id": trace})) as response:
        body = response.read()
    assert body.rstrip().endswith(b"data: [DONE]") and b"late" not in body, body
    record = log_api.one(trace)
    assert record["status"] == 200 and record["error"] is None and record["response_body"] == body.decode()


def test_what_follows_done_in_the_same_read_is_not_relayed(logged_gateway, log_api, upstream):
    """The [DONE] and a late chunk in one write: the chunk was relayed after the [DONE], and the stream judged
    cut (an error event after a complete answer; the log said upstream_stream_error)."""
    trace = new_trace()
    late = b'data: [DONE]\n\ndata: {"choices": [{"index": 0, "delta": {"content": "late"}}]}\n\n'
    upstream.push(Reply(stream=[*chat_chunks("a b")[:-1], late]))
    with httpx.stream("POST", f"{logged_gateway.v1}/chat/completions",
                      json={"model": "m", "messages": PROMPT, "stream": True},
                      headers=direct(upstream, **{"x-portkey-trace-id": trace})) as response:
        body = response.read()
    assert body.endswith(b"\n\ndata: [DONE]\n\n") and b"late" not in body and b"error" not in body, body
    record = log_api.one(trace)
    assert record["status"] == 200 and record["error"] is None and record["response_body"] == body.decode()


def test_an_upstream_that_goes_on_after_its_end_is_let_go(logged_gateway, log_api, upstream):
    # 1,000 events of 1 KB after the [DONE], 5 ms apart: read and dropped up to a bound, not for 5 s.
    trace = new_trace()
    late = {"choices": [{"index": 0, "delta": {"content": "x" * 1000}}]}
    upstream.push(Reply(stream=[*chat_chunks("a b"), *[late] * 1000], chunk_interval=0.005))
    started = time.monotonic()
    with httpx.stream("POST", f"{logged_gateway.v1}/chat/completions",
                      json={"model": "m", "messages": PROMPT, "stream": True},
                      headers=direct(upstream, **{"x-portkey-trace-id": trace})) as response:
        body = response.read()
    assert body.rstrip().endswith(b"data: [DONE]") and time.monotonic() - started < 3.0
    assert log_api.one(trace)["error"] is None


def test_a_stream_that_breaks_after_it_started(logged_gateway, log_api, upstream):
    trace = new_trace()
    upstream.push(Reply(stream=chat_chunks("a b c d e f"), drop_after=4))
    with httpx.stream("POST", f"{logged_gateway.v1}/chat/completions",
                      json={"model": "m", "messages": PROMPT, "stream": True},
                      headers=direct(upstream, **{"x-portkey-trace-id": trace})) as response:
        response.read()
    record = log_api.one(trace)
    assert record["status"] == 200 and record["error"]["type"] == "upstream_stream_error"
    assert log_api.logs(trace_id=trace, status="error")  # counted among errors


async def test_a_client_that_leaves_mid_stream_is_logged_as_499(logged_gateway, log_api, upstream):
    trace = new_trace()
    upstream.push(Reply(stream=chat_chunks(" ".join(["w"] * 200)), chunk_interval=0.02))
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("POST", f"{logged_gateway.v1}/chat/completions",
                                 json={"model": "m", "messages": PROMPT, "stream": True},
                                 headers=direct(upstream, **{"x-portkey-trace-id": trace})) as response:
            async for _ in response.aiter_bytes():
                break  # the first bytes, then hang up
    record = await asyncio.to_thread(log_api.one, trace)
    assert record["status"] == 499 and record["error"]["type"] == "client_closed_request"
    assert record["stream"] is True and record["ttfb_ms"] is not None


def test_debug_false_keeps_bodies_out_but_usage_in(logged_gateway, log_api, upstream):
    trace = new_trace()
    portkey = Portkey(base_url=logged_gateway.v1, provider="openai", custom_host=upstream.v1, trace_id=trace,
                      debug=False)
    portkey.chat.completions.create(model="m", messages=PROMPT)
    record = log_api.one(trace)
    assert record["request_body"] is None and record["response_body"] is None
    assert record["usage"]["total_tokens"] == 8 and record["request_bytes"] > 0


def test_analytics_totals_equal_the_sum_of_the_logs(logged_gateway, log_api, upstream):
    run = uuid.uuid4().hex
    started = time.time() - 1
    client = openai.OpenAI(api_key="k", base_url=logged_gateway.v1, max_retries=0)
    for i in range(12):
        meta = f'{{"run": "{run}", "team": "t{i % 3}"}}'
        if i % 4 == 3:
            upstream.push(Reply(status=500, json={"error": {"message": "boom"}}))
        try:
            client.chat.completions.create(model=f"m{i % 2}", messages=PROMPT, user=f"u{i % 2}",
                                           extra_headers=direct(upstream, **{"x-portkey-metadata": meta}))
        except openai.InternalServerError:
            pass
    logs = log_api.wait(12, **{"metadata.run": run})
    window = {"from": str(started), "to": str(time.time() + 1), "metadata.run": run, "interval": "1m"}
    for group_by in ("none", "provider", "model", "user", "metadata.team"):
        response = log_api.get("/analytics", group_by=group_by, **window)
        assert response.status_code == 200, response.text
        result = response.json()
        totals = result["totals"]
        assert totals["requests"] == 12 and totals["errors"] == 3
        assert totals["total_tokens"] == sum(r["usage"]["total_tokens"] or 0 for r in logs) == 9 * 8
        assert totals["cost"] == sum(r["cost"] or 0 for r in logs)
        latencies = sorted(r["latency_ms"] for r in logs)
        assert totals["latency_ms"]["p99"] == latencies[-1] and totals["latency_ms"]["p50"] == latencies[5]
        assert sum(d["requests"] for d in result["data"]) == 12
    by_team = log_api.get("/analytics", group_by="metadata.team", **window).json()["data"]
    assert {d["group"]: d["requests"] for d in by_team} == {"t0": 4, "t1": 4, "t2": 4}


def test_metrics_in_prometheus_text(logged_gateway, log_api, upstream):
    trace = new_trace()
    httpx.post(f"{logged_gateway.v1}/chat/completions", json={"model": "metrics-model", "messages": PROMPT},
               headers=direct(upstream, **{"x-portkey-trace-id": trace, "x-portkey-metadata": '{"_user": "carol"}'}))
    log_api.one(trace)
    response = httpx.get(f"{logged_gateway.url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests = {tuple(sorted(s.labels.items())): s.value for s in families["sluicegate_requests"].samples}
    assert requests[(("model", "metrics-model"), ("provider", "openai"), ("status", "200"))] >= 1
    for name in ("sluicegate_request_duration_seconds", "sluicegate_tokens", "sluicegate_log_queue_depth",
                 "sluicegate_log_records_dropped", "sluicegate_upstream_connections", "sluicegate_retries",
                 "sluicegate_fallbacks", "sluicegate_upstream_attempts", "process_resident_memory_bytes"):
        assert name in families, name
    assert trace not in response.text and "carol" not in response.text


# -- the query API's refusals ----------------------------------------------------------------------------

BAD_QUERIES = [
    ("/logs", {"cursor": "%%%"}, "Invalid 'cursor'"),
    ("/logs", {"from": "last tuesday"}, "'from' must be an ISO 8601"),
    ("/logs", {"from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "'from' must be earlier than 'to'"),
    ("/logs", {"status": "teapot"}, "'status' takes"),
    ("/logs", {"limit": "100000"}, "'limit' must be an integer from 1 to 500"),
    ("/logs", {"colour": "red"}, "Unknown query parameter 'colour'"),
    ("/analytics", {"group_by": "weather"}, "'group_by' must be one of"),
    ("/analytics", {"interval": "fortnight"}, "'interval' must look like"),
    ("/analytics", {"from": "1", "interval": "1s"}, "buckets"),
    # Found by fuzzing: 500s (and a 503 blaming the database) before.
    ("/logs", {"status": "\u00b2"}, "'status' takes"),
    ("/analytics", {"status": "\u2460"}, "'status' takes"),
    ("/logs", {"from": "1e300"}, "'from' must be a time from 0001-01-01"),
    ("/logs", {"to": "1e16"}, "'to' must be a time from 0001-01-01"),
    ("/analytics", {"to": "1e12"}, "'to' must be a time from 0001-01-01"),
    ("/analytics", {"to": "0001-01-01T00:00:00+01:00"}, "'to' must be a time from 0001-01-01"),
    ("/analytics", {"to": "0001-01-01T12:00:00Z"}, "'from' (24 hours before 'to' when not given)"),
    ("/logs", {"cursor": "WzE4NDQ2NzQ0MDczNzA5NTUxNjE1LCJ4Il0"}, "Invalid 'cursor'"),
    ("/analytics", {"interval": "100000000000000000000s"}, "'interval' must be at most 366d"),
    ("/logs", {"metadata.\x00": "x"}, "a metadata key holds no control characters"),
    ("/logs", {"metadata.a\"": "x"}, "a metadata key holds no control characters, quotes"),
    ("/analytics", {"group_by": "metadata.\x00"}, "'group_by' must not hold a NUL character"),
    ("/logs", {"provider": "a\x00b"}, "'provider' must not hold a NUL character"),
    ("/logs/0123456789abcdef0123456789abcdef", {"fields": "id"}, "Unknown query parameter 'fields'"),  # was ignored
]


@pytest.mark.parametrize(("path", "query", "message"), BAD_QUERIES, ids=[m for _, _, m in BAD_QUERIES])
def test_bad_query_parameters_are_400(log_api, path, query, message):
    response = log_api.get(path, **query)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "failure" and message in body["message"]


@pytest.mark.parametrize("path", ["/logs", "/logs/some-id", "/analytics"])
@pytest.mark.parametrize("token", [None, "wrong-token-0123456789"])
def test_the_log_api_needs_the_admin_token(log_api, path, token):
    response = log_api.get(path, token=token)
    assert response.status_code == 401 and response.json()["status"] == "failure"


def test_an_unknown_record_is_404(log_api):
    response = log_api.get("/logs/0000000000000000")
    assert response.status_code == 404 and response.json()["status"] == "failure"


# -- Gateway Configs: retries and fallbacks -----------------------------------------------------------


def test_retries_appear_in_the_attempt_chain(logged_gateway, log_api, upstream):
    trace = new_trace()
    config = {"retry": {"attempts": 2, "on_status_codes": [503]},
              "provider": "openai", "custom_host": upstream.v1}
    upstream.push(Reply(status=503, json={"error": {"message": "busy"}}),
                  Reply(status=503, json={"error": {"message": "busy"}}))
    portkey = Portkey(base_url=logged_gateway.v1, config=config, trace_id=trace)
    portkey.chat.completions.create(model="m", messages=PROMPT)
    record = log_api.one(trace)
    assert record["status"] == 200 and record["retries"] == 2
    assert [(a["target_path"], a["status"], a["retry"]) for a in record["attempts"]] == [
        ("config", 503, 0), ("config", 503, 1), ("config", 200, 2)]


def test_fallbacks_appear_in_the_attempt_chain(logged_gateway, log_api, upstream):
    trace = new_trace()
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "openai", "custom_host": "http://127.0.0.1:9/v1"},  # refused: falls back
            {"provider": "openai", "custom_host": upstream.v1},
        ],
    }
    portkey = Portkey(base_url=logged_gateway.v1, config=config, trace_id=trace)
    portkey.chat.completions.create(model="m", messages=PROMPT)
    record = log_api.one(trace)
    assert record["status"] == 200 and record["target_path"] == "config.targets[1]"
    assert [(a["target_path"], a["status"]) for a in record["attempts"]] == [
        ("config.targets[0]", 502), ("config.targets[1]", 200)]
    fallbacks = [s.value for f in text_string_to_metric_families(httpx.get(f"{logged_gateway.url}/metrics").text)
                 if f.name == "sluicegate_fallbacks" for s in f.samples if s.labels.get("model") == "m"]
    assert fallbacks and fallbacks[0] >= 1


def test_a_catalog_provider_is_logged_with_its_slug(logged_gateway, log_api, upstream):
    slug = f"llm-{uuid.uuid4().hex[:8]}"
    created = httpx.post(f"{logged_gateway.url}/admin/api/providers",
                         headers={"authorization": f"Bearer {log_api.token}"},
                         json={"slug": slug, "spec": "openai", "custom_host": upstream.v1,
                               "headers": {"Authorization": "Bearer catalog-key-0123456789"}})
    assert created.status_code == 201, created.text
    trace = new_trace()
    client = openai.OpenAI(api_key="unused", base_url=logged_gateway.v1,
                           default_headers={"x-portkey-trace-id": trace})
    client.chat.completions.create(model=f"@{slug}/llama", messages=PROMPT)
    record = log_api.one(trace)
    assert (record["provider"], record["provider_slug"], record["model"]) == ("openai", f"@{slug}", "llama")
    assert record["attempts"][0]["provider"] == f"@{slug}"


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE"])
def test_a_405_names_the_allowed_methods_and_keeps_the_trace_id(logged_gateway, log_api, upstream, method):
    trace = new_trace()
    answer = httpx.request(method, f"{logged_gateway.v1}/chat/completions", headers={"x-portkey-trace-id": trace})
    assert answer.status_code == 405 and answer.json()["message"] == f"Method {method} is not allowed here"
    assert answer.headers["allow"] == "DELETE, GET, PATCH, POST, PUT"  # RFC 9110: a 405 says what is
    assert answer.headers["x-portkey-trace-id"] == trace
    assert log_api.one(trace)["status"] == 405
    assert upstream.received == []
