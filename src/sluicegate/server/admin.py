"""The admin JSON API, a sub-application mounted at ``/admin/api``, apart from ``/v1``.

  GET/POST              /admin/api/providers
  GET/PATCH/DELETE      /admin/api/providers/{slug}
  GET/POST              /admin/api/configs
  GET/PUT/DELETE        /admin/api/configs/{id}

Every request needs ``Authorization: Bearer <admin token>``, or a gateway API key with the route's scope
(``providers.list`` …); a workspace key sees and changes its own workspace's records only. Every answer is
JSON; refusals use the gateway envelope ``{"status": "failure", "message": ...}`` with 400/401/404/409 (413
for huge bodies) and never a traceback. Header values only ever leave as their masked form.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..access.admin_token import AdminAuth
from ..access.model import Principal
from ..access.policy import Forbidden
from ..access.registry import AccessRegistry
from ..access.workspaces import resolve_workspace_id
from ..catalog.configs import ConfigRepository
from ..catalog.entries import ProviderView, SavedConfigView, validate_slug
from ..catalog.jsonio import config_from_json, parse_body, patch_from_json, provider_from_json
from ..catalog.providers import ProviderRepository
from ..errors import BadRequest
from ..store.engine import store_outage
from ..vault import VaultError
from .audit_trail import audited
from .bodies import read_at_most
from .middleware import Handler, error_for
from .principals import PRINCIPAL, authenticate, check_workspace, principal_of, require, workspace_for_write
from .queries import checked_query

ADMIN_PREFIX = "/admin/api"
MAX_ADMIN_BODY = 1024 * 1024

@dataclass(frozen=True)
class AdminServices:
    providers: ProviderRepository
    configs: ConfigRepository
    auth: AdminAuth
    engine: AsyncEngine  # the store, where a record's workspace (named by id or slug) is looked up
    # Called after every successful write, e.g. ``catalog.refresh``: this process serves the change at
    # once instead of on its next poll.
    on_write: Callable[[], Awaitable[Any]] | None = None
    access: AccessRegistry | None = None  # API keys may call the admin API too (within their scopes)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("sluicegate.admin"))


SERVICES = web.AppKey("sluicegate_admin_services", AdminServices)


def admin_app(services: AdminServices) -> web.Application:
    """Build the sub-app; mount it with ``app.add_subapp(ADMIN_PREFIX, admin_app(services))``."""
    app = web.Application(middlewares=[_errors_middleware(services.logger),
                                       _auth_middleware(services.auth, services.access)])
    app[SERVICES] = services
    app.router.add_routes(
        [
            web.get("/providers", list_providers),
            web.post("/providers", create_provider),
            web.get("/providers/{slug}", get_provider),
            web.patch("/providers/{slug}", update_provider),
            web.delete("/providers/{slug}", delete_provider),
            web.get("/configs", list_configs),
            web.post("/configs", create_config),
            web.get("/configs/{id}", get_config),
            web.put("/configs/{id}", replace_config),
            web.delete("/configs/{id}", delete_config),
        ]
    )
    return app


# ------------------------------------------------------------------------------------------ middlewares


def _errors_middleware(log: logging.Logger) -> Any:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:  # unknown route, wrong method: aiohttp's own words here
            if exc.status < 400:
                raise
            return _json({"status": "failure", "message": exc.reason}, exc.status)
        except VaultError as exc:
            # An operator problem (the key file), never a secret in the message: like an outage, 503 until fixed.
            log.error("admin %s %s: %s", request.method, request.path, exc)
            return _json({"status": "failure", "message": f"vault: {exc}"}, 503)
        except Exception as exc:
            outage = store_outage(exc)
            if outage is not None:  # not a bug: the store is down or full; say so, without a traceback
                log.error("admin %s %s: %s", request.method, request.path, outage)
                return _json({"status": "failure", "message": f"{outage}; see the gateway's log"}, 503)
            # The gateway's errors, and the 500 every surface gives (middleware.py).
            error = error_for(exc, request, log)
            body = error.body() if "status" in error.body() else {"status": "failure", "message": error.message}
            return _json(body, error.status, _auth_challenge(error.status))

    return errors


def json_errors_middleware(log: logging.Logger) -> Any:
    """The admin API's refusals (the envelope, 503 for a store outage, no traceback), for another surface
    built on its handlers (the dashboard)."""
    return _errors_middleware(log)


def _auth_middleware(auth: AdminAuth, access: AccessRegistry | None) -> Any:
    @web.middleware
    async def authenticated(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[PRINCIPAL] = await authenticate(request, auth, access)
        return await handler(request)

    return authenticated


def _auth_challenge(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": 'Bearer realm="sluicegate-admin"'} if status == 401 else None


# ---------------------------------------------------------------------------------------------- helpers


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


async def _body(request: web.Request) -> dict[str, Any]:
    return parse_body(await read_at_most(request, MAX_ADMIN_BODY))


def _services(request: web.Request) -> AdminServices:
    return request.app[SERVICES]


async def _written(request: web.Request) -> None:
    services = _services(request)
    if services.on_write is None:
        return
    try:
        await services.on_write()
    except Exception as exc:  # the write is committed; the poll will pick it up anyway
        services.logger.warning("catalog refresh after admin write failed: %s", type(exc).__name__)


def _slug(request: web.Request) -> str:
    return validate_slug(request.match_info["slug"])


def _config_id(request: web.Request) -> str:
    return validate_slug(request.match_info["id"], "id")


async def _workspace_named(request: web.Request, asked: Any) -> str | None:
    """The id of the workspace a body's ``workspace_id`` names, by id or slug as /v1 takes it (404 when there
    is none): stored as typed, a slug or a stray id made a record that no workspace's key could use."""
    if asked is None:
        return None
    if not isinstance(asked, str) or not asked:
        raise BadRequest("workspace_id: expected a workspace id or slug")
    return await resolve_workspace_id(_services(request).engine, asked)


async def _listed_workspace(request: web.Request, principal: Principal) -> str | None:
    """The workspace a listing is narrowed to: the caller's own, or the ``?workspace_id=`` an organisation
    caller names (404 when none has it): it was ignored, and every workspace's entries came back."""
    query = checked_query(request, ("workspace_id",))  # a misspelt "?workspace=" gave every workspace's entries
    return principal.workspace_id or await _workspace_named(request, query.get("workspace_id"))


# --------------------------------------------------------------------------------------------- providers


async def list_providers(request: web.Request) -> web.Response:
    principal = require(request, "providers.list")
    views = await _services(request).providers.list(workspace_id=await _listed_workspace(request, principal))
    return _json({"providers": [view.to_json() for view in views]})


async def create_provider(request: web.Request) -> web.Response:
    principal = require(request, "providers.create")
    repo = _services(request).providers
    body = await _body(request)
    _refuse_workspace_allow_entry(principal, body)
    asked = body.pop("workspace_id", None)
    item = provider_from_json(body, repo.check_host)  # a bad body is a 400 before an unknown workspace's 404
    workspace = workspace_for_write(principal, await _workspace_named(request, asked))
    if workspace is not None:
        item = replace(item, workspace_id=workspace)
    view = await repo.add(item)
    await _written(request)
    await audited(request, "provider.create", "provider", view.slug, view.workspace_id, after=view.to_json())
    return _json(view.to_json(), 201)


def _refuse_workspace_allow_entry(principal: Principal, body: dict[str, Any]) -> None:
    """A provider's allow entry goes into the SSRF guard's one allow-list, for every workspace and every
    request's custom host: a workspace key setting one (``10.0.0.0/8``) opened private networks to all.
    Clearing one (null or "") only narrows, so that stays its to do."""
    if principal.workspace_id is not None and body.get("allow_entry") not in (None, ""):
        raise Forbidden("allow_entry: an allow entry widens the SSRF allow-list of every workspace; only an "
                        "organisation key or the admin token may set one")


async def _own_provider(request: web.Request, scope: str) -> ProviderView:
    principal = require(request, scope)
    view = await _services(request).providers.get(_slug(request))
    check_workspace(principal, view.workspace_id, f"Provider @{view.slug}")
    return view


async def get_provider(request: web.Request) -> web.Response:
    return _json((await _own_provider(request, "providers.read")).to_json())


async def update_provider(request: web.Request) -> web.Response:
    body = await _body(request)
    patch = patch_from_json(body)  # a bad body is a 400 before the 404 of a missing slug
    before = await _own_provider(request, "providers.update")
    _refuse_workspace_allow_entry(principal_of(request), body)
    view = await _services(request).providers.update(before.slug, patch)
    await _written(request)
    await audited(request, "provider.update", "provider", view.slug, view.workspace_id, before=before.to_json(),
                  after=view.to_json())
    return _json(view.to_json())


async def delete_provider(request: web.Request) -> web.Response:
    before = await _own_provider(request, "providers.delete")
    slug = before.slug
    await _services(request).providers.remove(slug)
    await _written(request)
    await audited(request, "provider.delete", "provider", slug, before.workspace_id, before=before.to_json())
    return _json({"status": "success", "message": f"Provider @{slug} deleted"})


# ----------------------------------------------------------------------------------------------- configs


async def list_configs(request: web.Request) -> web.Response:
    principal = require(request, "configs.list")
    views = await _services(request).configs.list(workspace_id=await _listed_workspace(request, principal))
    return _json({"configs": [view.to_json() for view in views]})


async def create_config(request: web.Request) -> web.Response:
    principal = require(request, "configs.create")
    body = await _body(request)
    asked = body.pop("workspace_id", None)
    config_id, text, notes = config_from_json(body, require_id=True)
    workspace = workspace_for_write(principal, await _workspace_named(request, asked))
    extra = {"workspace_id": workspace} if workspace is not None else {}
    view = await _services(request).configs.add(validate_slug(config_id, "id"), text, notes=notes, **extra)
    await _written(request)
    await audited(request, "config.create", "config", view.id, view.workspace_id, after=view.to_json())
    return _json(view.to_json(), 201)


async def _own_config(request: web.Request, scope: str) -> SavedConfigView:
    principal = require(request, scope)
    view = await _services(request).configs.get(_config_id(request))
    check_workspace(principal, view.workspace_id, f"Config {view.id}")
    return view


async def get_config(request: web.Request) -> web.Response:
    return _json((await _own_config(request, "configs.read")).to_json())


async def replace_config(request: web.Request) -> web.Response:
    body = await _body(request)
    _, text, notes = config_from_json(body, require_id=False)  # a 400 before the 404 of a missing id
    before = await _own_config(request, "configs.update")
    kwargs = {"notes": notes or ""} if "notes" in body else {}
    view = await _services(request).configs.replace(before.id, text, **kwargs)
    await _written(request)
    await audited(request, "config.update", "config", view.id, view.workspace_id, before=before.to_json(),
                  after=view.to_json())
    return _json(view.to_json())


async def delete_config(request: web.Request) -> web.Response:
    before = await _own_config(request, "configs.delete")
    config_id = before.id
    await _services(request).configs.remove(config_id)
    await _written(request)
    await audited(request, "config.delete", "config", config_id, before.workspace_id, before=before.to_json())
    return _json({"status": "success", "message": f"Config {config_id} deleted"})
