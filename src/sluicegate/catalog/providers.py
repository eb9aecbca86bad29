"""Provider CRUD against the store; header values go through the vault and come back masked only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import BadRequest, Conflict
from ..store.limit_tables import delete_subject_limits
from ..store.state import bump_catalog_version
from ..store.tables import provider_headers, providers, utcnow
from ..vault import Vault, key_id_of, provider_header_aad
from ..vault.guard import refuse_sealing_beside_lost_keys
from .configs import configs_referencing
from .entries import (
    MAX_HEADERS,
    CheckHost,
    NotInCatalog,
    ProviderFields,
    ProviderInput,
    ProviderPatch,
    ProviderView,
    duplicate_provider,
    mask_secret,
    validate_fields,
    validate_header_name,
    validate_header_value,
    validate_slug,
)

_H = provider_headers


class ProviderRepository:
    """Every write bumps the catalog version first, in the same transaction (see store/state.py)."""

    def __init__(self, engine: AsyncEngine, vault: Vault, *, check_host: CheckHost | None = None) -> None:
        self._engine = engine
        self._vault = vault
        self._check_host = check_host

    @property
    def check_host(self) -> CheckHost | None:
        return self._check_host

    async def add(self, item: ProviderInput) -> ProviderView:
        now = utcnow()
        try:
            async with self._engine.begin() as conn:
                await bump_catalog_version(conn)
                if await conn.scalar(select(providers.c.id).where(providers.c.slug == item.slug)) is not None:
                    raise duplicate_provider(item.slug)
                if item.headers:  # not beside secrets this key file cannot open (vault/guard.py)
                    await refuse_sealing_beside_lost_keys(conn, self._vault)
                values = {
                    **_column_values(item.fields),
                    "slug": item.slug,
                    "workspace_id": item.workspace_id,
                    "integration_id": item.integration_id,
                    "created_at": now,
                    "updated_at": now,
                }
                result = await conn.execute(insert(providers).values(**values))
                provider_id = result.inserted_primary_key[0]  # type: ignore[index]  # an INSERT has one
                for position, (name, value) in enumerate(item.headers):
                    await conn.execute(insert(_H).values(**self._sealed(provider_id, position, name, value)))
        except IntegrityError:  # a concurrent add of the same slug won the race
            raise duplicate_provider(item.slug) from None
        return await self.get(item.slug)

    async def update(self, slug: str, patch: ProviderPatch) -> ProviderView:
        async with self._engine.begin() as conn:
            await bump_catalog_version(conn)
            row = await _provider_row(conn, slug)
            fields = validate_fields(patch.apply(_fields_of(row)), self._check_host)
            await conn.execute(
                update(providers)
                .where(providers.c.id == row.id)
                .values(**_column_values(fields), updated_at=utcnow())
            )
            await self._merge_headers(conn, row.id, patch.headers)
        return await self.get(slug)

    async def remove(self, slug: str) -> None:
        async with self._engine.begin() as conn:
            await bump_catalog_version(conn)
            row = await _provider_row(conn, slug)
            users = await configs_referencing(conn, slug)
            if users:
                raise Conflict(f"Provider @{slug} is used by saved config(s): {', '.join(users)}")
            # Explicit, rather than trusting ON DELETE CASCADE (SQLite enforces it only with a pragma).
            await conn.execute(delete(_H).where(_H.c.provider_id == row.id))
            await conn.execute(delete(providers).where(providers.c.id == row.id))
            await delete_subject_limits(conn, "provider", row.slug)  # a new @slug must not inherit them

    async def get(self, slug: str) -> ProviderView:
        async with self._engine.connect() as conn:
            row = await _provider_row(conn, slug)
            headers = await conn.execute(
                select(_H.c.name, _H.c.masked).where(_H.c.provider_id == row.id).order_by(_H.c.position)
            )
            return _view(row, tuple((h.name, h.masked) for h in headers))

    async def list(self, *, workspace_id: str | None = None) -> list[ProviderView]:
        """Every provider, or those of one workspace."""
        stmt = select(providers).order_by(providers.c.slug)
        if workspace_id is not None:
            stmt = stmt.where(providers.c.workspace_id == workspace_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
            headers = await conn.execute(
                select(_H.c.provider_id, _H.c.name, _H.c.masked).order_by(_H.c.provider_id, _H.c.position)
            )
        by_provider: dict[int, list[tuple[str, str]]] = {}
        for h in headers:
            by_provider.setdefault(h.provider_id, []).append((h.name, h.masked))
        return [_view(row, tuple(by_provider.get(row.id, ()))) for row in rows]

    async def slugs(self) -> frozenset[str]:
        async with self._engine.connect() as conn:
            return frozenset((await conn.execute(select(providers.c.slug))).scalars())

    async def _merge_headers(
        self, conn: AsyncConnection, provider_id: int, changes: tuple[tuple[str, str | None], ...]
    ) -> None:
        """Apply a header merge patch: set (replace in place, or append) or, for a None value, remove."""
        lowered = [validate_header_name(name, "headers") for name, _ in changes]
        if len(set(lowered)) != len(lowered):
            raise BadRequest("headers: the same header is given twice (names ignore case)")
        query = select(_H.c.id, _H.c.name, _H.c.position).where(_H.c.provider_id == provider_id)
        rows = {row.name.lower(): row for row in (await conn.execute(query)).all()}
        names = set(rows)
        if any(value is not None for _, value in changes):  # not beside secrets this key cannot open
            await refuse_sealing_beside_lost_keys(conn, self._vault)
        next_position = max((row.position for row in rows.values()), default=-1) + 1
        for (name, value), lower in zip(changes, lowered, strict=True):
            current = rows.get(lower)
            if value is None:
                names.discard(lower)
                if current is not None:
                    await conn.execute(delete(_H).where(_H.c.id == current.id))
                continue
            validate_header_value(name, value)
            names.add(lower)
            if current is not None:
                sealed = self._sealed(provider_id, current.position, name, value)
                await conn.execute(update(_H).where(_H.c.id == current.id).values(**sealed))
            else:
                await conn.execute(insert(_H).values(**self._sealed(provider_id, next_position, name, value)))
                next_position += 1
        if len(names) > MAX_HEADERS:
            raise BadRequest(f"headers: at most {MAX_HEADERS} headers")

    def _sealed(self, provider_id: int, position: int, name: str, value: str) -> dict[str, Any]:
        token = self._vault.encrypt(value, provider_header_aad(provider_id, name))
        return {
            "provider_id": provider_id,
            "position": position,
            "name": name,
            "ciphertext": token,
            "key_id": key_id_of(token),
            "masked": mask_secret(value),
        }


async def _provider_row(conn: AsyncConnection, slug: str) -> Row[Any]:
    row = (await conn.execute(select(providers).where(providers.c.slug == slug))).first()
    if row is None:
        raise NotInCatalog(f"Provider @{validate_slug(slug)} not found in the catalog")
    return row


def _fields_of(row: Row[Any]) -> ProviderFields:
    return ProviderFields(
        spec=row.spec,
        custom_host=row.custom_host,
        models=tuple(row.models or ()),
        default_model=row.default_model,
        forward_headers=tuple(row.forward_headers or ()),
        allow_entry=row.allow_entry,
        notes=row.notes,
    )


def _column_values(fields: ProviderFields) -> dict[str, Any]:
    return {
        "spec": fields.spec,
        "custom_host": fields.custom_host,
        "models": list(fields.models),
        "default_model": fields.default_model,
        "forward_headers": list(fields.forward_headers),
        "allow_entry": fields.allow_entry,
        "notes": fields.notes,
    }


def _view(row: Row[Any], headers: tuple[tuple[str, str], ...]) -> ProviderView:
    return ProviderView(row.slug, _fields_of(row), headers, row.created_at, row.updated_at, row.workspace_id,
                        row.integration_id)
