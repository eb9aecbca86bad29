"""Reading the request log: filtered pages (newest first, cursor-paginated), one record, analytics.

One SQLAlchemy expression per question, the same on SQLite and PostgreSQL. Pages are ordered by
(created_ms, id) descending and the cursor is the last row's pair, so a page never skips or repeats a row
however many arrive meanwhile. Analytics aggregate in the database, latencies into a histogram whose bins
give the percentiles (SQLite has no percentile function); small ranges rank every latency exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from ..store.request_logs import ID_LENGTH, request_attempts, request_logs
from ..types import CACHE_HIT, CACHE_MISS, CACHE_SEMANTIC_HIT, CACHE_SEMANTIC_MISS
from .params import AnalyticsQuery, LogFilter, Page, encode_cursor

T = request_logs
_BODY_COLUMNS = ("request_body", "response_body")
_SUMMARY = [c for c in T.c if c.name not in _BODY_COLUMNS]


def conditions(f: LogFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.start_ms is not None:
        where.append(T.c.created_ms >= f.start_ms)
    if f.end_ms is not None:
        where.append(T.c.created_ms < f.end_ms)
    status_terms: list[ColumnElement[bool]] = [T.c.status.in_(f.statuses)] if f.statuses else []
    status_terms += [and_(T.c.status >= n * 100, T.c.status < (n + 1) * 100) for n in f.status_classes]
    if f.errors is not None:
        status_terms.append(is_error() if f.errors else ~is_error())
    if status_terms:  # "400,success": the union of what each term selects
        where.append(or_(*status_terms))
    for name, values in f.equals.items():
        where.append(T.c[name].in_(values))
    for key, value in f.metadata.items():
        where.append(T.c.metadata[key].as_string() == value)
    return where


def is_error() -> ColumnElement[bool]:
    """An error is an error status, or a 2xx whose stream broke after it started (it has an error type)."""
    return or_(T.c.status >= 400, T.c.error_type.is_not(None))


# -- pages and records ------------------------------------------------------------------------------------


async def list_logs(engine: AsyncEngine, page: Page) -> dict[str, Any]:
    where = conditions(page.filter)
    if page.cursor is not None:
        created_ms, record_id = page.cursor
        where.append(or_(T.c.created_ms < created_ms, and_(T.c.created_ms == created_ms, T.c.id < record_id)))
    query = (select(*_SUMMARY).where(*where).order_by(T.c.created_ms.desc(), T.c.id.desc())
             .limit(page.limit + 1))  # one more than asked tells whether another page exists
    async with engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(query)]
        more = len(rows) > page.limit
        rows = rows[: page.limit]
        attempts = await _attempts(conn, [r["id"] for r in rows])
    data = [public_record(r, attempts.get(r["id"], [])) for r in rows]
    next_cursor = encode_cursor(rows[-1]["created_ms"], rows[-1]["id"]) if more else None
    return {"data": data, "next_cursor": next_cursor}


async def get_log(engine: AsyncEngine, record_id: str) -> dict[str, Any] | None:
    if not could_be_record_id(record_id):
        return None
    async with engine.connect() as conn:
        row = (await conn.execute(select(T).where(T.c.id == record_id))).first()
        if row is None:
            return None
        attempts = await _attempts(conn, [record_id])
    record = dict(row._mapping)
    full = public_record(record, attempts.get(record_id, []))
    full["request_body"] = record["request_body"]
    full["response_body"] = record["response_body"]
    return full


def could_be_record_id(text: str) -> bool:
    """Whether a record may have this id: the column holds 32 characters, and a NUL (from ``/logs/%00``)
    is refused by PostgreSQL as a parameter, which would be a store error for what is an unknown record."""
    return len(text) <= ID_LENGTH and "\x00" not in text


async def _attempts(conn: Any, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not ids:
        return {}
    A = request_attempts
    query = select(A).where(A.c.request_id.in_(ids)).order_by(A.c.request_id, A.c.position)
    found: dict[str, list[dict[str, Any]]] = {}
    for row in await conn.execute(query):
        found.setdefault(row.request_id, []).append({
            "position": row.position, "target_path": row.path, "provider": row.provider, "host": row.host,
            "status": row.status, "latency_ms": row.latency_ms, "retry": row.retry, "error": row.error,
            "routing": row.routing,
        })
    return found


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_record(r: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """A row as the API shows it (bodies are added only for a single record)."""
    return {
        "id": r["id"], "trace_id": r["trace_id"], "span_id": r["span_id"], "parent_span_id": r["parent_span_id"],
        "span_name": r["span_name"], "traceparent": r["traceparent"],
        "created_at": iso(r["created_ms"]), "created_ms": r["created_ms"],
        "method": r["method"], "route": r["route"], "endpoint": r["endpoint"], "status": r["status"],
        "latency_ms": r["latency_ms"], "ttfb_ms": r["ttfb_ms"], "stream": r["stream"],
        "provider": r["provider"], "provider_slug": r["provider_slug"], "model": r["model"],
        "model_answered": r["model_answered"],
        "custom_host": r["custom_host"], "retries": r["retries"], "target_path": r["target_path"],
        "usage": {
            "prompt_tokens": r["prompt_tokens"], "completion_tokens": r["completion_tokens"],
            "total_tokens": r["total_tokens"], "estimated": r["usage_estimated"],
        },
        "cost": r["cost"], "user": r["user"], "metadata": r["metadata"],
        "workspace_id": r["workspace_id"], "api_key_id": r["api_key_id"],
        "error": {"type": r["error_type"], "message": r["error_message"]} if r["error_type"] else None,
        "cache_status": r["cache_status"], "request_bytes": r["request_bytes"],
        "response_bytes": r["response_bytes"], "attempts": attempts,
    }


# -- analytics ------------------------------------------------------------------------------------------

CACHE_HITS = (CACHE_HIT, CACHE_SEMANTIC_HIT)
CACHE_MISSES = (CACHE_MISS, CACHE_SEMANTIC_MISS)  # REFRESH is neither: the client chose not to look


def _group_column(group_by: str, dialect: str = "") -> ColumnElement[Any]:
    if group_by == "none":
        return literal(None).label("grp")
    if group_by.startswith("metadata."):
        return T.c.metadata[group_by[len("metadata."):]].as_string().label("grp")
    column = T.c[group_by]
    if dialect == "sqlite":
        # The same value as an expression, so that SQLite's planner reads the covering analytics index in
        # time order instead of walking the (column, created_ms) filter index and every row through it (3x
        # slower over a million rows). "|| ''" keeps text and NULL as they are; "+ 0" an integer.
        same: ColumnElement[Any] = literal_column("0") if group_by == "status" else literal_column("''")
        return (column + same if group_by == "status" else column.op("||")(same)).label("grp")
    return column.label("grp")


async def analytics(engine: AsyncEngine, q: AnalyticsQuery) -> dict[str, Any]:
    """One pass over the range: sums and a latency histogram per (bucket, group, latency bin), folded here.

    Sorting a million latencies (or ranking them with window functions) costs seconds on SQLite; grouping them
    into bins (``LATENCY_BINS``) costs one aggregate, and the rows it returns give every percentile to within
    one bin (see ``_fold``). Up to EXACT_MAX requests in range, a
    second query ranks every latency and the percentiles are exact.
    """
    bucket: ColumnElement[Any]
    if q.interval == "all":  # one bucket: the range's start
        bucket = literal_column(str(int(q.filter.start_ms or 0))).label("bucket")
    else:
        bucket = ((T.c.created_ms // q.interval_ms) * q.interval_ms).label("bucket")
    group = _group_column(q.group_by, engine.dialect.name)
    latency_bin = _latency_bin(engine.dialect.name).label("bin")
    cache_hit = T.c.cache_status.in_(CACHE_HITS)
    sums = select(
        bucket, group, latency_bin, func.count().label("requests"),
        func.sum(case((is_error(), 1), else_=0)).label("errors"),
        func.sum(T.c.prompt_tokens).label("prompt_tokens"),
        func.sum(T.c.completion_tokens).label("completion_tokens"),
        func.sum(T.c.total_tokens).label("total_tokens"),
        func.sum(T.c.cost).label("cost"),
        func.sum(case((cache_hit, 1), else_=0)).label("cache_hits"),
        func.sum(case((T.c.cache_status.in_(CACHE_MISSES), 1), else_=0)).label("cache_misses"),
        func.sum(case((cache_hit, T.c.total_tokens), else_=0)).label("tokens_saved"),
        func.sum(case((cache_hit, T.c.cost), else_=0)).label("cost_saved"),
        func.max(T.c.latency_ms).label("bin_max"),
    # A constant bucket ("all") is not grouped by: PostgreSQL reads a number in GROUP BY as a position.
    ).group_by(*([] if q.interval == "all" else [bucket]), group, latency_bin)
    where = conditions(q.filter)
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # PostgreSQL cannot estimate how many (group, bin) pairs there are, guesses one per row and sorts
            # them all (on disk, past work_mem); hashing them is twice as fast. For this transaction only.
            await conn.exec_driver_sql(f"SET LOCAL work_mem = '{PG_WORK_MEM}'")
            await conn.exec_driver_sql("SET LOCAL enable_sort = off")
        rows = (await conn.execute(sums.where(*where))).all()
        data, everything = _fold(rows)
        if sum(d["requests"] for d in data) <= EXACT_MAX:  # few enough to rank every latency exactly
            await _exact_percentiles(conn, select(bucket, group, T.c.latency_ms).where(*where), data, everything)
    return {
        "from": iso(q.filter.start_ms), "to": iso(q.filter.end_ms),  # type: ignore[arg-type]  # parse_analytics sets both
        "interval": q.interval,
        "interval_ms": q.interval_ms, "group_by": q.group_by, "data": data, "totals": _totals(data, everything),
    }


_RANKS = (50, 95, 99)
PG_WORK_MEM = "64MB"  # the hash of (bucket, group, bin) sums: ~40 MB for 30 days × 200 users
EXACT_MAX = 50_000  # up to this many requests in range, percentiles are exact (one more query, cheap)
_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "cache_hits",
         "cache_misses", "tokens_saved", "cost_saved")


# (below this many ms, bins this wide): at most 2.5 % of the latency wide, and 1 ms below 100 ms. About 160
# bins per decade, so a 30-day histogram per user is tens of thousands of rows, not a million.
LATENCY_BINS = ((100, 1), (200, 2), (500, 5), (1000, 10), (2000, 20), (5000, 50), (10_000, 100),
                (20_000, 200), (50_000, 500), (100_000, 1000), (200_000, 2000), (500_000, 5000))
LAST_BIN_MS = 10_000


def _latency_bin(dialect: str) -> ColumnElement[Any]:
    lat = T.c.latency_ms

    def floor_to(width: int) -> ColumnElement[Any]:  # latencies are positive: truncating is flooring
        # Constants written into the SQL, not parameters: PostgreSQL would divide a parameter as NUMERIC
        # (slow), and the same expression must read the same in SELECT and GROUP BY.
        size: ColumnElement[Any] = literal_column(str(width))
        whole = func.floor(lat / size) if dialect == "postgresql" else cast(lat / size, Integer)
        return whole * size

    return case(*((lat < literal_column(str(limit)), floor_to(width)) for limit, width in LATENCY_BINS),
                else_=floor_to(LAST_BIN_MS))


def _fold(rows: Iterable[Any]) -> tuple[list[dict[str, Any]], dict[int, float]]:
    """Histogram rows → one entry per (bucket, group), and the percentiles over everything.

    A percentile is nearest-rank over the bins: the largest latency in the bin holding that rank. So it is a
    latency that occurred, never below the exact nearest-rank value and at most one bin above it.
    Rows are read by position (bucket, group, bin, the _SUMS…, bin_max): tens of thousands of them."""
    groups: dict[tuple[int, Any], list[Any]] = {}  # key → [sums…, bins]
    overall: dict[Any, list[Any]] = {}
    width = len(_SUMS)
    for bucket, grp, bin_, *sums, largest in rows:
        key = (int(bucket), None if grp is None else str(grp))
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = [0] * width + [{}]
        for i in range(width):
            entry[i] += sums[i] or 0
        _add_bin(entry[width], bin_, sums[0], largest)
        _add_bin(overall, bin_, sums[0], largest)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] is not None, item[0][1] or ""))
    data = [_bucket_entry({"bucket": key[0], "grp": key[1], **dict(zip(_SUMS, entry[:width], strict=True))},
                          _ranks(entry[width])) for key, entry in ordered]
    return data, _ranks(overall)


async def _exact_percentiles(conn: Any, latencies: Any, data: list[dict[str, Any]],
                             everything: dict[int, float]) -> None:
    samples: dict[tuple[int, Any], list[float]] = {}
    for row in await conn.execute(latencies):
        samples.setdefault((int(row.bucket), _key(row.grp)), []).append(row.latency_ms)
    for entry in data:
        entry["latency_ms"] = percentiles(samples.get((entry["bucket_ms"], entry["group"]), []))
    exact = percentiles(value for values in samples.values() for value in values)
    for p in _RANKS:
        value = exact[f"p{p}"]
        if value is not None:
            everything[p] = value


def _add_bin(bins: dict[Any, list[Any]], bin_: Any, count: int, largest: float) -> None:
    found = bins.setdefault(bin_, [0, largest])
    found[0] += count
    found[1] = max(found[1], largest)


def _ranks(bins: dict[Any, list[Any]]) -> dict[int, float]:
    total = sum(count for count, _ in bins.values())
    wanted = {p: max(1, -(-p * total // 100)) for p in _RANKS}
    found: dict[int, float] = {}
    seen = 0
    for bin_ in sorted(bins):
        count, largest = bins[bin_]
        seen += count
        for p, rank in wanted.items():
            if p not in found and seen >= rank:
                found[p] = largest
    return found


def _key(value: Any) -> Any:
    return None if value is None else str(value)


def _ranked(found: dict[int, float]) -> dict[str, float | None]:
    return {f"p{p}": found.get(p) for p in _RANKS}


def _bucket_entry(g: dict[str, Any], latencies: dict[int, float]) -> dict[str, Any]:
    requests, errors = int(g["requests"]), int(g["errors"] or 0)
    return {
        "bucket": iso(int(g["bucket"])), "bucket_ms": int(g["bucket"]), "group": g["grp"],
        "requests": requests, "errors": errors, "error_rate": errors / requests if requests else 0.0,
        "latency_ms": _ranked(latencies),
        "prompt_tokens": int(g["prompt_tokens"] or 0), "completion_tokens": int(g["completion_tokens"] or 0),
        "total_tokens": int(g["total_tokens"] or 0), "cost": float(g["cost"] or 0.0),
        **_cache_entry(int(g["cache_hits"] or 0), int(g["cache_misses"] or 0)),
        "tokens_saved": int(g["tokens_saved"] or 0), "cost_saved": float(g["cost_saved"] or 0.0),
    }


def _cache_entry(hits: int, misses: int) -> dict[str, Any]:
    """A request answered from the cache is a hit; its tokens and cost are what it would have cost."""
    lookups = hits + misses
    return {"cache_hits": hits, "cache_misses": misses, "cache_hit_rate": hits / lookups if lookups else 0.0}


def _totals(data: list[dict[str, Any]], latencies: dict[int, float]) -> dict[str, Any]:
    requests = sum(d["requests"] for d in data)
    errors = sum(d["errors"] for d in data)
    totals: dict[str, Any] = {"requests": requests, "errors": errors,
                              "error_rate": errors / requests if requests else 0.0,
                              "latency_ms": _ranked(latencies)}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        totals[name] = sum(d[name] for d in data)
    totals["cost"] = sum(d["cost"] for d in data)
    totals.update(_cache_entry(sum(d["cache_hits"] for d in data), sum(d["cache_misses"] for d in data)))
    totals["tokens_saved"] = sum(d["tokens_saved"] for d in data)
    totals["cost_saved"] = sum(d["cost_saved"] for d in data)
    return totals


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 (a value that occurred, never an interpolation)."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p95": None, "p99": None}
    n = len(ordered)
    return {f"p{p}": ordered[max(0, -(-p * n // 100) - 1)] for p in (50, 95, 99)}
