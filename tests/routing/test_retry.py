"""retry_delay and should_fallback: sequences, Retry-After forms, the 60 s budget."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from sluicegate.config.model import RetryPolicy, Strategy
from sluicegate.routing.retry import retry_after_s, retry_delay, should_fallback

DEFAULT = RetryPolicy(attempts=5)
HONOUR = RetryPolicy(attempts=5, use_retry_after=True)


def delays(policy: RetryPolicy, statuses: list[int | None], headers=None) -> list[float | None]:
    """Drive retry_delay like the dispatch loop does, until it says stop."""
    out: list[float | None] = []
    waited = 0.0
    for retries_done, status in enumerate(statuses):
        delay = retry_delay(policy, retries_done, status, headers or {}, waited)
        out.append(delay)
        if delay is None:
            break
        waited += delay
    return out


@pytest.mark.parametrize(
    "policy, statuses, expected",
    [
        (DEFAULT, [503] * 6, [1, 2, 4, 8, 16, None]),
        (RetryPolicy(attempts=3), [429] * 4, [1, 2, 4, None]),
        (RetryPolicy(attempts=0), [500], [None]),
        (DEFAULT, [500, 502, 504, 429], [1, 2, 4, 8]),
        (DEFAULT, [503, 400], [1, None]),  # a status not in the list stops at once
        (DEFAULT, [408], [None]),  # the timeout status is not a default retry code (as OSS)
        (DEFAULT, [529], [None]),  # docs add 529; OSS does not: list it explicitly if wanted
        (DEFAULT, [200], [None]),
        (RetryPolicy(attempts=2, on_status_codes=frozenset({200, 500})), [200], [None]),  # 2xx never
        (DEFAULT, [None, None, 503], [1, 2, 4]),  # no response at all is retryable
        (RetryPolicy(attempts=2, on_status_codes=frozenset({429})), [None, 500], [1, None]),
        (RetryPolicy(attempts=2, on_status_codes=frozenset()), [None, 429], [1, None]),
    ],
)
def test_delay_sequences(policy, statuses, expected):
    assert delays(policy, statuses) == expected


def test_no_policy_means_no_retry():
    assert retry_delay(None, 0, 503, {}, 0.0) is None


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"x-ms-retry-after-ms": "250"}, 0.25),
        ({"retry-after": "3"}, 3.0),
        ({"Retry-After": "7"}, 7.0),  # a plain dict with any case
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after-ms": "2000", "retry-after": "9"}, 2.0),  # ms headers first
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),  # an unparsable one is skipped
        ({"retry-after": "-3"}, 1.0),  # ignored: backoff
        ({"retry-after": "nan"}, 1.0),
        ({"retry-after": "inf"}, 1.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1.0),  # a date without a clock: backoff
        ({}, 1.0),
    ],
)
def test_retry_after_forms_replace_the_first_backoff(headers, expected):
    assert retry_delay(HONOUR, 0, 429, headers, 0.0) == expected


def test_retry_after_is_ignored_unless_the_policy_asks():
    assert retry_delay(DEFAULT, 2, 429, {"retry-after": "1"}, 0.0) == 4.0


def test_retry_after_counts_on_any_retryable_status_not_only_429():
    assert retry_delay(HONOUR, 0, 503, {"retry-after": "5"}, 0.0) == 5.0


def test_retry_after_http_date_uses_the_given_wall_clock():
    now = 1_700_000_000.0
    headers = {"retry-after": formatdate(now + 12, usegmt=True)}
    assert retry_delay(HONOUR, 0, 429, headers, 0.0, now_epoch_s=now) == 12.0
    past = {"retry-after": formatdate(now - 30, usegmt=True)}
    assert retry_delay(HONOUR, 0, 429, past, 0.0, now_epoch_s=now) == 0.0
    assert retry_after_s({"retry-after": "not a date"}, now_epoch_s=now) is None
    # Dates no clock can hold raised OverflowError: a 500 instead of the upstream's own 429.
    assert retry_after_s({"retry-after": "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"}, now_epoch_s=now) is None
    assert retry_after_s({"retry-after": "1 Jan 2030 00:00:00 +99999999999999999999"}, now_epoch_s=now) is None


@pytest.mark.parametrize(
    "retries_done, headers, waited, expected",
    [
        (0, {"retry-after": "60"}, 0.0, 60.0),  # exactly the budget is allowed
        (0, {"retry-after": "61"}, 0.0, None),  # a single hint over the budget stops
        (1, {"retry-after": "30"}, 31.0, None),
        (1, {"retry-after": "29"}, 31.0, 29.0),
        (4, {}, 50.0, None),  # backoff 16 s would overrun
        (0, {}, 59.0, 1.0),
    ],
)
def test_the_cumulative_sixty_second_budget(retries_done, headers, waited, expected):
    assert retry_delay(HONOUR, retries_done, 429, headers, waited) == expected


def test_hint_sequence_until_the_budget_runs_out():
    assert delays(HONOUR, [429] * 6, {"retry-after": "25"}) == [25.0, 25.0, None]


FALLBACK = Strategy(mode="fallback")
ONLY_429 = Strategy(mode="fallback", on_status_codes=frozenset({429}))


@pytest.mark.parametrize(
    "strategy, status, expected",
    [
        (FALLBACK, 500, True),
        (FALLBACK, 429, True),
        (FALLBACK, 400, True),
        (FALLBACK, 408, True),
        (FALLBACK, 301, True),
        (FALLBACK, 200, False),
        (FALLBACK, 204, False),
        (FALLBACK, None, True),
        (ONLY_429, 429, True),
        (ONLY_429, 500, False),  # the 500 is returned at once (as Portkey's gateway does, observed)
        (ONLY_429, None, True),  # no response at all: nothing to return, so move on
        (Strategy(mode="fallback", on_status_codes=frozenset({200})), 200, False),
        (Strategy(mode="loadbalance"), 500, False),
        (Strategy(mode="single"), None, False),
    ],
)
def test_should_fallback(strategy, status, expected):
    assert should_fallback(strategy, status) is expected


def test_backoff_scale_scales_the_backoff_but_not_the_upstream_hint():
    from sluicegate.config.model import RetryPolicy
    from sluicegate.routing.retry import retry_delay

    policy = RetryPolicy(attempts=3, use_retry_after=True)
    assert retry_delay(policy, 2, 503, {}, 0.0, backoff_scale=0.5) == 2.0
    assert retry_delay(policy, 0, 429, {"retry-after": "3"}, 0.0, backoff_scale=0.01) == 3.0
