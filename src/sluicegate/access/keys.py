"""Gateway API keys: CRUD against the store. The secret exists only in the creation answer; the store keeps
its keyed hash (secrets.py) and a short prefix. Every write is audited and bumps the access version, so
every server's snapshot (registry.py) sees it within one poll.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import BadRequest
from ..jsontext import check_keys
from ..store.access_tables import api_keys
from ..store.state import bump_access_version
from ..store.tables import saved_configs, utcnow
from .audit import record_event
from .model import ACTIVE, DEFAULT_SCOPES, KEY_TYPES, REVOKED, SUB_TYPES, KeyDefaults, Permissions, validate_scopes
from .secrets import KeyHasher, looks_like_key, new_secret, shown_prefix
from .workspaces import Missing, _text, workspace_row

MAX_NAME = 256
# What a key's create and update bodies may hold (the limits are taken out and stored by server/limits_admin.py).
# Portkey's ``user_id`` and ``alert_emails`` (on create and update) are taken and not modelled: users are
# not, nor are e-mails sent.
_KEY_FIELDS = ("name", "description", "scopes", "defaults", "permissions", "expires_at", "rate_limits",
               "usage_limits")
CREATE_FIELDS = (*_KEY_FIELDS, "type", "sub_type", "sub-type", "workspace_id", "user_id", "alert_emails")
UPDATE_FIELDS = (*_KEY_FIELDS, "status", "alert_emails")


def key_json(row: Row[Any]) -> dict[str, Any]:
    """A key as every surface shows it: never its secret, only the prefix it starts with."""
    return {
        "id": row.id, "key": f"{row.key_prefix}********", "name": row.name, "description": row.description,
        "type": f"{row.type}-{row.sub_type}", "key_type": row.type, "sub_type": row.sub_type,
        "workspace_id": row.workspace_id, "status": row.status, "scopes": list(row.scopes or ()),
        "defaults": row.defaults or {}, "permissions": Permissions.from_json(row.permissions).to_json(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "created_at": row.created_at.isoformat(), "last_updated_at": row.updated_at.isoformat(),
        "object": "api-key",
    }


def parse_expiry(value: Any, *, update: bool = False) -> datetime | None:
    """A key's expiry: none, or a moment still ahead (a key expired from birth could never be used)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadRequest("expires_at: expected an ISO 8601 date-time, e.g. 2030-01-01T00:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("expires_at: expected an ISO 8601 date-time, e.g. 2030-01-01T00:00:00Z") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:  # the store keeps it in UTC, where a moment past the year 9999 cannot be held
        moment.astimezone(UTC)
    except OverflowError:
        raise BadRequest("expires_at: out of range (at most 9999-12-31T23:59:59Z)") from None
    if moment <= datetime.now(UTC):
        hint = ("; to stop a key now, revoke it instead (DELETE /api-keys/{id}, or sluicegate keys revoke ID)"
                if update else "; a key must be usable when it is made")
        raise BadRequest(f"expires_at: {moment.isoformat()} is not in the future{hint}")
    return moment


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise BadRequest(f"{where}: expected one of {', '.join(allowed)}")
    return str(value)


async def key_row(conn: AsyncConnection, key_id: str) -> Row[Any]:
    if looks_like_key(key_id):  # a secret where its id belongs: never echoed back (nor looked up)
        raise Missing("API key not found: the path takes the key's id, never its secret")
    # No id holds a NUL, and PostgreSQL refuses one in a parameter (an error, not "not found").
    row = None if "\x00" in key_id else (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
    if row is None:
        raise Missing(f"API key {key_id[:80]} not found")
    return row


class KeyRepository:
    def __init__(self, engine: AsyncEngine, hasher: KeyHasher) -> None:
        self._engine = engine
        self._hasher = hasher

    async def create(self, body: dict[str, Any], *, actor: str) -> tuple[dict[str, Any], str]:
        """The new key's view and its secret (returned this once)."""
        check_keys(body, CREATE_FIELDS)
        key_type = _choice(body.get("type", "workspace"), KEY_TYPES, "type")
        sub_type = _choice(body.get("sub_type", body.get("sub-type", "service")), SUB_TYPES, "sub_type")
        name = _text(body.get("name"), "name", MAX_NAME, required=True, one_line=True)
        scopes = validate_scopes(body["scopes"]) if body.get("scopes") is not None else DEFAULT_SCOPES
        secret = new_secret()
        now = utcnow()
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()), "type": key_type, "sub_type": sub_type, "name": name,
            "description": _text(body.get("description"), "description", 4000),
            "scopes": list(scopes), "defaults": KeyDefaults.from_json(body.get("defaults")).to_json(),
            "permissions": Permissions.from_json(body.get("permissions")).to_json(),
            "expires_at": parse_expiry(body.get("expires_at")), "status": ACTIVE,
            "key_hash": self._hasher.digest(secret), "key_prefix": shown_prefix(secret),
            "created_at": now, "updated_at": now,
        }
        async with self._engine.begin() as conn:
            await bump_access_version(conn)
            values["workspace_id"] = await _key_workspace(conn, key_type, body.get("workspace_id"))
            await _check_default_config(conn, values["defaults"], values["workspace_id"])
            await conn.execute(insert(api_keys).values(**values))
            view = key_json(await key_row(conn, values["id"]))
            await record_event(conn, actor=actor, action="api_key.create", resource_type="api_key",
                               resource_id=values["id"], workspace_id=values["workspace_id"], after=view)
        return view, secret

    async def get(self, key_id: str) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            return key_json(await key_row(conn, key_id))

    async def list(self, *, workspace_id: str | None = None) -> list[dict[str, Any]]:
        stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if workspace_id is not None:
            stmt = stmt.where(api_keys.c.workspace_id == workspace_id)
        async with self._engine.connect() as conn:
            return [key_json(row) for row in await conn.execute(stmt)]

    async def update(self, key_id: str, body: dict[str, Any], *, actor: str) -> dict[str, Any]:
        check_keys(body, UPDATE_FIELDS)
        values: dict[str, Any] = {"updated_at": utcnow()}
        if body.get("name") is not None:
            values["name"] = _text(body["name"], "name", MAX_NAME, required=True, one_line=True)
        if body.get("description") is not None:
            values["description"] = _text(body["description"], "description", 4000)
        if body.get("scopes") is not None:
            values["scopes"] = list(validate_scopes(body["scopes"]))
        if body.get("defaults") is not None:
            values["defaults"] = KeyDefaults.from_json(body["defaults"]).to_json()
        if "permissions" in body:
            values["permissions"] = Permissions.from_json(body["permissions"]).to_json()
        if "expires_at" in body:
            values["expires_at"] = parse_expiry(body["expires_at"], update=True)
        if body.get("status") is not None:
            values["status"] = _choice(body["status"], (ACTIVE, REVOKED), "status")
        return await self._write(key_id, values, "api_key.update", actor)

    async def revoke(self, key_id: str, *, actor: str) -> dict[str, Any]:
        return await self._write(key_id, {"status": REVOKED, "updated_at": utcnow()}, "api_key.revoke", actor)

    async def _write(self, key_id: str, values: dict[str, Any], action: str, actor: str) -> dict[str, Any]:
        async with self._engine.begin() as conn:
            await bump_access_version(conn)
            row = await key_row(conn, key_id)
            if "defaults" in values:
                await _check_default_config(conn, values["defaults"], row.workspace_id)
            await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))
            after = key_json(await key_row(conn, key_id))
            await record_event(conn, actor=actor, action=action, resource_type="api_key", resource_id=key_id,
                               workspace_id=row.workspace_id, before=key_json(row), after=after)
        return after

    async def delete(self, key_id: str, *, actor: str) -> None:
        """Portkey's DELETE: the key stops working at once; its row stays, revoked, for the log's sake."""
        await self.revoke(key_id, actor=actor)


async def _check_default_config(conn: AsyncConnection, defaults: dict[str, Any], workspace_id: str | None) -> None:
    """A key's default config is a saved config the key may use: one that exists, in its workspace (an
    organisation key may name any). Deleted later, requests that rely on it are told so (pipeline/admit.py)."""
    config_id = defaults.get("config_id")
    if config_id is None:
        return
    found = None if "\x00" in config_id else (await conn.execute(
        select(saved_configs.c.workspace_id).where(saved_configs.c.id == config_id))).first()
    if found is None:
        raise BadRequest(f"defaults.config_id: no saved config '{config_id[:64]}'")
    if workspace_id is not None and found.workspace_id != workspace_id:
        raise BadRequest(f"defaults.config_id: config '{config_id[:64]}' belongs to another workspace")


async def _key_workspace(conn: AsyncConnection, key_type: str, ref: Any) -> str | None:
    if key_type == "organisation":
        if ref not in (None, ""):
            raise BadRequest("workspace_id: an organisation key belongs to no workspace")
        return None
    if ref in (None, ""):
        raise BadRequest("workspace_id: required for a workspace key (a workspace id or slug)")
    if not isinstance(ref, str):
        raise BadRequest("workspace_id: expected a workspace id or slug")
    return str((await workspace_row(conn, ref)).id)
