"""One bad byte must not cost a batch: poisoned requests mixed into a load all land, on both stores.

A 0xFF byte or an invalid UTF-8 sequence in a logged header (``x-portkey-trace-id``, ``x-portkey-span-name``)
reaches Python as lone surrogates, which neither sqlite3 nor the spool's JSON can encode; a NUL in a
metadata value or the body's ``user`` is refused by PostgreSQL. Each used to fail its whole batch (and the
spool write after it), uncounted. Now such text is stored with U+FFFD in place of what cannot be stored.
"""

from __future__ import annotations

import pytest

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
    assert count_rows(tmp_path / "data" / "sluicegate.db", "trace_id = 'poison-\ufffd-trace'") == 5


@pytest.mark.postgres
def test_poisoned_rows_do_not_cost_their_batch_postgres(tmp_path, upstream, pg_url):
    gateway = GatewayProcess(tmp_path / "data", env={"SLUICEGATE_ADMIN_TOKEN": ADMIN_TOKEN,
                                                     "SLUICEGATE_DATABASE_URL": pg_url}).start()
    run(gateway, upstream, pg_url)
    assert count_rows(pg_url, "trace_id = 'poison-\ufffd-trace'") == 5
