"""Workspaces: CRUD against the store, every write audited and bumping the access version.

A workspace is found by its id (``ws-…``) or its slug, as Portkey's API accepts either. The default
workspace cannot be deleted, nor can a workspace that still owns providers, configs or API keys.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, true, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import BadRequest, Conflict, GatewayError
from ..jsontext import check_keys
from ..store.access_tables import DEFAULT_WORKSPACE_ID, api_keys, workspaces
from ..store.limit_tables import delete_subject_limits
from ..store.state import bump_access_version
from ..store.tables import providers, saved_configs, utcnow
from .audit import record_event
from .model import ACTIVE, Permissions, default_metadata

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_NAME = 256
MAX_DESCRIPTION = 4000
# What a workspace's create and update bodies may hold (the limits are taken out and stored by
# server/limits_admin.py); Portkey's ``users`` is taken and not modelled.
CREATE_FIELDS = ("name", "slug", "description", "defaults", "permissions", "rate_limits", "usage_limits", "users")
UPDATE_FIELDS = ("name", "description", "defaults", "permissions", "rate_limits", "usage_limits")


class Missing(GatewayError):
    """An access record (workspace, API key) that does not exist: 404."""

    status = 404


def workspace_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id, "slug": row.slug, "name": row.name, "description": row.description,
        "defaults": row.defaults or {}, "permissions": Permissions.from_json(row.permissions).to_json(),
        "is_default": 1 if row.id == DEFAULT_WORKSPACE_ID else 0,
        "created_at": row.created_at.isoformat(), "last_updated_at": row.updated_at.isoformat(),
        "object": "workspace",
    }


def _slug_from(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    return slug or "workspace"


# What a name may not hold: it is shown as one line, in tables and terminals (the CLI's listings), where a
# control character (ESC, CR, NUL) or a direction override would rewrite what is around it.
_NOT_IN_A_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
# A description may run over lines and hold tabs, but no other control character.
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _text(value: Any, where: str, limit: int, *, required: bool = False, one_line: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise BadRequest(f"{where}: expected a {'non-empty ' if required else ''}string of at most {limit} "
                         "characters")
    if (_NOT_IN_A_NAME if one_line else _NOT_IN_TEXT).search(value):
        raise BadRequest(f"{where}: no control characters" + (" or direction overrides (it is shown as one line)"
                                                              if one_line else ""))
    return value


def _defaults(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("defaults: expected an object")
    if value.get("metadata") is not None:  # other fields are kept as given (Portkey's shape), unused here
        default_metadata(value["metadata"])
    return value


async def workspace_row(conn: AsyncConnection, ref: str) -> Row[Any]:
    # No id or slug holds a NUL, and PostgreSQL refuses one in a parameter (an error, not "not found").
    row = None if "\x00" in ref else (await conn.execute(
        select(workspaces).where(or_(workspaces.c.id == ref, workspaces.c.slug == ref)))).first()
    if row is None:
        raise Missing(f"Workspace {ref[:80]} not found")
    return row


class WorkspaceRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, body: dict[str, Any], *, actor: str) -> dict[str, Any]:
        check_keys(body, CREATE_FIELDS)
        name = _text(body.get("name"), "name", MAX_NAME, required=True, one_line=True)
        slug = body.get("slug") or _slug_from(name)
        if not isinstance(slug, str) or not SLUG_RE.match(slug):
            raise BadRequest("slug: 1-63 lowercase letters, digits or '-'")
        now = utcnow()
        values: dict[str, Any] = {"id": f"ws-{secrets.token_hex(8)}", "slug": slug, "name": name,
                  "description": _text(body.get("description"), "description", MAX_DESCRIPTION),
                  "defaults": _defaults(body.get("defaults")),
                  "permissions": Permissions.from_json(body.get("permissions")).to_json(),
                  "created_at": now, "updated_at": now}
        try:
            async with self._engine.begin() as conn:
                await bump_access_version(conn)
                # A workspace is found by its id or its slug: a slug that is another's id would hide one of them.
                if (await conn.execute(select(workspaces.c.id).where(
                        or_(workspaces.c.slug == slug, workspaces.c.id == slug)))).first():
                    raise Conflict(f"Workspace {slug} already exists")
                await conn.execute(insert(workspaces).values(**values))
                view = workspace_json(await workspace_row(conn, values["id"]))
                await record_event(conn, actor=actor, action="workspace.create", resource_type="workspace",
                                   resource_id=values["id"], workspace_id=values["id"], after=view)
        except IntegrityError:
            raise Conflict(f"Workspace {slug} already exists") from None
        return view

    async def get(self, ref: str) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            return workspace_json(await workspace_row(conn, ref))

    async def list(self, *, name: str | None = None) -> list[dict[str, Any]]:
        stmt = select(workspaces).order_by(workspaces.c.created_at, workspaces.c.slug)
        if name:
            stmt = stmt.where(workspaces.c.name.contains(name, autoescape=True))  # "%" and "_" as typed
        async with self._engine.connect() as conn:
            return [workspace_json(row) for row in await conn.execute(stmt)]

    async def update(self, ref: str, body: dict[str, Any], *, actor: str) -> dict[str, Any]:
        check_keys(body, UPDATE_FIELDS)
        async with self._engine.begin() as conn:
            await bump_access_version(conn)
            row = await workspace_row(conn, ref)
            before = workspace_json(row)
            values: dict[str, Any] = {"updated_at": utcnow()}
            if body.get("name") is not None:
                values["name"] = _text(body["name"], "name", MAX_NAME, required=True, one_line=True)
            if body.get("description") is not None:
                values["description"] = _text(body["description"], "description", MAX_DESCRIPTION)
            if body.get("defaults") is not None:
                values["defaults"] = _defaults(body["defaults"])
            if "permissions" in body:
                values["permissions"] = Permissions.from_json(body["permissions"]).to_json()
            await conn.execute(update(workspaces).where(workspaces.c.id == row.id).values(**values))
            after = workspace_json(await workspace_row(conn, row.id))
            await record_event(conn, actor=actor, action="workspace.update", resource_type="workspace",
                               resource_id=row.id, workspace_id=row.id, before=before, after=after)
        return after

    async def remove(self, ref: str, *, actor: str) -> None:
        async with self._engine.begin() as conn:
            await bump_access_version(conn)
            row = await workspace_row(conn, ref)
            if row.id == DEFAULT_WORKSPACE_ID:
                raise Conflict("The default workspace cannot be deleted")
            active = api_keys.c.status == ACTIVE  # revoked keys stay as rows (the log names them), inert
            for table, what, extra in ((providers, "providers", true()), (saved_configs, "configs", true()),
                                       (api_keys, "active API keys", active)):
                count = await conn.scalar(select(func.count()).select_from(table)
                                          .where(table.c.workspace_id == row.id, extra))
                if count:
                    raise Conflict(f"Workspace {row.slug} still has {count} {what}: delete them first")
            await conn.execute(delete(workspaces).where(workspaces.c.id == row.id))
            await delete_subject_limits(conn, "workspace", row.id)
            await record_event(conn, actor=actor, action="workspace.delete", resource_type="workspace",
                               resource_id=row.id, workspace_id=row.id, before=workspace_json(row))


async def resolve_workspace_id(engine: AsyncEngine, ref: str | None) -> str:
    """A workspace id from an id or slug (None: the default workspace); 404 when unknown."""
    if ref is None:
        return DEFAULT_WORKSPACE_ID
    async with engine.connect() as conn:
        return str((await workspace_row(conn, ref)).id)
