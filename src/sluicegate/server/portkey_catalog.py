"""Portkey's Admin API for the catalog, as the portkey-ai SDK calls it (``portkey.integrations``,
``portkey.providers``, ``portkey.configs``), on the same data as ``/admin/api`` and the CLI:

  POST/GET          /v1/integrations        GET/PUT/DELETE  /v1/integrations/{slug}
  POST/GET          /v1/providers           GET/PUT/DELETE  /v1/providers/{slug}
  POST/GET          /v1/configs             GET/PUT/DELETE  /v1/configs/{slug}

A provider is made from an integration (its spec, host, key and custom headers) into a workspace; it is
then an ordinary catalog provider (``@slug``), SSRF rules included. Scopes: ``integrations.*``,
``providers.*``, ``configs.*``; a workspace key works within its workspace.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..access.model import Principal
from ..access.policy import require_scope
from ..access.workspaces import resolve_workspace_id
from ..catalog.configs import ConfigRepository
from ..catalog.entries import UNSET, ProviderPatch, ProviderView, SavedConfigView, validate_slug
from ..catalog.integrations import IntegrationRepository
from ..catalog.providers import ProviderRepository
from ..errors import BadRequest, GatewayError
from ..jsontext import check_keys
from ..vault import VaultError
from . import limits_admin
from .access_admin import body_of, narrowed_workspace, principal
from .audit_trail import audited
from .principals import check_workspace, workspace_for_write
from .queries import SNAKE_PAGING, checked_query

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class CatalogAdmin:
    engine: AsyncEngine
    integrations: IntegrationRepository
    providers: ProviderRepository
    configs: ConfigRepository
    on_write: Callable[[], Awaitable[Any]]  # the catalog's refresh


CATALOG_ADMIN = web.AppKey("sluicegate_catalog_admin", CatalogAdmin)


def add_portkey_catalog_routes(router: web.UrlDispatcher, prefix: str = "/v1") -> None:
    for name, (create, listed, get, put, remove) in {
        "integrations": (create_integration, list_integrations, get_integration, update_integration,
                         delete_integration),
        "providers": (create_provider, list_providers, get_provider, update_provider, delete_provider),
        "configs": (create_config, list_configs, get_config, update_config, delete_config),
    }.items():
        router.add_post(f"{prefix}/{name}", _vault_errors(create))
        router.add_get(f"{prefix}/{name}", _vault_errors(listed))
        router.add_get(f"{prefix}/{name}/{{slug}}", _vault_errors(get))
        router.add_put(f"{prefix}/{name}/{{slug}}", _vault_errors(put))
        router.add_delete(f"{prefix}/{name}/{{slug}}", _vault_errors(remove))


def _vault_errors(handler: Handler) -> Handler:
    """A vault refusal (a wrong key file, a credential that does not open) answered as ``/admin/api`` does:
    a 503 that says why (key ids, slugs, never a secret): the operator's to fix, like a store outage, not a
    bug's anonymous 500."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except VaultError as exc:
            log.error("%s %s: %s", request.method, request.path, exc)
            raise GatewayError(f"vault: {exc}", status=503) from None

    return answer


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _admin(request: web.Request) -> CatalogAdmin:
    return request.config_dict[CATALOG_ADMIN]


async def _caller(request: web.Request, scope: str) -> Principal:
    caller = await principal(request)
    require_scope(caller, scope)
    return caller


async def _workspace(request: web.Request, caller: Principal, asked: Any, *, default: bool) -> str | None:
    """The workspace a new record goes to: the caller's own, or the one it names (id or slug)."""
    if asked is not None and (not isinstance(asked, str) or not asked):  # 5 made an organisation-wide record
        raise BadRequest("workspace_id: expected a workspace id or slug")
    resolved = await resolve_workspace_id(_admin(request).engine, asked) if asked else None
    chosen = workspace_for_write(caller, resolved)
    return chosen if chosen is not None or not default else await resolve_workspace_id(_admin(request).engine, None)


async def _changed(request: web.Request) -> None:
    await _admin(request).on_write()


# ---------------------------------------------------------------------------------------- integrations


async def create_integration(request: web.Request) -> web.Response:
    caller = await _caller(request, "integrations.create")
    body = await body_of(request)
    workspace = await _workspace(request, caller, body.pop("workspace_id", None), default=False)
    view = await _admin(request).integrations.create(body, workspace_id=workspace)
    await audited(request, "integration.create", "integration", view["id"], workspace, after=view)
    return _json({"id": view["id"], "slug": view["slug"], "object": "integration"})


_INTEGRATION_TYPES = ("workspace", "organisation", "all")


async def list_integrations(request: web.Request) -> web.Response:
    caller = await _caller(request, "integrations.list")
    query = checked_query(request, ("workspace_id", "type", *SNAKE_PAGING.names))
    kind = query.get("type", "all")
    if kind not in _INTEGRATION_TYPES:
        raise BadRequest(f"'type' must be one of {', '.join(_INTEGRATION_TYPES)}")
    entries = await _admin(request).integrations.list(workspace_id=await _listed(request, caller, query))
    return _json(SNAKE_PAGING.listing(query, [e for e in entries if kind in ("all", e["type"])]))


async def _listed(request: web.Request, caller: Principal, query: Mapping[str, str]) -> str | None:
    return await narrowed_workspace(_admin(request).engine, caller, query.get("workspace_id"))


async def _own_integration(request: web.Request, scope: str) -> dict[str, Any]:
    caller = await _caller(request, scope)
    view = await _admin(request).integrations.get(request.match_info["slug"])
    if view["workspace_id"] is not None:
        check_workspace(caller, view["workspace_id"], f"Integration {view['slug']}")
    return view


async def get_integration(request: web.Request) -> web.Response:
    return _json(await _own_integration(request, "integrations.read"))


async def update_integration(request: web.Request) -> web.Response:
    view = await _own_integration(request, "integrations.update")
    updated = await _admin(request).integrations.update(view["id"], await body_of(request))
    await audited(request, "integration.update", "integration", view["id"], view["workspace_id"], before=view,
                  after=updated)
    return _json(updated)


async def delete_integration(request: web.Request) -> web.Response:
    view = await _own_integration(request, "integrations.delete")
    await _admin(request).integrations.remove(view["id"])
    await audited(request, "integration.delete", "integration", view["id"], view["workspace_id"], before=view)
    return _json({})


# ------------------------------------------------------------------------------------------- providers


def provider_json(view: ProviderView) -> dict[str, Any]:
    return {
        "id": view.slug, "slug": view.slug, "name": view.slug, "note": view.fields.notes,
        "integration_id": view.integration_id, "workspace_id": view.workspace_id,
        "custom_host": view.fields.custom_host, "created_at": view.created_at.isoformat(),
        "last_updated_at": view.updated_at.isoformat(), "object": "provider",
    }


# What a provider made from an integration takes (its limits besides); its host and credential are the
# integration's.
_PROVIDER_CREATE = ("name", "integration_id", "workspace_id", "slug", "note")
_FROM_THE_INTEGRATION = "; a provider's host and credential come from its integration"


async def create_provider(request: web.Request) -> web.Response:
    caller = await _caller(request, "providers.create")
    body = await body_of(request)
    limits = limits_admin.split(request, "provider", body)
    check_keys(body, _PROVIDER_CREATE, hint=_FROM_THE_INTEGRATION)
    integration = body.get("integration_id")
    if not isinstance(integration, str) or not integration:
        raise BadRequest("integration_id: required (the id or slug of an integration)")
    workspace = await _workspace(request, caller, body.get("workspace_id"), default=True)
    assert workspace is not None
    slug = validate_slug(body.get("slug") or _slugify(body.get("name") or integration))
    note = _note(body)
    admin = _admin(request)
    item = await admin.integrations.provider_from(integration, slug, workspace_id=workspace, notes=note)
    view = await admin.providers.add(item)
    await limits_admin.save(request, "provider", view.slug, limits)
    await _changed(request)
    await audited(request, "provider.create", "provider", view.slug, view.workspace_id, after=view.to_json())
    return _json({"id": view.slug, "slug": view.slug, "object": "provider"})


async def list_providers(request: web.Request) -> web.Response:
    caller = await _caller(request, "providers.list")
    query = checked_query(request, ("workspace_id", *SNAKE_PAGING.names))
    views = await _admin(request).providers.list(workspace_id=await _listed(request, caller, query))
    return _json(SNAKE_PAGING.listing(query, [provider_json(v) for v in views]))


async def _own_provider(request: web.Request, scope: str) -> ProviderView:
    caller = await _caller(request, scope)
    view = await _admin(request).providers.get(validate_slug(request.match_info["slug"]))
    check_workspace(caller, view.workspace_id, f"Provider @{view.slug}")
    return view


async def get_provider(request: web.Request) -> web.Response:
    return _json(await limits_admin.shown(request, "provider", provider_json(await _own_provider(request,
                                                                                                "providers.read"))))


async def update_provider(request: web.Request) -> web.Response:
    view = await _own_provider(request, "providers.update")
    body = await body_of(request)
    limits = limits_admin.split(request, "provider", body)
    # A custom_host was answered 200 and left as it was: what cannot change here is refused by name.
    check_keys(body, ("note",), hint=f"{_FROM_THE_INTEGRATION}: make a new provider from another integration")
    patch = ProviderPatch(notes=_note(body)) if "note" in body else ProviderPatch()
    updated = await _admin(request).providers.update(view.slug, patch)
    await limits_admin.save(request, "provider", view.slug, limits)
    await _changed(request)
    await audited(request, "provider.update", "provider", view.slug, view.workspace_id, before=view.to_json(),
                  after=updated.to_json())
    return _json({"id": updated.slug, "slug": updated.slug, "object": "provider"})


async def delete_provider(request: web.Request) -> web.Response:
    view = await _own_provider(request, "providers.delete")
    await _admin(request).providers.remove(view.slug)
    await _changed(request)
    await audited(request, "provider.delete", "provider", view.slug, view.workspace_id, before=view.to_json())
    return _json({})


def _note(body: dict[str, Any]) -> str:
    note = body.get("note")
    if note is None:
        return ""
    if not isinstance(note, str):
        raise BadRequest("note: expected a string")
    return note


# --------------------------------------------------------------------------------------------- configs


def _slugify(text: Any) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:40].strip("-")
    return slug or "provider"


def config_json(view: SavedConfigView) -> dict[str, Any]:
    return {
        "id": view.id, "slug": view.id, "name": view.notes or view.id, "config": orjson.loads(view.text),
        "workspace_id": view.workspace_id, "status": "active", "is_default": 0,
        "created_at": view.created_at.isoformat(), "last_updated_at": view.updated_at.isoformat(),
        "object": "config",
    }


def _config_text(value: Any) -> str:
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    if isinstance(value, str):
        return value
    raise BadRequest("config: expected a Gateway Config object")


# What the portkey-ai SDK sends (``configs.create`` / ``configs.update``). Ignored, a field that means
# something made a 200 that did not do it: ``status: "archived"`` left the config serving, ``is_default: 1``
# made no default.
_CONFIG_CREATE = ("name", "config", "is_default", "workspace_id")
_CONFIG_UPDATE = ("slug", "name", "config", "status")


def _config_name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise BadRequest("name: expected a string")
    return name or ""


def _check_config_create(body: dict[str, Any]) -> None:
    check_keys(body, _CONFIG_CREATE)
    if body.get("is_default") not in (None, 0, False):
        raise BadRequest("is_default: a default config is not modelled here; name it as an API key's "
                         "defaults.config_id instead")


def _check_config_update(body: dict[str, Any], slug: str) -> None:
    check_keys(body, _CONFIG_UPDATE)
    if body.get("slug") not in (None, slug):
        raise BadRequest("slug: cannot be changed; create a new config and delete this one")
    if body.get("status") not in (None, "active"):
        raise BadRequest("status: only 'active' is supported; delete the config to retire it")


async def create_config(request: web.Request) -> web.Response:
    caller = await _caller(request, "configs.create")
    body = await body_of(request)
    _check_config_create(body)
    workspace = await _workspace(request, caller, body.get("workspace_id"), default=True)
    name = _config_name(body)
    slug = f"pc-{_slugify(name or 'config')[:20].strip('-')}-{secrets.token_hex(3)}"
    assert workspace is not None  # default=True: the default workspace when none is named
    view = await _admin(request).configs.add(slug, _config_text(body.get("config")), notes=name,
                                              workspace_id=workspace)
    await _changed(request)
    await audited(request, "config.create", "config", view.id, view.workspace_id, after=view.to_json())
    return _json({"id": view.id, "slug": view.id, "version_id": f"{view.id}-v1", "object": "config"})


async def list_configs(request: web.Request) -> web.Response:
    caller = await _caller(request, "configs.list")
    query = checked_query(request, ("workspace_id", *SNAKE_PAGING.names))
    views = await _admin(request).configs.list(workspace_id=await _listed(request, caller, query))
    return _json(SNAKE_PAGING.listing(query, [config_json(v) for v in views]))


async def _own_config(request: web.Request, scope: str) -> SavedConfigView:
    caller = await _caller(request, scope)
    view = await _admin(request).configs.get(validate_slug(request.match_info["slug"], "slug"))
    check_workspace(caller, view.workspace_id, f"Config {view.id}")
    return view


async def get_config(request: web.Request) -> web.Response:
    return _json(config_json(await _own_config(request, "configs.read")))


async def update_config(request: web.Request) -> web.Response:
    view = await _own_config(request, "configs.update")
    body = await body_of(request)
    _check_config_update(body, view.id)
    text = _config_text(body["config"]) if "config" in body else view.text
    notes = _config_name(body) if "name" in body else UNSET
    updated = await _admin(request).configs.replace(view.id, text, notes=notes)
    await _changed(request)
    await audited(request, "config.update", "config", view.id, view.workspace_id, before=view.to_json(),
                  after=updated.to_json())
    return _json({"id": updated.id, "version_id": f"{updated.id}-v2", "object": "config"})


async def delete_config(request: web.Request) -> web.Response:
    view = await _own_config(request, "configs.delete")
    await _admin(request).configs.remove(view.id)
    await _changed(request)
    await audited(request, "config.delete", "config", view.id, view.workspace_id, before=view.to_json())
    return _json({})
