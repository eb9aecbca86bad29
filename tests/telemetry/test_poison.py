"""One bad byte must not cost a batch: poisoned requests mixed into a load all land, on both stores.

A 0xFF byte or an invalid UTF-8 sequence in a logged header (``x-portkey-trace-id``, ``x-portkey-span-name``)
reaches Python as lone surrogates, which neither sqlite3 nor the spool's JSON can encode; a NUL in a
metadata value or the body's ``user`` is refused by PostgreSQL. Each used to fail its whole batch (and the
spool write after it), uncounted. Now such text is stored with U+FFFD in place of what cannot be stored.
"""

from __future__ import annotations

import pytest

from tests.fakes.upstream import Reply
from tests.gateway import GatewayProcess
from tests.logapi import ADMIN_TOKEN

from .load import count_rows
from .raw import request_bytes, send_all

TOTAL = 200
POISONS = [
    [(b"x-portkey-trace-id", b"poison-\xff-trace")],
    [(b"x-portkey-span-name", b"span-\xed\xa0\x80-lone-surrogate")],  # U+D800 encoded: not valid UTF-8
    [(b"x-portkey-metadata", b'{"team": "a\\u0000b"}')],
    [(b"x-portkey-trace-id", b"\xc3\x28-truncated")],
    # In a credential: its URL-encoded form could not be made, and the record was dropped (a client could keep
    # its requests out of the log, and their usage out of its limits).
    [(b"authorization", b"Bearer sk-poison\x9avalue-123456")],
    [(b"x-api-key", b"key-\xff\xfe-0123456789")],
]


def requests(gateway: GatewayProcess, upstream) -> list[bytes]:
    base = [(b"x-portkey-provider", b"openai"), (b"x-portkey-custom-host", upstream.v1.encode())]
    out = []
    for i in range(TOTAL):
        headers = list(base)
        if i % 10 == 3:  # 20 poisoned requests, spread through the load so that they share batches
            headers += POISONS[(i // 10) % len(POISONS)]
        else:
            headers.append((b"x-portkey-trace-id", f"clean-{i}".encode()))
        body = b'{"model": "load", "user": "u\\u0000ser", "messages": [{"role": "user", "content": "hi"}]}' \
            if i % 10 == 7 else None
        out.append(request_bytes(gateway.port, "/v1/chat/completions", headers, *([body] if body else [])))
    return out


def run(gateway: GatewayProcess, upstream, database) -> None:
    try:
        statuses = send_all(gateway.port, requests(gateway, upstream))
        assert statuses == [200] * TOTAL
        gateway.stop()  # drains the queue
        assert count_rows(database) == TOTAL, gateway.log()
    finally:
        gateway.stop()
    assert "Traceback" not in gateway.log()


def test_poisoned_rows_do_not_cost_their_batch_sqlite(tmp_path, upstream):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    run(gateway, upstream, tmp_path / "data" / "sluicegate.db")
    assert count_rows(tmp_path / "data" / "sluicegate.db", "trace_id = 'poison-\ufffd-trace'") == 4


@pytest.mark.postgres
def test_poisoned_rows_do_not_cost_their_batch_postgres(tmp_path, upstream, pg_url):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN,
                                                     "SLUICEGATE_DATABASE_URL": pg_url}).start()
    run(gateway, upstream, pg_url)
    assert count_rows(pg_url, "trace_id = 'poison-\ufffd-trace'") == 4


# Usage counts the token columns cannot hold (INTEGER: 32 bits on PostgreSQL; past 64 bits no driver binds
# one). The first made SQLite's writer raise OverflowError, which was taken for an outage: every later record
# went to the spool, and every replay of it failed again, until the process ended.
ABSURD_USAGE = [{"prompt_tokens": 2**63, "completion_tokens": 1}, {"prompt_tokens": 2**31, "completion_tokens": 1},
                {"prompt_tokens": 1, "completion_tokens": 2**64 - 1}]


def answers_with_absurd_usage(upstream) -> int:
    """Script the upstream: every tenth answer reports usage the log cannot store; how many do."""
    poisoned = 0
    for i in range(TOTAL):
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        if i % 10 == 5:
            usage, poisoned = ABSURD_USAGE[(i // 10) % len(ABSURD_USAGE)], poisoned + 1
        upstream.push(Reply(json={"id": f"c{i}", "object": "chat.completion", "created": 1, "model": "m",
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": "ok"}}],
                                  "usage": usage}))
    return poisoned


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_usage_an_upstream_reports_past_the_columns_is_logged_as_unknown(tmp_path, upstream, store, request):
    env = {"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    database: object = tmp_path / "data" / "sluicegate.db"
    if store == "postgres":
        database = env["SLUICEGATE_DATABASE_URL"] = request.getfixturevalue("pg_url")
    poisoned = answers_with_absurd_usage(upstream)
    gateway = GatewayProcess(tmp_path / "data", env=env).start()
    run(gateway, upstream, database)  # every request answered 200 and logged
    assert count_rows(database, "prompt_tokens IS NULL") == poisoned
    assert "unreachable" not in gateway.log() and "dropped" not in gateway.log()


# Stream chunks whose fields are not the shapes OpenAI's are, in a stream without usage (so its completion is
# estimated from its events): a `delta` of 5 made the estimate raise, and the record was dropped.
ODD_STREAM_CHUNKS = [{"choices": [{"delta": 5}]}, {"choices": [{"delta": [1]}]}, {"choices": 7}]


def test_a_stream_with_odd_chunks_is_logged(tmp_path, upstream):
    for odd in ODD_STREAM_CHUNKS:
        upstream.push(Reply(stream=[{"choices": [{"index": 0, "delta": {"content": "one"}}]}, odd,
                                    {"choices": [{"index": 0, "delta": {"content": "two"}}]}, "[DONE]"]))
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN}).start()
    body = b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    base = [(b"x-portkey-provider", b"openai"), (b"x-portkey-custom-host", upstream.v1.encode())]
    try:
        statuses = send_all(gateway.port, [request_bytes(gateway.port, "/v1/chat/completions", base, body)
                                           for _ in ODD_STREAM_CHUNKS])
        assert statuses == [200] * len(ODD_STREAM_CHUNKS)
        gateway.stop()
        database = tmp_path / "data" / "sluicegate.db"
        assert count_rows(database, "completion_tokens = 2 AND usage_estimated") == len(ODD_STREAM_CHUNKS), \
            gateway.log()
    finally:
        gateway.stop()
    assert "Traceback" not in gateway.log()
