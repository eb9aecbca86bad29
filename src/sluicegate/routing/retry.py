"""Retry and fallback decisions, as in Portkey's gateway (docs/gateway-config.md). The caller sleeps and
counts; this only decides.

Retry: ``attempts`` retries after the first call, on the policy's status codes (default 429, 500, 502,
503, 504), with backoff 1, 2, 4, 8, 16 s and no jitter (as Portkey). With ``use_retry_after`` the
upstream's hint replaces the backoff. All waits of one target share a 60 s budget: a wait that would
overrun it ends the retries (the gateway then reports ``x-portkey-retry-attempt-count: -1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from sluicegate.config.model import RetryPolicy, Strategy

MAX_TOTAL_WAIT_S = 60.0
RETRY_AFTER_MS_HEADERS = ("retry-after-ms", "x-ms-retry-after-ms")  # OpenAI and Azure send these


def retry_delay(
    policy: RetryPolicy | None,
    retries_done: int,
    status: int | None,
    headers: Mapping[str, str],
    waited_s: float,
    *,
    now_epoch_s: float | None = None,
    backoff_scale: float = 1.0,
) -> float | None:
    """Seconds to wait before retry number ``retries_done + 1``, or None to stop retrying.

    ``status`` None means the attempt got no HTTP response at all (connection refused or reset, DNS
    failure, timeout): always retryable, whatever the status list says, because nothing was answered.
    Pass the synthetic status instead (e.g. 408) to let the list decide. A 2xx is never retried.
    ``waited_s`` is the total already slept for this target. ``now_epoch_s`` (wall clock, seconds) is
    only needed to honour a ``Retry-After`` given as an HTTP-date; without it such a date is ignored.
    ``backoff_scale`` multiplies the exponential backoff (an operator setting), never the upstream's hint.
    """
    if policy is None or retries_done >= policy.attempts:
        return None
    if status is not None and (200 <= status < 300 or status not in policy.on_status_codes):
        return None
    delay = backoff_s(retries_done) * backoff_scale
    # OSS honours the hint on 429 only; a 503 with Retry-After (RFC 9110) means the same, so any
    # retryable status counts here.
    if policy.use_retry_after and status is not None:
        hinted = retry_after_s(headers, now_epoch_s=now_epoch_s)
        if hinted is not None:
            delay = hinted
    if waited_s + delay > MAX_TOTAL_WAIT_S:
        return None
    return delay


def backoff_s(retries_done: int) -> float:
    return float(2**retries_done)


def retry_after_s(headers: Mapping[str, str], *, now_epoch_s: float | None = None) -> float | None:
    """The upstream's wait hint in seconds: ``retry-after-ms``, ``x-ms-retry-after-ms``, ``retry-after``.

    The first header that parses wins; ``retry-after`` may be delta-seconds or an HTTP-date.
    """
    for name in RETRY_AFTER_MS_HEADERS:
        millis = _non_negative(_header(headers, name))
        if millis is not None:
            return millis / 1000.0
    text = _header(headers, "retry-after")
    seconds = _non_negative(text)
    if seconds is not None or text is None or now_epoch_s is None:
        return seconds
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:  # not a valid HTTP-date (those are always GMT)
            return None
        return max(0.0, when.timestamp() - now_epoch_s)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a year or an offset beyond any clock
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # aiohttp's headers are case-insensitive already; a plain dict (tests, fakes) may not be.
    value = headers.get(name)
    if value is not None:
        return value
    for key, item in headers.items():
        if key.lower() == name:
            return item
    return None


def _non_negative(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def should_fallback(strategy: Strategy, status: int | None) -> bool:
    """After a target's final outcome, should a ``fallback`` group try its next child?

    Only in fallback mode. No response (None) always falls back. Otherwise: any non-2xx, or only the
    statuses in ``strategy.on_status_codes`` when given. A 2xx never falls back. The caller stops on a
    gateway exception (``x-portkey-gateway-exception``) before asking.
    """
    if strategy.mode != "fallback":
        return False
    if status is None:
        return True
    if 200 <= status < 300:
        return False
    if strategy.on_status_codes is not None:
        return status in strategy.on_status_codes
    return True
