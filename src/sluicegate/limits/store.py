"""Limits in the database: settings per subject (limit_settings) and in-memory budget usage (limit_usage).

Reads happen at start and when the limits version changes (registry.py), never per request. A subject's
rows are deleted with the subject (store/limit_tables.delete_subject_limits); ``all``, which every listing
reads, leaves out a row whose subject is gone all the same (a ``set`` racing the subject's deletion).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..store.access_tables import api_keys, workspaces
from ..store.limit_tables import LIMITS_STATE_ID, limit_settings, limit_usage
from ..store.state import bump_version, read_version
from ..store.tables import providers, utcnow
from .model import LimitError, parse_rate_limits, parse_usage_limits
from .prices import parse_prices

KINDS = ("key", "workspace", "provider")
# The column each kind's subject id is stored under (a revoked key keeps its row, so it keeps its limits).
SUBJECT_IDS = {"key": api_keys.c.id, "workspace": workspaces.c.id, "provider": providers.c.slug}
_SUBJECT_EXISTS = or_(*(and_(limit_settings.c.subject_kind == kind,
                             exists().where(column == limit_settings.c.subject_id))
                        for kind, column in SUBJECT_IDS.items()))


def settings_json(row: Any) -> dict[str, Any]:
    body = {"rate_limits": row.rate_limits or [], "usage_limits": row.usage_limits}
    if row.subject_kind == "provider":
        body["prices"] = row.prices or {}
    return body


# The fields of each object a limits body holds. Any other is refused by name: a typo ("rate_limit",
# "alert_treshold") was ignored, and left the subject without the limit its writer meant to set.
_FIELDS = {
    "": ("rate_limits", "usage_limits", "prices"),
    "rate_limits": ("type", "unit", "value"),
    "usage_limits": ("type", "credit_limit", "periodic_reset", "alert_threshold"),
    "prices": ("input", "output", "per"),
}


def _refuse_unknown(body: dict[str, Any]) -> None:
    _known(body, "", "the body")
    rates = body.get("rate_limits")
    for i, item in enumerate(rates if isinstance(rates, list) else [rates] if isinstance(rates, dict) else []):
        _known(item, "rate_limits", f"rate_limits[{i}]" if isinstance(rates, list) else "rate_limits")
    _known(body.get("usage_limits"), "usage_limits", "usage_limits")
    prices = body.get("prices")
    for model, price in prices.items() if isinstance(prices, dict) else ():
        _known(price, "prices", f"prices.{model}")


def _known(value: Any, kind: str, where: str) -> None:
    if not isinstance(value, dict):
        return  # the parsers say what the value should be
    allowed = _FIELDS[kind]
    for name in value:
        if name not in allowed:
            raise LimitError(f"'{where}' has an unknown field {str(name)[:64]!r} (fields: {', '.join(allowed)})")


def validated(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The columns to write for a body carrying any of rate_limits / usage_limits / prices."""
    if kind not in KINDS:
        raise LimitError(f"limits belong to one of {', '.join(KINDS)}")
    _refuse_unknown(body)
    values: dict[str, Any] = {}
    if "rate_limits" in body:
        values["rate_limits"] = [r.shape() for r in parse_rate_limits(body["rate_limits"])] or None
    if "usage_limits" in body:
        usage = parse_usage_limits(body["usage_limits"])
        if usage is not None and usage.alert_threshold is not None and usage.alert_threshold > usage.credit_limit:
            raise LimitError("'usage_limits.alert_threshold' must be at most its credit_limit (an alert past the "
                             "limit would never fire)")
        values["usage_limits"] = usage.shape() if usage else None
    if "prices" in body:
        if kind != "provider":
            raise LimitError("'prices' belong to catalog providers")
        parse_prices(body["prices"])
        values["prices"] = body["prices"] or None
    return values


async def bump_limits_version(conn: AsyncConnection) -> None:
    await bump_version(conn, LIMITS_STATE_ID)


async def read_limits_version(conn: AsyncConnection) -> int:
    return await read_version(conn, LIMITS_STATE_ID)


class LimitRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, kind: str, subject_id: str) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(limit_settings).where(
                limit_settings.c.subject_kind == kind, limit_settings.c.subject_id == subject_id))).first()
        if row is None:
            return {"rate_limits": [], "usage_limits": None, **({"prices": {}} if kind == "provider" else {})}
        return settings_json(row)

    async def set(self, kind: str, subject_id: str, body: dict[str, Any]) -> dict[str, Any]:
        values = validated(kind, body)
        where = (limit_settings.c.subject_kind == kind, limit_settings.c.subject_id == subject_id)
        async with self._engine.begin() as conn:
            exists = (await conn.execute(select(limit_settings.c.subject_id).where(*where))).first()
            if exists:
                await conn.execute(update(limit_settings).where(*where).values(**values, updated_at=utcnow()))
            else:
                await conn.execute(insert(limit_settings).values(subject_kind=kind, subject_id=subject_id,
                                                                 updated_at=utcnow(), **values))
            await bump_limits_version(conn)
        return await self.get(kind, subject_id)

    async def delete(self, kind: str, subject_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(limit_settings).where(limit_settings.c.subject_kind == kind,
                                                            limit_settings.c.subject_id == subject_id))
            await bump_limits_version(conn)

    async def all(self) -> tuple[int, list[Any]]:
        async with self._engine.connect() as conn:
            version = await read_limits_version(conn)
            rows = list((await conn.execute(select(limit_settings).where(_SUBJECT_EXISTS))).all())
        return version, rows

    async def existing(self, subjects: AbstractSet[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        """Which of these (kind, id) subjects are still in the store."""
        found: list[tuple[str, str]] = []
        async with self._engine.connect() as conn:
            for kind, column in SUBJECT_IDS.items():
                ids = {subject_id for of, subject_id in subjects if of == kind}
                if ids:
                    found += [(kind, subject_id) for subject_id in
                              (await conn.execute(select(column).where(column.in_(ids)))).scalars()]
        return frozenset(found)

    async def load_usage(self) -> dict[str, tuple[int, float, int | None]]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(limit_usage))).all()
        return {row.counter: (int(row.period), float(row.used), row.alerted) for row in rows}

    async def save_usage(self, usage: dict[str, tuple[int, float, int | None]]) -> None:
        """Replace the saved budget usage (one transaction; a few rows per limited subject)."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(limit_usage))
            if usage:
                await conn.execute(insert(limit_usage), [
                    {"counter": key, "period": period, "used": used, "alerted": alerted}
                    for key, (period, used, alerted) in usage.items()])
