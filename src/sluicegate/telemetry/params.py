"""Query parameters of the log API, parsed and checked (pure): anything wrong is a 400 with a message.

Unknown parameters are errors too: a misspelt filter silently ignored would return the wrong logs.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import orjson

from .. import numerals
from ..errors import BadRequest
from ..store.request_logs import NAME_MAX
from ..types import METADATA_KEY_RULE, queryable_metadata_key

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_BUCKETS = 10_000
DEFAULT_WINDOW_MS = 86_400_000  # analytics without "from": the last 24 hours
GROUPS = ("provider", "provider_slug", "model", "user", "status", "cache_status", "workspace_id", "api_key_id",
          "none")
_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_INTERVAL_MS = 366 * _UNITS_MS["d"]  # a year's buckets; larger ones overflow SQL integers long before
# The times a query may name: what datetime can show (years 1 to 9999), which also fits a signed 64-bit SQL
# integer. Beyond them, comparing with created_ms overflows and the answer's ISO times cannot be written.
MIN_TIME_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_INTERVAL = re.compile(r"([0-9]+)([smhd])")  # ASCII digits only (\d takes other scripts' digits too)
_STATUS_CODE = re.compile(r"[1-5][0-9][0-9]")  # ASCII only: str.isdigit() also takes "²" and "①"
_STATUS_CLASS = re.compile(r"^[1-5]xx$")
_EQUALS = ("provider", "provider_slug", "model", "user", "trace_id", "error_type", "workspace_id", "api_key_id")
_FILTERS = ("from", "to", "status", *_EQUALS)


@dataclass(frozen=True)
class LogFilter:
    start_ms: int | None = None
    end_ms: int | None = None  # exclusive
    statuses: tuple[int, ...] = ()
    status_classes: tuple[int, ...] = ()  # 4 for "4xx"
    # "error": status >= 400 or an error type; "success": neither. One of the status terms: a list of them is
    # their union ("400,success": the 400s and every success).
    errors: bool | None = None
    equals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # column → accepted values
    metadata: Mapping[str, str] = field(default_factory=dict)


def within_workspace(f: LogFilter, workspace_id: str) -> LogFilter:
    """The filter narrowed to one workspace (a workspace key's view): asking for another finds nothing."""
    asked = f.equals.get("workspace_id")
    allowed = (workspace_id,) if asked is None or workspace_id in asked else ()
    return replace(f, equals={**f.equals, "workspace_id": allowed})


@dataclass(frozen=True)
class Page:
    filter: LogFilter
    limit: int
    cursor: tuple[int, str] | None


@dataclass(frozen=True)
class AnalyticsQuery:
    filter: LogFilter
    interval_ms: int
    interval: str
    group_by: str  # a column name, "none", or "metadata.<key>"


def parse_time(name: str, text: str) -> int:
    """ISO 8601 (``2025-01-02T03:04:05Z``; no zone means UTC) or seconds since the epoch → epoch ms, within
    years 1 to 9999 (UTC)."""
    return within_time_range(name, _epoch_ms(name, text.strip(), text))


def _epoch_ms(name: str, value: str, text: str) -> int:
    seconds = numerals.decimal(value)  # not "1_000" or "١٢", which float() reads
    if seconds is not None:
        return int(seconds * 1000)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:  # includes out-of-range dates
        raise BadRequest(f"'{name}' must be an ISO 8601 time or seconds since the epoch, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)  # a zone can move year 1 or 9999 out of range: checked next


def within_time_range(name: str, ms: int) -> int:
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise BadRequest(f"'{name}' must be a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z")
    return ms


def _statuses(text: str) -> tuple[tuple[int, ...], tuple[int, ...], bool | None]:
    codes, classes, words = [], [], set()
    for part in (p.strip().lower() for p in text.split(",")):
        if part in ("error", "success"):
            words.add(part)
        elif _STATUS_CLASS.match(part):
            classes.append(int(part[0]))
        elif _STATUS_CODE.fullmatch(part):
            codes.append(int(part))
        else:
            raise BadRequest(f"'status' takes HTTP codes (200), classes (4xx), 'error' or 'success'; got {part!r}")
    if len(words) == 2:  # every record is one or the other: the union is every record
        return (), (), None
    return tuple(codes), tuple(classes), ("error" in words) if words else None


def parse_filter(params: Mapping[str, str], allowed: Iterable[str] = ()) -> LogFilter:
    known = set(_FILTERS) | set(allowed)
    getall = getattr(params, "getall", None)  # a query string is a multidict: a name may come twice
    for name in params:
        if name not in known and not name.startswith("metadata."):
            raise BadRequest(f"Unknown query parameter '{name}'")
        if getall is not None and len(getall(name)) > 1:
            raise BadRequest(f"'{name}' is given twice; give one value (lists are comma-separated)")
        if "\x00" in params[name]:  # no stored text holds one (storable.py), and PostgreSQL refuses it
            raise BadRequest(f"{name!r} must not hold a NUL character")
    start = parse_time("from", params["from"]) if "from" in params else None
    end = parse_time("to", params["to"]) if "to" in params else None
    if start is not None and end is not None and start >= end:
        raise BadRequest("'from' must be earlier than 'to'")
    codes, classes, errors = _statuses(params["status"]) if "status" in params else ((), (), None)
    # A name is stored cut to its column (a trace id a client made longer is echoed whole): the value the
    # client has finds it as stored.
    equals = {name: tuple(v[:NAME_MAX] for v in params[name].split(",") if v) for name in _EQUALS if name in params}
    for name, values in equals.items():
        if not values:
            raise BadRequest(f"'{name}' must not be empty")
    metadata = {}
    for name, value in params.items():
        if name.startswith("metadata."):
            metadata[metadata_key(name, name[len("metadata."):])] = value
    return LogFilter(start, end, codes, classes, errors, equals, metadata)


def metadata_key(name: str, key: str) -> str:
    """The key of a ``metadata.<key>`` parameter, one the log can look up (a NUL, a quote, … would make an
    invalid JSON path: a store error, not an answer)."""
    if not key:
        raise BadRequest(f"{name!r} needs a key, e.g. metadata.team")
    if not queryable_metadata_key(key):
        raise BadRequest(f"{name!r}: a metadata key holds {METADATA_KEY_RULE}")
    return key


def no_parameters(params: Mapping[str, str]) -> None:
    """One record's route takes none: a parameter given there is a mistake, said rather than ignored."""
    for name in params:
        raise BadRequest(f"Unknown query parameter '{name}'")


def parse_page(params: Mapping[str, str]) -> Page:
    filter_ = parse_filter(params, allowed=("limit", "cursor"))
    limit = _int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = decode_cursor(params["cursor"]) if params.get("cursor") else None
    return Page(filter_, limit, cursor)


def parse_analytics(params: Mapping[str, str], now_ms: int | None = None) -> AnalyticsQuery:
    filter_ = parse_filter(params, allowed=("interval", "group_by"))
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    end = filter_.end_ms if filter_.end_ms is not None else now_ms
    start = filter_.start_ms if filter_.start_ms is not None else default_start(end)
    if start >= end:
        raise BadRequest("'from' must be earlier than 'to'")
    interval = params.get("interval", "1h")
    # "all": one bucket spanning the whole range (a breakdown by group, e.g. the dashboard's bars).
    interval_ms = end - start if interval == "all" else parse_interval(interval)
    if (end - start) // interval_ms > MAX_BUCKETS:
        raise BadRequest(f"'interval' {interval} makes more than {MAX_BUCKETS} buckets over this time range")
    group_by = params.get("group_by", "none")
    if group_by.startswith("metadata."):
        metadata_key("group_by", group_by[len("metadata."):])
    elif group_by not in GROUPS:
        raise BadRequest(f"'group_by' must be one of {', '.join(GROUPS)} or metadata.<key>; got {group_by!r}")
    bounded = LogFilter(start, end, filter_.statuses, filter_.status_classes, filter_.errors, filter_.equals,
                        filter_.metadata)
    return AnalyticsQuery(bounded, interval_ms, interval, group_by)


def default_start(end_ms: int) -> int:
    """Without "from", the 24 hours before "to", which must then start in year 1 or later as well."""
    start = end_ms - DEFAULT_WINDOW_MS
    if start < MIN_TIME_MS:
        raise BadRequest("'from' (24 hours before 'to' when not given) must be a time from 0001-01-01T00:00:00Z")
    return start


def parse_interval(text: str) -> int:
    match = _INTERVAL.fullmatch(text.strip())
    if not match or not match.group(1).strip("0"):
        raise BadRequest(f"'interval' must look like 30s, 5m, 1h or 1d, or be 'all'; got {text!r}")
    digits, unit = match.group(1).lstrip("0"), match.group(2)
    # Past 12 digits it is over the cap in any unit (and int() refuses thousands of digits on its own).
    interval_ms = int(digits) * _UNITS_MS[unit] if len(digits) <= 12 else MAX_INTERVAL_MS + 1
    if interval_ms > MAX_INTERVAL_MS:
        raise BadRequest(f"'interval' must be at most {MAX_INTERVAL_MS // _UNITS_MS['d']}d; got {text!r}")
    return interval_ms


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    if name not in params:
        return default
    value = numerals.integer(params[name])  # not "1_0" or "٥", which int() reads
    if value is None or not low <= value <= high:
        raise BadRequest(f"'{name}' must be an integer from {low} to {high}")
    return value


def encode_cursor(created_ms: int, record_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_ms, record_id])).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created_ms, record_id = orjson.loads(raw)
        # A created_ms the store's signed 64-bit column cannot hold would overflow the query, not match.
        if isinstance(created_ms, int) and isinstance(record_id, str) and not isinstance(created_ms, bool) \
                and 0 <= created_ms < 2**63 and "\x00" not in record_id:
            return created_ms, record_id
    except (ValueError, TypeError, orjson.JSONDecodeError):
        pass
    raise BadRequest("Invalid 'cursor': pass back the next_cursor of a previous page unchanged")
