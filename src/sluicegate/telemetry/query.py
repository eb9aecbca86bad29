"""Reading the request log: filtered pages (newest first, cursor-paginated), one record, analytics.

One SQLAlchemy expression per question, the same on SQLite and PostgreSQL. Pages are ordered by
(created_ms, id) descending and the cursor is the last row's pair, so a page never skips or repeats a row
however many arrive meanwhile. Percentiles are computed here from the latencies (SQLite has no percentile
function); everything else is aggregated by the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from ..store.request_logs import request_attempts, request_logs
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
    if status_terms:
        where.append(or_(*status_terms))
    if f.errors is not None:
        where.append(is_error() if f.errors else ~is_error())
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
        "error": {"type": r["error_type"], "message": r["error_message"]} if r["error_type"] else None,
        "cache_status": r["cache_status"], "request_bytes": r["request_bytes"],
        "response_bytes": r["response_bytes"], "attempts": attempts,
    }


# -- analytics ------------------------------------------------------------------------------------------


def _group_column(group_by: str) -> ColumnElement[Any]:
    if group_by == "none":
        return literal(None).label("grp")
    if group_by.startswith("metadata."):
        return T.c.metadata[group_by[len("metadata."):]].as_string().label("grp")
    return T.c[group_by].label("grp")


async def analytics(engine: AsyncEngine, q: AnalyticsQuery) -> dict[str, Any]:
    bucket = ((T.c.created_ms // q.interval_ms) * q.interval_ms).label("bucket")
    group = _group_column(q.group_by)
    where = conditions(q.filter)
    sums = select(
        bucket, group, func.count().label("requests"),
        func.sum(case((is_error(), 1), else_=0)).label("errors"),
        func.sum(T.c.prompt_tokens).label("prompt_tokens"),
        func.sum(T.c.completion_tokens).label("completion_tokens"),
        func.sum(T.c.total_tokens).label("total_tokens"),
        func.sum(T.c.cost).label("cost"),
    ).where(*where).group_by(bucket, group).order_by(bucket, group)
    latencies = select(bucket, group, T.c.latency_ms).where(*where)
    async with engine.connect() as conn:
        groups = [dict(r._mapping) for r in await conn.execute(sums)]
        samples: dict[tuple[Any, Any], list[float]] = {}
        everything: list[float] = []
        async for row in await conn.stream(latencies):
            samples.setdefault((row.bucket, _key(row.grp)), []).append(row.latency_ms)
            everything.append(row.latency_ms)
    data = [_bucket_entry(g, samples.get((g["bucket"], _key(g["grp"])), [])) for g in groups]
    return {
        "from": iso(q.filter.start_ms), "to": iso(q.filter.end_ms),  # type: ignore[arg-type]  # parse_analytics sets both "interval": q.interval,
        "interval_ms": q.interval_ms, "group_by": q.group_by, "data": data, "totals": _totals(data, everything),
    }


def _key(value: Any) -> Any:
    return None if value is None else str(value)


def _bucket_entry(g: dict[str, Any], latencies: list[float]) -> dict[str, Any]:
    requests, errors = int(g["requests"]), int(g["errors"] or 0)
    return {
        "bucket": iso(int(g["bucket"])), "bucket_ms": int(g["bucket"]), "group": _key(g["grp"]),
        "requests": requests, "errors": errors, "error_rate": errors / requests if requests else 0.0,
        "latency_ms": percentiles(latencies),
        "prompt_tokens": int(g["prompt_tokens"] or 0), "completion_tokens": int(g["completion_tokens"] or 0),
        "total_tokens": int(g["total_tokens"] or 0), "cost": float(g["cost"] or 0.0),
    }


def _totals(data: list[dict[str, Any]], latencies: list[float]) -> dict[str, Any]:
    requests = sum(d["requests"] for d in data)
    errors = sum(d["errors"] for d in data)
    totals: dict[str, Any] = {"requests": requests, "errors": errors,
                              "error_rate": errors / requests if requests else 0.0,
                              "latency_ms": percentiles(latencies)}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        totals[name] = sum(d[name] for d in data)
    totals["cost"] = sum(d["cost"] for d in data)
    return totals


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 (a value that occurred, never an interpolation)."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p95": None, "p99": None}
    n = len(ordered)
    return {f"p{p}": ordered[max(0, -(-p * n // 100) - 1)] for p in (50, 95, 99)}
