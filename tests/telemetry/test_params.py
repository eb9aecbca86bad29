"""Query parameters: what is accepted, and a clear 400 for everything else."""

from __future__ import annotations

import pytest

from sluicegate.errors import BadRequest
from sluicegate.telemetry import params

NOW = 1_750_000_000_000


def test_times_filters_and_cursor():
    page = params.parse_page({"from": "2025-06-15T00:00:00Z", "to": "1750000000", "status": "200,4xx,error",
                              "provider": "openai,groq", "metadata.team": "search", "limit": "10"})
    f = page.filter
    assert f.start_ms == 1_749_945_600_000 and f.end_ms == 1_750_000_000_000
    assert (f.statuses, f.status_classes, f.errors) == ((200,), (4,), True)
    assert f.equals == {"provider": ("openai", "groq")} and f.metadata == {"team": "search"}
    assert page.limit == 10 and page.cursor is None
    cursor = params.encode_cursor(123, "abc")
    assert params.parse_page({"cursor": cursor}).cursor == (123, "abc")


def test_analytics_defaults():
    q = params.parse_analytics({}, now_ms=NOW)
    assert (q.filter.start_ms, q.filter.end_ms) == (NOW - 86_400_000, NOW)
    assert (q.interval_ms, q.group_by) == (3_600_000, "none")
    assert params.parse_analytics({"group_by": "metadata.team", "interval": "5m"}, now_ms=NOW).interval_ms == 300_000


BAD = [
    ("page", {"cursor": "not-a-cursor"}, "Invalid 'cursor'"),
    ("page", {"cursor": "WzEsMl0"}, "Invalid 'cursor'"),  # [1,2]: decodes, wrong shape
    ("page", {"from": "yesterday"}, "'from' must be an ISO 8601"),
    ("page", {"to": "2025-13-40"}, "'to' must be an ISO 8601"),
    ("page", {"from": "inf"}, "'from' must be an ISO 8601"),
    ("page", {"from": "2025-01-02", "to": "2025-01-01"}, "'from' must be earlier than 'to'"),
    ("page", {"status": "20x"}, "'status' takes"),
    ("page", {"status": "700"}, "'status' takes"),
    ("page", {"limit": "0"}, "'limit' must be an integer from 1 to 500"),
    ("page", {"limit": "many"}, "'limit' must be an integer"),
    ("page", {"limit": "1_0"}, "'limit' must be an integer from 1 to 500"),  # int() reads it
    ("page", {"limit": "\u0665"}, "'limit' must be an integer from 1 to 500"),  # an Arabic-Indic five
    ("page", {"from": "1_000"}, "'from' must be an ISO 8601 time or seconds since the epoch"),
    ("page", {"from": "\u0661\u0662"}, "'from' must be an ISO 8601 time or seconds since the epoch"),
    ("page", {"provider": ""}, "'provider' must not be empty"),
    ("page", {"modle": "m"}, "Unknown query parameter 'modle'"),
    ("page", {"metadata.": "x"}, "'metadata.' needs a key"),
    ("page", {"interval": "1h"}, "Unknown query parameter 'interval'"),
    ("analytics", {"group_by": "colour"}, "'group_by' must be one of"),
    ("analytics", {"interval": "1w"}, "'interval' must look like"),
    ("analytics", {"interval": "0m"}, "'interval' must look like"),
    ("analytics", {"interval": "1s", "from": "2020-01-01"}, "more than 10000 buckets"),
    ("analytics", {"limit": "5"}, "Unknown query parameter 'limit'"),
    # Found by fuzzing: each of these was a 500 (or a 503 blaming the database).
    ("page", {"status": "\u00b2"}, "'status' takes"),  # "²".isdigit() is true, int("²") fails
    ("analytics", {"status": "\u2460"}, "'status' takes"),  # "①"
    ("page", {"status": "1" * 5000}, "'status' takes"),  # more digits than int() takes
    ("page", {"from": "1e300"}, "'from' must be a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"),
    ("page", {"to": "1e16"}, "'to' must be a time from 0001-01-01"),  # past a signed 64-bit SQL integer
    ("page", {"from": "1180591620717411303424"}, "'from' must be a time from 0001-01-01"),
    ("analytics", {"to": "1e300"}, "'to' must be a time from 0001-01-01"),
    ("analytics", {"to": "1e12"}, "'to' must be a time from 0001-01-01"),  # year 33658
    ("analytics", {"from": "9999-12-31T23:59:59-01:00", "to": "9999-12-31T23:59:59-02:00"},
     "'from' must be a time from 0001-01-01"),  # year 10000 in UTC
    ("analytics", {"to": "0001-01-01T00:00:00+01:00"}, "'to' must be a time from 0001-01-01"),  # year 0 in UTC
    ("analytics", {"to": "0001-01-01T12:00:00Z"}, "'from' (24 hours before 'to' when not given) must be"),
    ("analytics", {"from": "-1e12", "interval": "10000d"}, "'from' must be a time from 0001-01-01"),
    ("page", {"cursor": "WzE4NDQ2NzQ0MDczNzA5NTUxNjE1LCJ4Il0"}, "Invalid 'cursor'"),  # [2**64 - 1, "x"]
    ("page", {"cursor": "Wy0xLCJ4Il0"}, "Invalid 'cursor'"),  # [-1, "x"]
    ("page", {"cursor": "WzEsIlx1MDAwMCJd"}, "Invalid 'cursor'"),  # [1, "\u0000"]
    ("analytics", {"interval": "100000000000000000000s"}, "'interval' must be at most 366d"),
    ("analytics", {"interval": "9999999999999999999999999d", "from": "0"}, "'interval' must be at most 366d"),
    ("analytics", {"interval": "367d", "from": "0"}, "'interval' must be at most 366d"),
    ("analytics", {"interval": "9" * 5000 + "d", "from": "0"}, "'interval' must be at most 366d"),
    ("page", {"metadata.\x00": "x"}, "'metadata.\\x00': a metadata key holds no control characters"),
    ("page", {"metadata.a\x00b": "x"}, "a metadata key holds no control characters"),
    ("page", {"metadata.a\nb": "x"}, "a metadata key holds no control characters"),
    ("page", {"metadata.a\"": "x"}, "a metadata key holds no control characters, quotes"),  # a JSON path error
    ("analytics", {"group_by": "metadata.a\""}, "'group_by': a metadata key holds no control characters"),
    ("analytics", {"group_by": "metadata.a\x01"}, "'group_by': a metadata key holds no control characters"),
    ("analytics", {"group_by": "metadata.\x00"}, "'group_by' must not hold a NUL character"),
    ("page", {"metadata.team": "a\x00b"}, "'metadata.team' must not hold a NUL character"),  # PostgreSQL: 500
    ("page", {"provider": "a\x00b"}, "'provider' must not hold a NUL character"),
]


@pytest.mark.parametrize(("kind", "query", "message"), BAD, ids=[f"{k}:{q}"[:100] for k, q, _ in BAD])
def test_bad_parameters(kind, query, message):
    parse = params.parse_page if kind == "page" else (lambda q: params.parse_analytics(q, now_ms=NOW))
    with pytest.raises(BadRequest) as error:
        parse(query)
    assert message in error.value.message


def test_repeated_parameter():
    from multidict import MultiDict

    with pytest.raises(BadRequest, match="given twice"):
        params.parse_page(MultiDict([("status", "200"), ("status", "500")]))
