"""Usage limits through the admin APIs.

Portkey's shapes ride on the records they belong to: ``rate_limits`` / ``usage_limits`` in the
create/update body of an API key, a workspace or a catalog provider (which also takes ``prices``) and in
their views (access_admin.py and portkey_catalog.py call ``split``/``save``/``shown``). Besides, on
/admin/api: ``GET|PUT|DELETE /limits/{key|workspace|provider}/{id}`` and
``POST /limits/{kind}/{id}/reset`` (budget usage back to zero).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..access.keys import key_row
from ..access.model import Principal
from ..access.policy import Forbidden
from ..access.workspaces import resolve_workspace_id
from ..catalog.entries import NotInCatalog
from ..errors import BadRequest
from ..jsontext import stored_json_object
from ..limits.checks import Subject
from ..limits.model import NO_LIMITS, Limits, looser_part, parse_limits
from ..limits.store import KINDS, validated
from ..store.tables import providers
from .appkeys import GATEWAY
from .bodies import read_at_most
from .principals import check_workspace, require

MAX_LIMITS_BODY = 256 * 1024  # rate limits, a budget and a price table: far less in practice

FIELDS = ("rate_limits", "usage_limits")
SCOPES = {"key": "organisation_service_api_keys", "workspace": "workspaces", "provider": "providers"}


def split(request: web.Request, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Take the limit fields out of a record's body, validated and allowed on this server: a 400 before
    the record itself is written (so a refused create leaves no key or workspace behind)."""
    fields = (*FIELDS, "prices") if kind == "provider" else FIELDS
    found = {name: body.pop(name) for name in fields if name in body}
    if found:
        validated(kind, found)
        _refuse_per_worker_counting(request.config_dict[GATEWAY].settings)
    return found


async def save(request: web.Request, kind: str, subject_id: str, found: dict[str, Any]) -> None:
    """Store what ``split`` took (and checked) once the record exists."""
    if found:
        gateway = request.config_dict[GATEWAY]
        await gateway.limits.repository.set(kind, subject_id, found)
        await gateway.limits.refresh()


async def shown(request: web.Request, kind: str, view: dict[str, Any]) -> dict[str, Any]:
    limits = await request.config_dict[GATEWAY].limits.repository.get(kind, view["id"])
    return {**view, **{name: limits[name] for name in (*FIELDS, "prices") if name in limits}}


def _refuse_per_worker_counting(settings: Any) -> None:
    if settings.workers > 1 and not settings.redis_url:
        raise BadRequest("Usage limits with several workers need shared counters: set SLUICEGATE_REDIS_URL "
                         "(each worker would otherwise count on its own)")


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in KINDS:
        raise BadRequest(f"limits belong to one of {', '.join(KINDS)} (/limits/{{kind}}/{{id}})")
    return kind


async def _subject(request: web.Request, action: str) -> tuple[str, str, Principal]:
    """(kind, the id its limits are stored under, the caller) of an existing subject the caller may act on."""
    kind = _kind(request)
    caller = require(request, f"{SCOPES[kind]}.{action}")
    ref = request.match_info["id"]
    subject_id, workspace = await stored_subject(request.config_dict[GATEWAY].engine, kind, ref)
    if caller.workspace_id is not None:  # a workspace key: its own workspace's subjects only, others are 404
        check_workspace(caller, workspace, f"{kind.capitalize()} {ref[:80]}")
    if action == "update":
        check_may_change(caller, kind, subject_id)
    return kind, subject_id, caller


async def stored_subject(engine: AsyncEngine, kind: str, ref: str) -> tuple[str, str | None]:
    """(the subject's id, its workspace), read from the store, not a snapshot that may lag a write on another
    server. A limit is enforced under that id only: one stored under a slug or an unknown id would bind
    nobody, so an unknown key, workspace or provider is a 404. A workspace may be named by id or slug."""
    if kind == "workspace":
        workspace_id = await resolve_workspace_id(engine, ref)
        return workspace_id, workspace_id
    async with engine.connect() as conn:
        if kind == "key":
            return ref, (await key_row(conn, ref)).workspace_id
        found = None if "\x00" in ref else (  # no slug holds a NUL, and PostgreSQL refuses one (a 500)
            await conn.execute(select(providers.c.workspace_id).where(providers.c.slug == ref))).first()
    if found is None:
        raise NotInCatalog(f"Provider @{ref[:80]} not found in the catalog")
    return ref, found.workspace_id


async def check_within_callers(request: web.Request, caller: Principal, kind: str, subject_id: str | None,
                               found: dict[str, Any]) -> None:
    """A key with limits of its own gives no key limits looser than its own (``found``: the fields a create or
    update sets; the key's others stay as stored): else it could shed its limits by making a key without
    them, and using that one. The admin token, and a key without limits, may set any."""
    if kind != "key" or (own := await _own_limits(request, caller)).empty:
        return
    repository = request.config_dict[GATEWAY].limits.repository
    stored = await repository.get("key", subject_id) if subject_id is not None else {}
    needed = looser_part(parse_limits({**stored, **found}), own)
    if needed is not None:
        raise Forbidden(f"This API key has usage limits, so a key it makes or changes needs limits as tight: "
                        f"{needed}")


async def check_may_lift(request: web.Request, caller: Principal, kind: str) -> None:
    """Refilling a key's budget is lifting its limit: not for a key bound by limits of its own (it could make
    a key as limited as itself and refill that key's budget at will)."""
    if kind == "key" and not (await _own_limits(request, caller)).empty:
        raise Forbidden("An API key with usage limits cannot reset a key's usage")


async def _own_limits(request: web.Request, caller: Principal) -> Limits:
    """The caller key's limits, as stored (the admin token has none)."""
    if caller.key_id is None:
        return NO_LIMITS
    return parse_limits(await request.config_dict[GATEWAY].limits.repository.get("key", caller.key_id))


def check_may_change(caller: Principal, kind: str, subject_id: str) -> None:
    """Limits bind the caller, so lifting them is the admin's: a key may not change its own, nor a workspace
    key its workspace's (here and on the keys' and workspaces' own routes)."""
    if kind == "key" and subject_id == caller.key_id:
        raise Forbidden("An API key cannot change its own usage limits")
    if kind == "workspace" and caller.workspace_id is not None:
        raise Forbidden("A workspace API key cannot change its workspace's usage limits")


async def get_limits(request: web.Request) -> web.Response:
    """The subject's limits and its budget usage this period (``used``; null without a budget)."""
    kind, subject_id, _ = await _subject(request, "read")
    gateway = request.config_dict[GATEWAY]
    view = await gateway.limits.repository.get(kind, subject_id)
    limits = gateway.limits.snapshot.limits.get((kind, subject_id))
    used = await gateway.limiter.used(Subject(kind, subject_id, limits)) if limits else None
    return _json({**view, "used": used})


async def put_limits(request: web.Request) -> web.Response:
    kind = _kind(request)
    body = stored_json_object(await read_at_most(request, MAX_LIMITS_BODY) or b"{}", invalid="body: not valid JSON",
                              not_object="body: expected a JSON object {rate_limits, usage_limits, prices}")
    validated(kind, body)  # a bad body is a 400 before the 404 of an unknown subject
    _, subject_id, caller = await _subject(request, "update")
    await check_within_callers(request, caller, kind, subject_id, body)
    gateway = request.config_dict[GATEWAY]
    _refuse_per_worker_counting(gateway.settings)
    view = await gateway.limits.repository.set(kind, subject_id, body)
    await gateway.limits.refresh()
    return _json(view)


async def delete_limits(request: web.Request) -> web.Response:
    kind, subject_id, caller = await _subject(request, "update")
    await check_within_callers(request, caller, kind, subject_id, {"rate_limits": None, "usage_limits": None})
    gateway = request.config_dict[GATEWAY]
    await gateway.limits.repository.delete(kind, subject_id)
    await gateway.limits.refresh()
    return _json({})


async def reset_usage(request: web.Request) -> web.Response:
    kind, subject_id, caller = await _subject(request, "update")
    await check_may_lift(request, caller, kind)
    gateway = request.config_dict[GATEWAY]
    await gateway.limiter.reset(f"{kind}:{subject_id}:")
    return _json({"reset": True})


def add_limit_routes(admin: web.Application) -> None:
    admin.router.add_get("/limits/{kind}/{id}", get_limits)
    admin.router.add_put("/limits/{kind}/{id}", put_limits)
    admin.router.add_delete("/limits/{kind}/{id}", delete_limits)
    admin.router.add_post("/limits/{kind}/{id}/reset", reset_usage)
