"""Saved Gateway Configs: stored by id, validated when saved, referenced as ``x-portkey-config: <id>``.

The schema check belongs to config/ (``parse_config``); this layer takes it as an injected
``validate(text)`` and adds the one check only the store can make reliably: every ``@slug`` the config
names exists, tested in the same serialised write transaction in which a provider delete checks the reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..config import parse_config
from ..config.fields import snake
from ..errors import BadRequest, Conflict
from ..jsontext import stored_json_object
from ..providers import registry
from ..store.access_tables import KEY_ACTIVE, api_keys
from ..store.state import bump_catalog_version
from ..store.tables import DEFAULT_WORKSPACE_ID, providers, saved_configs, utcnow
from .entries import (
    MAX_NOTES,
    UNSET,
    NotInCatalog,
    SavedConfigView,
    has_control_characters,
    provider_not_found,
    validate_slug,
)

MAX_CONFIG_BYTES = 256 * 1024
ValidateConfig = Callable[[str], None]  # raises errors.BadRequest / errors.ConfigError
# Saved configs are stored in clear, so credentials may not be inlined: they belong in a catalog provider,
# whose header values the vault encrypts, referenced as "@slug".
SECRET_KEYS = frozenset(
    {"api_key", "aws_secret_access_key", "aws_session_token", "azure_ad_token", "vertex_service_account_json"}
)


def gateway_config_validator(check_host: Callable[[str], object] | None = None) -> ValidateConfig:
    """The Gateway Config schema (``config.parse_config``) as a saved-config validator. Provider ids are the
    registry's; ``@slug`` existence is this layer's own check, made inside the write transaction."""
    known = frozenset(registry.PROVIDERS)

    def validate(text: str) -> None:
        parse_config(text, known_providers=known, check_host=check_host)

    return validate


def referenced_slugs(text: str) -> tuple[str, ...]:
    """The catalog slugs a config names: ``provider: "@slug"``, ``virtual_key`` and ``override_params.model:
    "@slug/model"``, at any depth (targets nest)."""
    try:
        tree = orjson.loads(text)
    except orjson.JSONDecodeError:
        return ()
    return tuple(dict.fromkeys(_walk_slugs(tree)))


def inlined_secret(node: Any, path: str = "config") -> str | None:
    """The path of the first credential written into a config (``config.targets[0].api_key``), if any."""
    if isinstance(node, list):
        return next((p for i, item in enumerate(node) if (p := inlined_secret(item, f"{path}[{i}]"))), None)
    if not isinstance(node, dict):
        return None
    for key, value in node.items():
        if snake(key) in SECRET_KEYS and value not in (None, ""):  # either spelling: apiKey is api_key
            return f"{path}.{key}"
        if (found := inlined_secret(value, f"{path}.{key}")) is not None:
            return found
    return None


def stored_secret(text: str) -> str | None:
    """The path of a credential in a stored config's text, if it holds one: configs saved before either
    spelling was refused (``apiKey`` was taken until 2026-12-04) keep it in clear until they are changed."""
    try:
        return inlined_secret(orjson.loads(text))
    except orjson.JSONDecodeError:
        return None


def _walk_slugs(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _walk_slugs(item)
        return
    if not isinstance(node, dict):
        return
    provider, virtual_key = node.get("provider"), node.get("virtual_key")
    if isinstance(provider, str) and provider.startswith("@"):
        yield provider[1:]
    if isinstance(virtual_key, str) and virtual_key:
        yield virtual_key.lstrip("@")
    overrides = node.get("override_params")
    model = overrides.get("model") if isinstance(overrides, dict) else None
    if isinstance(model, str) and model.startswith("@") and "/" in model:
        yield model[1:].split("/", 1)[0]
    for value in node.values():
        if isinstance(value, (dict, list)):
            yield from _walk_slugs(value)


async def configs_referencing(conn: AsyncConnection, slug: str) -> list[str]:
    """Ids of saved configs naming ``@slug`` (a scan: configs are few, and it cannot drift from the text)."""
    rows = await conn.execute(select(saved_configs.c.id, saved_configs.c.text).order_by(saved_configs.c.id))
    return [row.id for row in rows if slug in referenced_slugs(row.text)]


class ConfigRepository:
    def __init__(self, engine: AsyncEngine, *, validate: ValidateConfig | None = None) -> None:
        self._engine = engine
        self._validate = validate

    async def add(self, config_id: str, text: str, *, notes: str | None = None,
                  workspace_id: str = DEFAULT_WORKSPACE_ID) -> SavedConfigView:
        validate_slug(config_id, "id")
        self._check_text(text)
        now = utcnow()
        async with self._engine.begin() as conn:
            await bump_catalog_version(conn)
            if await conn.scalar(select(saved_configs.c.id).where(saved_configs.c.id == config_id)):
                raise Conflict(f"Config {config_id} already exists")
            await _check_references(conn, text, workspace_id)
            await conn.execute(
                insert(saved_configs).values(
                    id=config_id, text=text, notes=_notes(notes) or "", created_at=now, updated_at=now,
                    workspace_id=workspace_id,
                )
            )
        return await self.get(config_id)

    async def replace(self, config_id: str, text: str, *, notes: Any = UNSET) -> SavedConfigView:
        self._check_text(text)
        async with self._engine.begin() as conn:
            await bump_catalog_version(conn)
            row = await _config_row(conn, config_id)
            await _check_references(conn, text, row.workspace_id)
            values: dict[str, Any] = {"text": text, "updated_at": utcnow()}
            if notes is not UNSET:
                values["notes"] = _notes(notes) or ""
            await conn.execute(update(saved_configs).where(saved_configs.c.id == config_id).values(**values))
        return await self.get(config_id)

    async def remove(self, config_id: str) -> None:
        async with self._engine.begin() as conn:
            await bump_catalog_version(conn)
            await _config_row(conn, config_id)
            # As a provider a config names: a key's default config gone made every request of that key a 400.
            users = await conn.scalar(select(func.count()).select_from(api_keys).where(
                api_keys.c.status == KEY_ACTIVE, api_keys.c.defaults["config_id"].as_string() == config_id))
            if users:
                raise Conflict(f"Config {config_id} is the default config of {users} active API key(s): change "
                               "their defaults first")
            await conn.execute(delete(saved_configs).where(saved_configs.c.id == config_id))

    async def get(self, config_id: str) -> SavedConfigView:
        async with self._engine.connect() as conn:
            return _view(await _config_row(conn, config_id))

    async def list(self, *, workspace_id: str | None = None) -> list[SavedConfigView]:
        stmt = select(saved_configs).order_by(saved_configs.c.id)
        if workspace_id is not None:
            stmt = stmt.where(saved_configs.c.workspace_id == workspace_id)
        async with self._engine.connect() as conn:
            return [_view(row) for row in await conn.execute(stmt)]

    def _check_text(self, text: str) -> None:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
            raise BadRequest(f"config: larger than {MAX_CONFIG_BYTES // 1024} KiB")
        tree = stored_json_object(text, invalid="config: not valid JSON ({error})",
                                  not_object="config: expected a JSON object", what="config")
        if (where := inlined_secret(tree)) is not None:
            raise BadRequest(
                f"{where}: credentials cannot be stored in a saved config (it is kept in clear); "
                'add a catalog provider with the credential as an auth header and reference it as "@slug"'
            )
        if self._validate is not None:
            self._validate(text)


async def _check_references(conn: AsyncConnection, text: str, workspace_id: str) -> None:
    """Every @slug the config names exists in the config's own workspace."""
    slugs = referenced_slugs(text)
    if not slugs:
        return
    found = select(providers.c.slug).where(providers.c.slug.in_(slugs), providers.c.workspace_id == workspace_id)
    known = set((await conn.execute(found)).scalars())
    missing = [slug for slug in slugs if slug not in known]
    if missing:
        raise provider_not_found(missing[0])


async def _config_row(conn: AsyncConnection, config_id: str) -> Row[Any]:
    row = (await conn.execute(select(saved_configs).where(saved_configs.c.id == config_id))).first()
    if row is None:
        raise NotInCatalog(f"Config {validate_slug(config_id, 'id')} not found")
    return row


def _notes(notes: str | None) -> str | None:
    if notes is not None and (not isinstance(notes, str) or len(notes) > MAX_NOTES):
        raise BadRequest(f"notes: expected a string of at most {MAX_NOTES} characters")
    if notes is not None and has_control_characters(notes):
        raise BadRequest("notes: no control characters (lines and tabs are fine)")
    return notes


def _view(row: Row[Any]) -> SavedConfigView:
    return SavedConfigView(row.id, row.text, row.notes, row.created_at, row.updated_at, row.workspace_id)
