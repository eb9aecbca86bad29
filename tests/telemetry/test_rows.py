"""Records → rows: what is derived, cut, scrubbed and never kept."""

from __future__ import annotations

import orjson

from sluicegate.telemetry.pricing import PriceTable
from sluicegate.telemetry.record import RequestRecord
from sluicegate.telemetry.redact import REDACTED
from sluicegate.types import AttemptRecord

from .helpers import builder, record

SECRET = "sk-live-secret-0123456789"


def test_a_plain_request():
    row, attempts = builder().build(record(headers={"x-portkey-metadata": '{"team": "a"}',
                                                    "x-portkey-trace-id": "t-1"},
                                           body={"model": "m", "user": "alice",
                                                 "messages": [{"role": "user", "content": "hi"}]}))
    assert row["trace_id"] == "t-1" and row["status"] == 200 and row["provider"] == "openai"
    assert (row["model"], row["model_answered"]) == ("m", "m-answered")
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (5, 3, 8)
    assert row["usage_estimated"] is False and row["cost"] == 0.0  # a custom host: private, free
    assert row["metadata"] == {"team": "a", "_user": "alice"} and row["user"] == "alice"
    assert row["custom_host"] == "http://127.0.0.1:9/v1" and row["stream"] is False
    assert len(row["id"]) == 32 and int(row["id"][:12], 16) == row["created_ms"]
    assert attempts == [{"request_id": row["id"], "position": 0, "created_ms": row["created_ms"], "path": "config",
                         "provider": "openai", "host": "http://127.0.0.1:9/v1", "status": 200,
                         "latency_ms": 1.5, "retry": 0, "error": None, "routing": None}]


def test_explicit_user_metadata_wins_over_the_body():
    row, _ = builder().build(record(headers={"x-portkey-metadata": '{"_user": "bob"}'},
                                    body={"model": "m", "user": "alice", "messages": [{"content": "x"}]}))
    assert row["user"] == "bob"


def test_secrets_never_reach_a_row():
    answer = {"error": {"message": f"Incorrect API key provided: {SECRET}", "type": "invalid_request_error"}}
    rec = record(
        headers={"authorization": f"Bearer {SECRET}", "x-org-token": "forwarded-org-secret",
                 "x-portkey-forward-headers": "x-org-token", "x-portkey-metadata": '{"note": "forwarded-org-secret"}'},
        body={"model": "m", "messages": [{"role": "user", "content": f"my key is {SECRET}"}]},
        status=401, answer=answer,
        attempts=[AttemptRecord("config", "openai", f"https://u:{SECRET}@host/v1?key={SECRET}", 401, 2.0,
                                retry=0, error=f"bad key {SECRET}")],
    )
    row, attempts = builder().build(rec)
    text = orjson.dumps([row, attempts]).decode()
    assert SECRET not in text and "forwarded-org-secret" not in text
    assert REDACTED in row["request_body"] and REDACTED in row["response_body"]
    assert row["error_type"] == "invalid_request_error" and REDACTED in row["error_message"]
    assert attempts[0]["host"] == "https://host/v1"


def test_bodies_are_cut_and_made_storable():
    body = {"model": "m", "messages": [{"role": "user", "content": "é" * 100 + "\x00"}]}
    row, _ = builder(cap=52).build(record(body=body))  # 51 bytes of JSON, then the first byte of "é"
    assert row["request_bytes"] == len(orjson.dumps(body))
    assert len(row["request_body"]) == 52 and row["request_body"].endswith("\ufffd")
    row, _ = builder().build(record(body=body))
    assert "\x00" not in row["request_body"]  # PostgreSQL text cannot hold NUL


def test_debug_false_and_the_global_switch_keep_bodies_out():
    row, _ = builder().build(record(headers={"x-portkey-debug": "false"}))
    assert row["request_body"] is None and row["response_body"] is None and row["request_bytes"] > 0
    row, _ = builder().build(record(log_bodies=False))
    assert row["request_body"] is None and row["response_body"] is None
    assert row["prompt_tokens"] == 5  # usage is still read


def test_public_providers_are_priced():
    rec = record(headers={"x-portkey-custom-host": ""},
                 body={"model": "gpt-4o", "messages": [{"content": "x"}]},
                 answer={"model": "gpt-4o-2024-08-06",
                         "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}})
    row, _ = builder(prices=PriceTable()).build(rec)
    assert row["cost"] == (1000 * 2.5 + 100 * 10.0) / 1_000_000


def test_a_refused_request_before_any_attempt():
    rec = RequestRecord.begin("POST", "/v1/chat/completions", "chat", True)
    from sluicegate.errors import BadRequest

    rec.failed(BadRequest("Invalid JSON body"))
    rec.finish()
    row, attempts = builder().build(rec)
    assert (row["status"], row["error_type"], row["error_message"]) == (400, "bad_request", "Invalid JSON body")
    assert attempts == [] and row["trace_id"] is None and row["metadata"] == {}


def test_client_gone_is_499():
    import asyncio

    rec = record()
    rec.failed(asyncio.CancelledError())
    row, _ = builder().build(rec)
    assert row["status"] == 499 and row["error_type"] == "client_closed_request"


def test_usage_past_what_the_columns_hold_is_logged_as_unknown():
    """An upstream's usage counts beyond the token columns (INTEGER: 32 bits on PostgreSQL) are no token
    counts: the row is stored without them (and limits settle nothing), instead of failing its batch."""
    for counts in ({"prompt_tokens": 2**63, "completion_tokens": 1}, {"prompt_tokens": 2**31, "completion_tokens": 1},
                   {"prompt_tokens": 2**30, "completion_tokens": 2**30}):  # each fits, their total does not
        row, _ = builder().build(record(answer={"model": "m", "usage": counts}))
        assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"], row["cost"]) == (None,) * 4
    row, _ = builder().build(record(answer={"model": "m", "usage": {"prompt_tokens": 2**31 - 2, "completion_tokens": 1}}))
    assert row["total_tokens"] == 2**31 - 1
