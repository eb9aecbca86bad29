"""OTLP spans, without I/O: the id mapping, the span JSON, the settings."""

from __future__ import annotations

import hashlib
import re

import orjson
import pytest

from sluicegate.settings import settings_from_env
from sluicegate.telemetry.otlp import parse_traceparent, payload, request_span, span_ids, trace_id_of, traces_url

from .helpers import builder, record

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
SPAN = "b7ad6b7169203331"
HEX32, HEX16 = re.compile(r"[0-9a-f]{32}"), re.compile(r"[0-9a-f]{16}")


def ids(**row):
    return span_ids({"trace_id": None, "span_id": None, "parent_span_id": None, "traceparent": None, **row})


def test_traceparent_gives_trace_and_parent():
    trace_id, span_id, parent = ids(traceparent=f"00-{TRACE}-{PARENT}-01", trace_id="other",
                                    parent_span_id="1111111111111111")
    assert (trace_id, parent) == (TRACE, PARENT)
    assert HEX16.fullmatch(span_id) and span_id != PARENT


@pytest.mark.parametrize("value", [
    f"00-{'0' * 32}-{PARENT}-01", f"00-{TRACE}-{'0' * 16}-01", f"ff-{TRACE}-{PARENT}-01",
    f"00-{TRACE}-{PARENT}-01-extra", f"00-{TRACE.upper()}-{PARENT}-01", f"00-{TRACE}-{PARENT}", "garbage", "",
])
def test_malformed_traceparents_are_ignored(value):
    assert parse_traceparent(value) is None


def test_a_future_version_may_append_fields():
    assert parse_traceparent(f"01-{TRACE}-{PARENT}-01-more") == (TRACE, PARENT)


def test_portkey_ids_when_no_traceparent():
    assert ids(trace_id=TRACE, span_id=SPAN, parent_span_id=PARENT) == (TRACE, SPAN, PARENT)
    assert ids(trace_id=TRACE.upper())[0] == TRACE


def test_free_text_trace_ids_are_hashed_stably():
    expected = hashlib.sha256(b"trace-abc").hexdigest()[:32]
    assert trace_id_of("trace-abc") == trace_id_of("trace-abc") == expected
    assert HEX32.fullmatch(trace_id_of("0" * 32)) and trace_id_of("0" * 32) != "0" * 32


def test_invalid_span_ids_become_random_and_invalid_parents_none():
    trace_id, span_id, parent = ids(trace_id="t", span_id="not-hex", parent_span_id="abc")
    assert parent is None and HEX16.fullmatch(span_id) and HEX32.fullmatch(trace_id)
    assert ids(trace_id="t")[1] != ids(trace_id="t")[1]
    assert ids(trace_id="t", span_id=PARENT, parent_span_id=PARENT)[1] != PARENT  # never its own parent


def row_of(**kwargs):
    row, attempts = builder().build(record(**kwargs))
    return row, attempts


def attrs(span) -> dict:
    out = {}
    for item in span["attributes"]:
        (kind, value), = item["value"].items()
        out[item["key"]] = int(value) if kind == "intValue" else value
    return out


def test_span_json_shape_and_attributes():
    row, attempts = row_of(headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "x-portkey-trace-id": "tr-1",
                                    "authorization": "Bearer sk-span-secret-123456"})
    span = request_span(row, attempts)
    body = orjson.loads(orjson.dumps(payload([span])))
    got = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert body["resourceSpans"][0]["resource"]["attributes"][0] == {
        "key": "service.name", "value": {"stringValue": "sluicegate"}}
    assert (got["traceId"], got["parentSpanId"], got["name"], got["kind"]) == (TRACE, PARENT, "chat m", 2)
    start, end = int(got["startTimeUnixNano"]), int(got["endTimeUnixNano"])
    assert start == row["created_ms"] * 1_000_000 and end >= start
    assert got["status"] == {}
    got_attrs = attrs(got)
    assert got_attrs["sluicegate.trace_id"] == "tr-1" and got_attrs["gen_ai.operation.name"] == "chat"
    assert got_attrs["sluicegate.attempts"] == 1
    assert "sk-span-secret" not in orjson.dumps(body).decode()


def test_attributes_hold_the_expected_values():
    row, attempts = row_of(headers={"x-portkey-trace-id": "tr-2"})
    got = attrs(request_span(row, attempts))
    for key, value in {"gen_ai.system": "openai", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 5,
                       "gen_ai.usage.output_tokens": 3, "http.response.status_code": 200,
                       "sluicegate.trace_id": "tr-2", "http.request.method": "POST"}.items():
        assert got[key] == value, key


def test_non_2xx_is_an_error_and_the_span_name_header_wins():
    row, attempts = row_of(status=503, headers={"x-portkey-span-name": "my-step"},
                           answer={"error": {"type": "overloaded", "message": "busy"}})
    span = request_span(row, attempts)
    assert span["status"] == {"code": 2, "message": "overloaded"}
    assert span["name"] == "my-step"
    assert "busy" not in orjson.dumps(span).decode()  # error messages are text from the upstream: never exported


def test_settings_parse_endpoint_and_headers():
    s = settings_from_env({"SLUICEGATE_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                           "SLUICEGATE_OTLP_HEADERS": "authorization=Bearer%20tok=en, x-team = a"})
    assert s.otlp_endpoint == "http://127.0.0.1:4318"
    assert dict(s.otlp_headers) == {"authorization": "Bearer tok=en", "x-team": "a"}
    assert "tok=en" not in repr(s)
    assert settings_from_env({}).otlp_endpoint is None
    with pytest.raises(ValueError) as raised:
        settings_from_env({"SLUICEGATE_OTLP_HEADERS": "just-a-secret-value"})
    assert "just-a-secret-value" not in str(raised.value)


def test_traces_url():
    assert traces_url("http://127.0.0.1:4318/") == "http://127.0.0.1:4318/v1/traces"
    assert traces_url("https://c.example/v1/traces") == "https://c.example/v1/traces"
    with pytest.raises(ValueError):
        traces_url("127.0.0.1:4318")


def test_an_anthropic_messages_request_is_a_chat_operation():
    row, attempts = row_of(headers={"x-portkey-trace-id": "tr-3"})
    for endpoint, operation in (("messages", "chat"), ("count_tokens", "count_tokens")):
        got = attrs(request_span({**row, "endpoint": endpoint}, attempts))
        assert got["gen_ai.operation.name"] == operation
