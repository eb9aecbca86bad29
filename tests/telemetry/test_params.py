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
    ("page", {"provider": ""}, "'provider' must not be empty"),
    ("page", {"modle": "m"}, "Unknown query parameter 'modle'"),
    ("page", {"metadata.": "x"}, "'metadata.' needs a key"),
    ("page", {"interval": "1h"}, "Unknown query parameter 'interval'"),
    ("analytics", {"group_by": "colour"}, "'group_by' must be one of"),
    ("analytics", {"interval": "1w"}, "'interval' must look like"),
    ("analytics", {"interval": "0m"}, "'interval' must look like"),
    ("analytics", {"interval": "1s", "from": "2020-01-01"}, "more than 10000 buckets"),
    ("analytics", {"limit": "5"}, "Unknown query parameter 'limit'"),
]


@pytest.mark.parametrize(("kind", "query", "message"), BAD, ids=[f"{k}:{q}" for k, q, _ in BAD])
def test_bad_parameters(kind, query, message):
    parse = params.parse_page if kind == "page" else (lambda q: params.parse_analytics(q, now_ms=NOW))
    with pytest.raises(BadRequest) as error:
        parse(query)
    assert message in error.value.message


def test_repeated_parameter():
    from multidict import MultiDict

    with pytest.raises(BadRequest, match="given twice"):
        params.parse_page(MultiDict([("status", "200"), ("status", "500")]))
