"""Portkey-style integrations: an AI provider's credential and host, kept so that catalog providers can be
made from it (``providers.create(integration_id=…, workspace_id=…, slug=…)``), exactly the entry that
``sluicegate providers add`` makes: the spec of ``ai_provider_id``, the custom host (SSRF-checked), the key
as that spec's auth header, the custom headers.

The key and the custom header values are stored as one vault ciphertext; only a masked key is shown.
"""

from __future__ import annotations

import secrets as random
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import BadRequest, Conflict
from ..jsontext import check_keys
from ..providers import registry
from ..store.tables import integrations, providers, utcnow
from ..vault import Vault, integration_aad
from ..vault.guard import refuse_sealing_beside_lost_keys
from .entries import (
    MAX_HEADER_VALUE,
    CheckHost,
    NotInCatalog,
    ProviderInput,
    has_control_characters,
    mask_secret,
    provider_input,
    validate_custom_host,
    validate_headers,
    validate_slug,
)

_FIELDS = ("name", "description", "key", "ai_provider_id", "workspace_id", "slug", "configurations")
MAX_NAME = 256
MAX_DESCRIPTION = 4000


def integration_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id, "slug": row.slug, "name": row.name, "description": row.description,
        "ai_provider_id": row.ai_provider_id, "workspace_id": row.workspace_id,
        "configurations": row.configurations or {}, "masked_key": row.masked_key, "status": "active",
        "type": "workspace" if row.workspace_id else "organisation",
        "created_at": row.created_at.isoformat(), "last_updated_at": row.updated_at.isoformat(),
        "object": "integration",
    }


def _text(value: Any, where: str, limit: int) -> str:
    """A name (one printable line, 1 to ``limit`` characters) or a description (any text up to ``limit``)."""
    name = where == "name"
    if not isinstance(value, str) or len(value) > limit or (name and not (value and value.isprintable())):
        what = "one line of printable text of 1" if name else "text of 0"
        raise BadRequest(f"{where}: expected {what} to {limit} characters")
    if has_control_characters(value):
        raise BadRequest(f"{where}: no control characters (lines and tabs are fine)")
    return value


def _check_key(key: Any, info: registry.ProviderInfo) -> None:
    """The key is sent as the spec's auth header: refused now if no header could carry it (a line break, too
    long), not when a provider is made from it, in words about a header the client never named."""
    if not isinstance(key, str) or not key:
        raise BadRequest("key: expected the provider's API key as a string")
    try:
        validate_headers(info.spec.auth_headers(key).items())
    except BadRequest:
        raise BadRequest(f"key: must be one line of at most {MAX_HEADER_VALUE} characters (it is sent in a "
                         "header)") from None


def _configurations(value: Any, check_host: CheckHost | None) -> tuple[dict[str, Any], dict[str, str]]:
    """(what may be shown: custom_host and header names, the custom header values)."""
    if value is None:
        return {}, {}
    if not isinstance(value, dict):
        raise BadRequest("configurations: expected an object")
    check_keys(value, ("custom_host", "custom_headers"), where="configurations.")
    shown: dict[str, Any] = {}
    if value.get("custom_host") is not None:
        shown["custom_host"] = validate_custom_host(value["custom_host"], check_host)
    headers = value.get("custom_headers") or {}
    if not isinstance(headers, dict):
        raise BadRequest("configurations.custom_headers: expected an object of header name to value")
    pairs = validate_headers(headers.items())
    if pairs:
        shown["custom_headers"] = sorted(name for name, _ in pairs)
    return shown, dict(pairs)


class IntegrationRepository:
    def __init__(self, engine: AsyncEngine, vault: Vault, *, check_host: CheckHost | None = None,
                 provider_urls: dict[str, str] | None = None) -> None:
        self._engine = engine
        self._vault = vault
        self._check_host = check_host
        self._provider_urls = provider_urls or {}

    async def create(self, body: dict[str, Any], *, workspace_id: str | None) -> dict[str, Any]:
        check_keys(body, _FIELDS)
        provider = body.get("ai_provider_id")
        info = registry.lookup(provider) if isinstance(provider, str) else None
        if info is None:
            raise BadRequest(f"ai_provider_id: expected one of {', '.join(registry.PROVIDERS)}")
        slug = validate_slug(body["slug"]) if "slug" in body else f"{provider}-{random.token_hex(3)}"
        name = _text(body["name"], "name", MAX_NAME) if "name" in body else slug if "slug" in body else provider
        description = _text(body["description"], "description", MAX_DESCRIPTION) if "description" in body else ""
        shown, custom = _configurations(body.get("configurations"), self._check_host)
        key = body.get("key")
        if key is not None:
            _check_key(key, info)
        integration_id = f"int-{random.token_hex(8)}"
        now = utcnow()
        async with self._engine.begin() as conn:
            if (await conn.execute(select(integrations.c.id).where(integrations.c.slug == slug))).first():
                raise Conflict(f"Integration {slug} already exists")
            sealed = None
            if key or custom:  # not beside secrets this key file cannot open (vault/guard.py)
                await refuse_sealing_beside_lost_keys(conn, self._vault)
                sealed = self._vault.encrypt(orjson.dumps({"key": key, "custom_headers": custom}).decode(),
                                             integration_aad(integration_id))
            await conn.execute(insert(integrations).values(
                id=integration_id, slug=slug, name=name, description=description,
                ai_provider_id=provider, workspace_id=workspace_id, configurations=shown, secret=sealed,
                masked_key=mask_secret(key) if key else None, created_at=now, updated_at=now))
            return integration_json(await _row(conn, slug))

    async def get(self, ref: str) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            return integration_json(await _row(conn, ref))

    async def list(self, *, workspace_id: str | None = None) -> list[dict[str, Any]]:
        stmt = select(integrations).order_by(integrations.c.created_at, integrations.c.slug)
        if workspace_id is not None:  # a workspace sees its own and the organisation's
            stmt = stmt.where(or_(integrations.c.workspace_id == workspace_id, integrations.c.workspace_id.is_(None)))
        async with self._engine.connect() as conn:
            return [integration_json(row) for row in await conn.execute(stmt)]

    async def update(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        """Name and description only: providers already made from it keep their copy of the credential."""
        check_keys(body, ("name", "description"), hint=" (an integration's name and description can be changed; "
                                                        "make a new one for another key or host)")
        values: dict[str, Any] = {"updated_at": utcnow()}
        if "name" in body:
            values["name"] = _text(body["name"], "name", MAX_NAME)
        if "description" in body:
            values["description"] = _text(body["description"], "description", MAX_DESCRIPTION)
        async with self._engine.begin() as conn:
            row = await _row(conn, ref)
            await conn.execute(update(integrations).where(integrations.c.id == row.id).values(**values))
            return integration_json(await _row(conn, row.id))

    async def remove(self, ref: str) -> None:
        async with self._engine.begin() as conn:
            row = await _row(conn, ref)
            used = await conn.scalar(select(func.count()).select_from(providers)
                                     .where(providers.c.integration_id == row.id))
            if used:
                raise Conflict(f"Integration {row.slug} is used by {used} provider(s): delete them first")
            await conn.execute(delete(integrations).where(integrations.c.id == row.id))

    async def provider_from(self, ref: str, slug: str, *, workspace_id: str, notes: str) -> ProviderInput:
        """The catalog provider ``slug`` made from the integration (validated like the CLI's)."""
        async with self._engine.connect() as conn:
            row = await _row(conn, ref)
        if row.workspace_id is not None and row.workspace_id != workspace_id:
            raise BadRequest(f"integration_id: integration {row.slug} belongs to another workspace")
        info = registry.PROVIDERS[row.ai_provider_id]
        host = (row.configurations or {}).get("custom_host")
        if host is None:
            base = registry.base_url(info, self._provider_urls)
            host = base + info.path_prefix if base else None
        opened = orjson.loads(self._vault.decrypt(row.secret, integration_aad(row.id))) if row.secret else {}
        headers = dict(info.spec.auth_headers(opened["key"])) if opened.get("key") else {}
        for name, value in (opened.get("custom_headers") or {}).items():  # a custom header wins, any case
            headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            headers[name] = value
        raw = {"spec": info.spec.name, "custom_host": host, "notes": notes}
        item = provider_input(slug, raw, list(headers.items()), self._check_host)
        return ProviderInput(item.slug, item.fields, item.headers, workspace_id, integration_id=row.id)


async def _row(conn: AsyncConnection, ref: str) -> Row[Any]:
    if "\x00" in ref:  # no id or slug holds one, and PostgreSQL refuses it in a parameter (a 500, not a 404)
        raise NotInCatalog("Integration not found (its id or slug holds a NUL character)")
    row = (await conn.execute(select(integrations).where(
        or_(integrations.c.id == ref, integrations.c.slug == ref)))).first()
    if row is None:
        raise NotInCatalog(f"Integration {ref[:80]} not found")
    return row
