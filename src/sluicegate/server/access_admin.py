"""Workspaces, API keys and the audit trail over HTTP, in Portkey's Admin API shapes, served twice on the
same data: under ``/v1`` as the portkey-ai SDK calls them (``portkey.admin.workspaces``,
``portkey.api_keys``) and under ``/admin/api``.

  POST/GET          {v1}/admin/workspaces            {admin}/workspaces
  GET/PUT/DELETE    {v1}/admin/workspaces/{ref}      {admin}/workspaces/{ref}   (PATCH too)
  POST              {v1}/api-keys/{type}/{sub_type}  {admin}/api-keys/{type}/{sub_type}
  GET               {v1}/api-keys                    {admin}/api-keys
  GET/PUT/DELETE    {v1}/api-keys/{id}               {admin}/api-keys/{id}       (DELETE revokes)
  GET               {v1}/audit-logs                  {admin}/audit-logs

Callers: the admin token (an organisation admin), or an API key with the matching scope; a workspace key
acts within its own workspace only and cannot grant a scope it does not hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from .. import numerals
from ..access.admin_token import AdminAuth
from ..access.audit import MAX_PAGE, AuditFilter, count_events, list_events
from ..access.keys import KeyRepository, parse_expiry
from ..access.model import DEFAULT_SCOPES, Permissions, Principal, validate_scopes
from ..access.policy import Forbidden, require_scope
from ..access.registry import AccessRegistry
from ..access.workspaces import Missing, WorkspaceRepository, resolve_workspace_id
from ..errors import BadRequest, Conflict
from ..jsontext import stored_json_object
from . import limits_admin
from .bodies import read_at_most
from .principals import PRINCIPAL, authenticate, check_workspace
from .queries import CAMEL_PAGING, SNAKE_PAGING, checked_query

MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class AccessAdmin:
    engine: AsyncEngine
    workspaces: WorkspaceRepository
    keys: KeyRepository
    auth: AdminAuth
    access: AccessRegistry
    on_write: Callable[[], Awaitable[Any]]  # the access snapshot's refresh: this process sees it at once


ACCESS_ADMIN = web.AppKey("sluicegate_access_admin", AccessAdmin)


def add_access_routes(router: web.UrlDispatcher, *, workspaces: str, keys: str, audit: str,
                      patch: bool = False) -> None:
    router.add_post(workspaces, create_workspace)
    router.add_get(workspaces, list_workspaces)
    router.add_get(f"{workspaces}/{{ref}}", get_workspace)
    router.add_put(f"{workspaces}/{{ref}}", update_workspace)
    router.add_delete(f"{workspaces}/{{ref}}", delete_workspace)
    router.add_post(f"{keys}/{{type}}/{{sub_type}}", create_key)
    router.add_get(keys, list_keys)
    router.add_get(f"{keys}/{{id}}", get_key)
    router.add_put(f"{keys}/{{id}}", update_key)
    router.add_delete(f"{keys}/{{id}}", delete_key)
    router.add_get(audit, list_audit)
    if patch:
        router.add_patch(f"{workspaces}/{{ref}}", update_workspace)
        router.add_patch(f"{keys}/{{id}}", update_key)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _admin(request: web.Request) -> AccessAdmin:
    return request.config_dict[ACCESS_ADMIN]


async def principal(request: web.Request) -> Principal:
    """The admin sub-app's middleware has authenticated already; under /v1 the handler does it."""
    found = request.get(PRINCIPAL)
    if found is None:
        admin = _admin(request)
        found = request[PRINCIPAL] = await authenticate(request, admin.auth, admin.access)
    return found


async def body_of(request: web.Request) -> dict[str, Any]:
    raw = await read_at_most(request, MAX_BODY)
    if not raw.strip():
        return {}
    body = stored_json_object(raw, invalid="body: not valid JSON", not_object="body: expected a JSON object")
    return {k: v for k, v in body.items() if v is not None}  # the SDK sends unset fields as null


def listing(data: list[dict[str, Any]], total: int | None = None) -> web.Response:
    """``total``: how many there are on every page, when ``data`` is one page of them."""
    return _json({"object": "list", "total": len(data) if total is None else total, "data": data})


async def _written(request: web.Request) -> None:
    await _admin(request).on_write()


# ------------------------------------------------------------------------------------------- workspaces


async def _scoped(request: web.Request, scope: str) -> Principal:
    caller = await principal(request)
    require_scope(caller, scope)
    return caller


async def create_workspace(request: web.Request) -> web.Response:
    caller = await _scoped(request, "workspaces.create")
    if caller.workspace_id is not None:
        raise Forbidden("A workspace API key cannot create workspaces")
    body = await body_of(request)
    limits = limits_admin.split(request, "workspace", body)
    view = await _admin(request).workspaces.create(body, actor=caller.actor)
    await limits_admin.save(request, "workspace", view["id"], limits)
    await _written(request)
    return _json(await limits_admin.shown(request, "workspace", view))


async def list_workspaces(request: web.Request) -> web.Response:
    """``name``: a part of the name; ``exact_name``: the whole name; paged as the portkey-ai SDKs ask: in
    camelCase from Python (``currentPage``, ``pageSize``), in snake_case from Node."""
    caller = await _scoped(request, "workspaces.list")
    query = checked_query(request, ("name", "exact_name", *CAMEL_PAGING.names, *SNAKE_PAGING.names))
    paging = CAMEL_PAGING if any(name in query for name in CAMEL_PAGING.names) else SNAKE_PAGING
    views = await _admin(request).workspaces.list(name=query.get("name") or query.get("exact_name"))
    exact = query.get("exact_name")
    seen = [v for v in views if caller.sees_workspace(v["id"]) and (exact is None or v["name"] == exact)]
    return _json(paging.listing(query, seen))


async def _own_workspace(request: web.Request, scope: str) -> tuple[Principal, dict[str, Any]]:
    caller = await _scoped(request, scope)
    view = await _admin(request).workspaces.get(request.match_info["ref"])
    check_workspace(caller, view["id"], f"Workspace {request.match_info['ref'][:80]}")
    return caller, view


async def get_workspace(request: web.Request) -> web.Response:
    view = (await _own_workspace(request, "workspaces.read"))[1]
    return _json(await limits_admin.shown(request, "workspace", view))


async def update_workspace(request: web.Request) -> web.Response:
    caller, view = await _own_workspace(request, "workspaces.update")
    body = await body_of(request)
    if "permissions" in body and caller.workspace_id is not None:
        raise Forbidden("A workspace API key cannot change its workspace's permissions")
    limits = limits_admin.split(request, "workspace", body)
    if limits:
        limits_admin.check_may_change(caller, "workspace", view["id"])
    updated = await _admin(request).workspaces.update(view["id"], body, actor=caller.actor) if body else view
    await limits_admin.save(request, "workspace", view["id"], limits)
    await _written(request)
    return _json(await limits_admin.shown(request, "workspace", updated))


async def delete_workspace(request: web.Request) -> web.Response:
    caller, view = await _own_workspace(request, "workspaces.delete")
    await _admin(request).workspaces.remove(view["id"], actor=caller.actor)
    await _written(request)
    return _json({})


# --------------------------------------------------------------------------------------------- API keys


def key_scope(key_type: str, sub_type: str, action: str) -> str:
    return f"{key_type}_{sub_type}_api_keys.{action}"


def lists_key(caller: Principal, key: dict[str, Any]) -> bool:
    """A key the caller may list: its workspace's (or any, organisation-wide) and of a type it may list (a
    caller with one '*_api_keys.list' scope saw every type)."""
    return caller.sees_workspace(key["workspace_id"]) and caller.has_scope(
        key_scope(key["key_type"], key["sub_type"], "list"))


async def own_workspace_named(request: web.Request, caller: Principal, asked: Any) -> None:
    """For a workspace key, ``asked`` must name its own workspace (by id or slug): any other, existing or not,
    is the same 403, so that the answer says nothing of other workspaces (a 404 told which do not exist)."""
    if asked is None or caller.workspace_id is None or asked == caller.workspace_id:
        return
    if asked != (await _admin(request).workspaces.get(caller.workspace_id))["slug"]:
        raise Forbidden("This API key may only act on its own workspace")


async def narrowed_workspace(engine: AsyncEngine, caller: Principal, asked: str | None) -> str | None:
    """The workspace a listing is narrowed to: the caller's own, or the one ``asked`` names (id or slug; 404
    when none has it), or None for every workspace the caller sees."""
    return caller.workspace_id or (await resolve_workspace_id(engine, asked) if asked else None)


def _may_list_keys(caller: Principal) -> bool:
    return any(caller.has_scope(key_scope(t, s, "list")) for t in ("organisation", "workspace")
               for s in ("service", "user"))


async def create_key(request: web.Request) -> web.Response:
    key_type, sub_type = request.match_info["type"], request.match_info["sub_type"]
    caller = await principal(request)  # first: a stranger's body is not read (nor judged, 400 or 413)
    if key_type not in ("organisation", "workspace") or sub_type not in ("service", "user"):
        raise BadRequest("the path is /api-keys/{organisation|workspace}/{service|user}")
    require_scope(caller, key_scope(key_type, sub_type, "create"))
    body = {**(await body_of(request)), "type": key_type, "sub_type": sub_type}
    body.pop("sub-type", None)
    if caller.workspace_id is not None:
        if key_type == "organisation":
            raise Forbidden("A workspace API key cannot create organisation keys")
        await own_workspace_named(request, caller, body.get("workspace_id"))
        body["workspace_id"] = caller.workspace_id
    scopes = body.get("scopes")
    _no_escalation(caller, list(DEFAULT_SCOPES) if scopes is None else scopes)  # the default is granted too
    await _no_wider_key(request, caller, body, creating=True)
    limits = limits_admin.split(request, "key", body)
    await limits_admin.check_within_callers(request, caller, "key", None, limits)
    view, secret = await _admin(request).keys.create(body, actor=caller.actor)
    await limits_admin.save(request, "key", view["id"], limits)
    await _written(request)
    return _json({"id": view["id"], "key": secret, "object": "api-key"})


def _no_escalation(caller: Principal, scopes: Any) -> None:
    if not isinstance(scopes, list):
        return
    beyond = [s for s in validate_scopes(scopes) if not caller.has_scope(s)]
    if beyond:
        raise Forbidden(f"This API key cannot grant scopes it does not hold: {', '.join(beyond)}")


async def _no_wider_key(request: web.Request, caller: Principal, body: dict[str, Any], *, creating: bool) -> None:
    """A key gives no key, itself included, permissions wider than its own or a life longer than its own
    (scopes: ``_no_escalation``). Else a key restricted to one provider, or expiring, could make or turn
    itself into one that is not. The admin token has every right."""
    if caller.key_id is None:
        return
    if (creating or "permissions" in body) and \
            not Permissions.from_json(body.get("permissions")).within(caller.permissions):
        raise Forbidden("This API key cannot grant permissions wider than its own")
    if creating or "expires_at" in body:
        own = (await _admin(request).keys.get(caller.key_id))["expires_at"]
        asked = parse_expiry(body.get("expires_at"), update=not creating)
        if own is not None and (asked is None or asked > datetime.fromisoformat(own)):
            raise Forbidden(f"A key this API key makes or changes must expire no later than this key ({own})")


async def list_keys(request: web.Request) -> web.Response:
    caller = await principal(request)
    if not _may_list_keys(caller):
        raise Forbidden("This API key does not have an '*_api_keys.list' scope")
    query = checked_query(request, ("workspace_id", *SNAKE_PAGING.names))
    asked = query.get("workspace_id")
    admin = _admin(request)
    await own_workspace_named(request, caller, asked)
    keys = [key for key in await admin.keys.list(workspace_id=await narrowed_workspace(admin.engine, caller, asked))
            if lists_key(caller, key)]
    return _json(SNAKE_PAGING.listing(query, keys))


async def _own_key(request: web.Request, action: str) -> tuple[Principal, dict[str, Any]]:
    caller = await principal(request)
    view = await _admin(request).keys.get(request.match_info["id"])
    check_workspace(caller, view["workspace_id"], f"API key {request.match_info['id'][:80]}")
    require_scope(caller, key_scope(view["key_type"], view["sub_type"], action))
    return caller, view


async def get_key(request: web.Request) -> web.Response:
    return _json(await limits_admin.shown(request, "key", (await _own_key(request, "read"))[1]))


async def update_key(request: web.Request) -> web.Response:
    caller, view = await _own_key(request, "update")
    body = await body_of(request)
    body.pop("id", None)
    asked = body.pop("workspace_id", None)  # it was ignored without a word
    if asked is not None and not isinstance(asked, str):  # true, 0, [] reached the lookup: a 500
        raise BadRequest("workspace_id: expected a string (a workspace id or slug)")
    await own_workspace_named(request, caller, asked)
    if asked is not None and await resolve_workspace_id(_admin(request).engine, asked) != view["workspace_id"]:
        raise BadRequest("workspace_id: a key stays in the workspace it was made in (make a new key there)")
    if body.get("status") == "active" and view["status"] != "active":
        await _reactivatable(request, caller, view, body)
    _no_escalation(caller, body.get("scopes"))
    await _no_wider_key(request, caller, body, creating=False)
    limits = limits_admin.split(request, "key", body)
    if limits:
        limits_admin.check_may_change(caller, "key", view["id"])
        await limits_admin.check_within_callers(request, caller, "key", view["id"], limits)
    updated = await _admin(request).keys.update(view["id"], body, actor=caller.actor) if body else view
    await limits_admin.save(request, "key", view["id"], limits)
    await _written(request)
    return _json(await limits_admin.shown(request, "key", updated))


async def _reactivatable(request: web.Request, caller: Principal, view: dict[str, Any], body: dict[str, Any]) -> None:
    """A revoked key made active again is a key given anew: by a caller who could make it as it will be (its
    scopes, permissions and expiry, as changed by ``body``), in a workspace that still exists. A key with
    only '*_api_keys.update' handed a revoked key's wider scopes back; a deleted workspace's key came back
    with none of its workspace's permissions and limits."""
    _no_escalation(caller, body.get("scopes", view["scopes"]))
    effective = {"permissions": body.get("permissions", view["permissions"]),
                 "expires_at": body.get("expires_at", view["expires_at"])}
    await _no_wider_key(request, caller, effective, creating=True)
    if view["workspace_id"] is not None:
        try:
            await _admin(request).workspaces.get(view["workspace_id"])
        except Missing:
            raise Conflict(f"API key {view['id']} belonged to workspace {view['workspace_id']}, which was deleted: "
                           "it cannot be made active again (make a new key in another workspace)") from None


async def delete_key(request: web.Request) -> web.Response:
    caller, view = await _own_key(request, "delete")
    await _admin(request).keys.delete(view["id"], actor=caller.actor)
    await _written(request)
    return _json({})


# ------------------------------------------------------------------------------------------------ audit


_AUDIT_PARAMETERS = ("limit", "before_id", "workspace_id", "actor", "action", "resource_type")


async def list_audit(request: web.Request) -> web.Response:
    """Newest first, ``limit`` a page; ``before_id`` (the last event's id) reaches the page after it."""
    caller = await _scoped(request, "audit_logs.list")
    # A misspelt filter was ignored, and the unfiltered trail came back.
    query = checked_query(request, _AUDIT_PARAMETERS, what="the audit trail")
    limit = audit_limit(query.get("limit", "100"))
    # A workspace key naming another workspace was answered with its own workspace's events, as if the other's.
    await own_workspace_named(request, caller, query.get("workspace_id"))
    # An id or a slug, as everywhere: a slug matched no event.
    workspace = await narrowed_workspace(_admin(request).engine, caller, query.get("workspace_id"))
    wanted = AuditFilter(workspace_id=workspace, actor=query.get("actor"), action=query.get("action"),
                         resource_type=query.get("resource_type"), limit=limit,
                         before_id=_before_id(query.get("before_id")))
    engine = _admin(request).engine
    # ``total`` counts the matching events on every page, as the request logs' does, not this page's length.
    return listing(await list_events(engine, wanted), await count_events(engine, wanted))


def _before_id(text: str | None) -> int | None:
    if text is None:
        return None
    value = numerals.integer(text)
    if value is None or not 0 < value < 2**63:  # 0 was taken, and is no event's id
        raise BadRequest("'before_id' must be an event's id (a positive integer)")
    return value


def audit_limit(text: str) -> int:
    """How many events a page holds: out of range is a 400, as on /admin/api/logs, not silently clamped."""
    limit = numerals.integer(text)  # not "٥", which int() reads
    if limit is None or not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"'limit' must be an integer from 1 to {MAX_PAGE}")
    return limit
