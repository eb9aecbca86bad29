"""The dashboard's JSON API under ``/dashboard/api``: the admin API's and the log API's handlers behind a
session instead of a bearer token, plus signing in and out, config validation and "test connection".

Each route names the access-control scopes that let a principal call it (any one of them); the handlers
are the admin API's, so a workspace key sees and changes its own workspace's records only.

  POST/GET/DELETE   /session                      sign in (admin token or API key) / who am I + CSRF / out
  GET               /logs, /logs/{id}, /analytics the log API (telemetry/query.py)
  GET/POST          /providers                    the Model Catalog (server/admin.py's handlers)
  GET/PATCH/DELETE  /providers/{slug}
  POST              /providers/{slug}/test        one tiny request through the SSRF guard (probe.py)
  GET/POST          /configs                      saved configs
  GET/PUT/DELETE    /configs/{id}
  POST              /configs/validate             {"config": text} → the errors, each with its JSON path
  GET               /api-keys                     the keys, with their limits and budget usage (keys.py)
  POST              /api-keys/{type}/{sub_type}   create (the secret in this answer only)
  GET/PATCH/DELETE  /api-keys/{id}                one key; scopes, limits, name; revoke
  GET               /workspaces                   the workspaces the principal sees
  GET               /targets                      least-busy targets: in flight, queue, health (targets.py)
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ..access.model import KEY_TYPES, SCOPE_ACTIONS, SUB_TYPES
from ..access.principal import Verifier
from ..catalog.entries import NotInCatalog, validate_slug
from ..errors import BadRequest, Unauthorized
from ..jsontext import stored_json_object
from ..providers import registry
from ..server import access_admin, admin, observability
from ..server.appkeys import GATEWAY
from ..server.bodies import read_at_most
from ..server.principals import PRINCIPAL, check_workspace
from . import keys
from .guard import COOKIE, CURRENT, SESSION, current_principal, secure_request, session_of
from .probe import test_connection
from .targets import list_targets
from .validation import config_problems

VERIFIER: web.AppKey[Verifier] = web.AppKey("sluicegate_dashboard_verifier")
MAX_SIGN_IN_BODY = 8 * 1024
SIGN_IN = ("POST", "/dashboard/api/session")

def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def _small_json(request: web.Request, limit: int) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise BadRequest("body: send Content-Type: application/json")
    raw = await read_at_most(request, limit)
    return stored_json_object(raw, invalid="body: not valid JSON", not_object="body: expected a JSON object")


def _session_json(request: web.Request) -> dict[str, Any]:
    session = session_of(request)
    p = current_principal(request)
    return {"principal": {"name": session.name, "scopes": sorted(p.scopes), "workspace": p.workspace_id,
                          "workspace_slug": session.workspace_slug, "key_id": p.key_id},
            "csrf_token": session.csrf_token, "expires_at": int(session.expires_at),
            # The Add Provider form's choices: API specs, and the hosted providers with their public URL.
            "specs": list(registry.SPEC_NAMES),
            "scope_actions": {resource: list(actions) for resource, actions in SCOPE_ACTIONS.items()},
            "hosted": [{"id": i.id, "spec": i.spec.name, "base_url": i.default_base_url}
                       for i in registry.PROVIDERS.values() if i.default_base_url]}


async def sign_in(request: web.Request) -> web.Response:
    body = await _small_json(request, MAX_SIGN_IN_BODY)
    credential = body.get("token")
    if not isinstance(credential, str) or not credential.strip():
        raise BadRequest("token: required, the admin token or an API key")
    signed_in = await request.app[VERIFIER](credential.strip())
    if signed_in is None:
        raise Unauthorized("Sign-in refused: that token is not valid here")
    sessions = request.app[SESSION]
    session_id, session = await sessions.open(signed_in)
    request[CURRENT] = session
    request[PRINCIPAL] = signed_in.principal
    response = _json(_session_json(request))
    response.set_cookie(COOKIE, session_id, path="/dashboard", httponly=True, samesite="Strict",
                        secure=secure_request(request), max_age=int(sessions.ttl_s))
    return response


async def who_am_i(request: web.Request) -> web.Response:
    return _json(_session_json(request))


async def sign_out(request: web.Request) -> web.Response:
    await request.app[SESSION].close(request.cookies.get(COOKIE))
    response = _json({"status": "success", "message": "Signed out"})
    response.del_cookie(COOKIE, path="/dashboard")
    return response


async def validate_config(request: web.Request) -> web.Response:
    body = await _small_json(request, admin.MAX_ADMIN_BODY)
    text = body.get("config")
    if not isinstance(text, str):
        raise BadRequest("config: required, the config's JSON text")
    gateway = request.config_dict[GATEWAY]
    caller = current_principal(request)
    # Another workspace's provider is as if absent: saying it is fine would reveal that it exists.
    slugs = {slug for slug in gateway.catalog.slugs()
             if caller.sees_workspace(gateway.catalog.provider_workspace(slug)[1])}
    return _json({"errors": config_problems(text, gateway.guard.check_url, slugs)})


async def test_provider(request: web.Request) -> web.Response:
    gateway = request.config_dict[GATEWAY]
    slug = validate_slug(request.match_info["slug"])
    provider = gateway.catalog.resolve(slug)
    if provider is None:  # written by another process a moment ago? read the store once more
        await gateway.catalog.refresh()
        provider = gateway.catalog.resolve(slug)
    if provider is None:
        raise NotInCatalog(f"Provider @{slug} not found")
    check_workspace(current_principal(request), provider.workspace_id, f"Provider @{slug}")
    return _json(await test_connection(provider, gateway.guard, gateway.transport))


def _key_scopes(action: str) -> tuple[str, ...]:
    """Any key scope with this action lets the call through; the handler then asks for the one that the
    key's type (organisation | workspace, service | user) needs."""
    return tuple(access_admin.key_scope(t, s, action) for t in KEY_TYPES for s in SUB_TYPES)


# (method, path under /api, handler, the access-control scopes that allow it: any one of them)
ROUTES: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("GET", "/session", who_am_i, ()),
    ("DELETE", "/session", sign_out, ()),
    ("GET", "/logs", observability.list_logs, ("logs.list",)),
    ("GET", "/logs/{log_id}", observability.get_log, ("logs.view",)),
    ("GET", "/analytics", observability.analytics, ("analytics.view",)),
    ("GET", "/providers", admin.list_providers, ("providers.list",)),
    ("POST", "/providers", admin.create_provider, ("providers.create",)),
    ("GET", "/providers/{slug}", admin.get_provider, ("providers.read",)),
    ("PATCH", "/providers/{slug}", admin.update_provider, ("providers.update",)),
    ("DELETE", "/providers/{slug}", admin.delete_provider, ("providers.delete",)),
    ("POST", "/providers/{slug}/test", test_provider, ("providers.update",)),
    ("GET", "/configs", admin.list_configs, ("configs.list",)),
    ("POST", "/configs", admin.create_config, ("configs.create",)),
    ("POST", "/configs/validate", validate_config, ("configs.read",)),
    ("GET", "/configs/{id}", admin.get_config, ("configs.read",)),
    ("PUT", "/configs/{id}", admin.replace_config, ("configs.update",)),
    ("DELETE", "/configs/{id}", admin.delete_config, ("configs.delete",)),
    ("GET", "/api-keys", keys.list_keys, _key_scopes("list")),
    ("POST", "/api-keys/{type}/{sub_type}", access_admin.create_key, _key_scopes("create")),
    ("GET", "/api-keys/{id}", access_admin.get_key, _key_scopes("read")),
    ("PATCH", "/api-keys/{id}", access_admin.update_key, _key_scopes("update")),
    ("DELETE", "/api-keys/{id}", access_admin.delete_key, _key_scopes("delete")),
    ("GET", "/workspaces", access_admin.list_workspaces, ("workspaces.list",)),
    ("GET", "/targets", list_targets, ("analytics.view",)),
]
