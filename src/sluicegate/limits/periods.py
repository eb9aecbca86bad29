"""Pure time arithmetic: sliding windows and budget periods (UTC boundaries).

Rate limits use a **sliding log**: a request is admitted when fewer than N requests (or tokens) were
admitted in the last window length, so no window of that length ever holds more than N and a burst
against a fresh limit admits exactly N. Budgets count per period: daily (00:00 UTC), weekly (Monday
00:00 UTC), monthly (the 1st, 00:00 UTC), or one period forever. The Redis script computes the same
period ids in Lua (limits/script.lua); tests hold both to the same table.
"""

from __future__ import annotations

DAY_MS = 86_400_000


def days_to_civil(days: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def civil_to_days(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def period_id(now_ms: int, reset: str | None) -> int:
    """Which budget period ``now_ms`` falls in: a number that changes exactly at the UTC boundary."""
    days = now_ms // DAY_MS
    if reset == "daily":
        return days
    if reset == "weekly":
        return (days + 3) // 7  # 1970-01-01 was a Thursday: weeks start on Monday
    if reset == "monthly":
        year, month, _ = days_to_civil(days)
        return year * 12 + month - 1
    return 0


def period_end_ms(now_ms: int, reset: str | None) -> int | None:
    """When the period holding ``now_ms`` ends (the next reset), or None for a budget that never resets."""
    days = now_ms // DAY_MS
    if reset == "daily":
        return (days + 1) * DAY_MS
    if reset == "weekly":
        return ((days + 3) // 7 * 7 - 3 + 7) * DAY_MS
    if reset == "monthly":
        year, month, _ = days_to_civil(days)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return civil_to_days(year, month, 1) * DAY_MS
    return None


def retry_after_s(oldest_ms: int, window_ms: int, now_ms: int) -> int:
    """Whole seconds until the oldest entry of a full sliding window leaves it (at least 1)."""
    return max(1, -(-(oldest_ms + window_ms - now_ms) // 1000))
