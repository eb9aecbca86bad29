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


def test_storable_row_fixes_only_what_needs_it_whichever_column_holds_it():
    """The whole-row check must never let a bad column through: plain text beside it, or nested in JSON."""
    row = {"a": "plain", "b": "nul\x00", "c": "caf\u00e9", "d": "lone\udcff", "n": 5, "m": {}, "j": {"k": "ok"}}
    assert storable_row(dict(row)) == {"a": "plain", "b": "nul\ufffd", "c": "caf\u00e9", "d": "lone\ufffd", "n": 5,
                                       "m": {}, "j": {"k": "ok"}}
    assert storable_row({"a": "plain", "j": {"k": "x\x00"}, "l": ["\udcff"]}) == {
        "a": "plain", "j": {"k": "x\ufffd"}, "l": ["\ufffd"]}
    plain = {"a": "plain", "b": "text", "n": None}
    assert storable_row(dict(plain)) == plain


@pytest.mark.parametrize("value", ["plain", "caf\u00e9", "a\x00b", "lone\udcff", "typed \\u0000 as text", "\ud800"])
@pytest.mark.parametrize("size", [0, 5000], ids=["short", "long"])  # a long line is checked value by value
def test_storable_draft_checks_with_one_serialisation_and_gives_the_line(value, size):
    import orjson

    from sluicegate.telemetry.storable import storable, storable_draft

    row = {"a": value, "j": {"k" + value: [value]}, "n": 1, "body": "x" * size}
    attempts = [{"error": value}]
    answer = ["stream", None, [value, "tail", True, 3, 1, 200]]
    draft = {"row": dict(row), "attempts": [dict(attempts[0])], "answer": answer, "price": ["p", value, True]}
    stored, line = storable_draft(draft)
    expected = {"row": storable_row(dict(row)), "attempts": [storable_row(dict(attempts[0]))],
                "answer": storable(answer), "price": storable(["p", value, True])}
    assert stored == expected
    assert line.endswith(b"\n") and orjson.loads(line) == expected
