"""Text every store can hold: NUL and lone surrogates become U+FFFD, everything else is kept."""

from __future__ import annotations

import pytest

from sluicegate.telemetry.storable import storable_row, storable_text

from .helpers import builder, record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a\x00b", "a\ufffdb"),
        ("poison-\udcff-trace", "poison-\ufffd-trace"),  # aiohttp's escape of the byte 0xFF
        ("x\ud800y", "x\ufffdy"),  # half a surrogate pair
        ("é ✓ \U0001f600", "é ✓ \U0001f600"),  # valid non-ASCII is untouched
        ("é\x00\udcc3", "é\ufffd\ufffd"),
    ],
)
def test_storable_text(text, expected):
    assert storable_text(text) == expected
    assert storable_text(text).encode("utf-8")  # encodes: sqlite3, asyncpg and orjson all accept it


def test_rows_from_poisoned_headers_are_storable():
    row, _ = builder().build(record(headers={"x-portkey-trace-id": "t-\udcff", "x-portkey-span-name": "s\x00",
                                             "x-portkey-metadata": '{"team": "a\\u0000b"}'},
                                    body={"model": "m\x00", "user": "u\x00", "messages": []}))
    assert row["trace_id"] == "t-\ufffd" and row["span_name"] == "s\ufffd"
    assert row["model"] == "m\ufffd" and row["user"] == "u\ufffd"
    assert row["metadata"]["team"] == "a\ufffdb"


def test_storable_row_reaches_into_json_columns():
    assert storable_row({"metadata": {"k\x00": ["v\udcff"]}, "n": 1}) == {"metadata": {"k\ufffd": ["v\ufffd"]}, "n": 1}
