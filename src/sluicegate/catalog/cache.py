"""The in-memory catalog the hot path reads: an immutable snapshot swapped whole, never a database read.

Freshness: the process's reload loop (store/polling.py) reads the catalog version with the other snapshots'
at every interval and at once on a change notification from another process (store/notify.py), and
``follow`` reloads everything when it moved; writers in this process call ``refresh()`` directly. Catalogs are
small (tens to hundreds of providers), so a full reload is simpler and safer than incremental patches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import first_line
from ..store.polling import Follower
from ..store.state import read_catalog_version
from ..store.tables import CATALOG_STATE_ID, provider_headers, providers, saved_configs
from ..vault import Vault, VaultError, provider_header_aad
from .configs import stored_secret
from .entries import ResolvedProvider, provider_not_found

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class CatalogSnapshot:
    version: int = -1  # -1: never loaded
    providers: Mapping[str, ResolvedProvider] = field(default_factory=lambda: _EMPTY, repr=False)
    configs: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)
    config_workspaces: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)

    @property
    def allow_entries(self) -> tuple[str, ...]:
        """The SSRF allow-list entries the catalog's providers ask for (sorted, unique)."""
        return tuple(sorted({p.allow_entry for p in self.providers.values() if p.allow_entry}))


class CatalogKeyError(VaultError):
    """Stored credentials that do not decrypt; names every affected provider."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        listed = "; ".join(f"@{slug}: {reason}" for slug, reason in sorted(failures.items()))
        super().__init__(
            f"cannot decrypt the stored credentials of {len(failures)} provider(s): {listed}. Start with the "
            "master key this database was written with (SLUICEGATE_MASTER_KEY or <data-dir>/master.key), "
            "or re-enter the credentials: sluicegate providers update SLUG --header 'Name: value'"
        )
        self.failures = dict(failures)


Listener = Callable[[CatalogSnapshot], None]


@dataclass(frozen=True)
class _Sealed:
    version: int
    providers: list[Row[Any]]
    headers: list[Row[Any]]
    configs: dict[str, str]
    config_workspaces: dict[str, str]


class Catalog:
    def __init__(
        self,
        engine: AsyncEngine,
        vault: Vault,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self._engine = engine
        self._vault = vault
        self._log = logger or logging.getLogger("sluicegate.catalog")
        self._snapshot = CatalogSnapshot()
        self._listeners: list[Listener] = []
        self._lock = asyncio.Lock()
        self._failures: dict[str, str] = {}  # providers whose last reload did not decrypt (retried each poll)

    # ------------------------------------------------------------------------------------------- hot path

    def resolve(self, slug: str) -> ResolvedProvider | None:
        """The provider for ``slug`` (``"my-llm"`` or ``"@my-llm"``), or None."""
        return self._snapshot.providers.get(slug[1:] if slug.startswith("@") else slug)

    def require(self, slug: str) -> ResolvedProvider:
        """Like ``resolve``; an unknown slug raises the 400 ``Provider @x not found in the catalog``."""
        found = self.resolve(slug)
        if found is None:
            raise provider_not_found(slug.lstrip("@"))
        return found

    def saved_config(self, config_id: str) -> str | None:
        return self._snapshot.configs.get(config_id)

    def provider_workspace(self, slug: str) -> tuple[bool, str | None, str | None]:
        """(known, its workspace, its default model), for admission (pipeline/admit.py)."""
        found = self._snapshot.providers.get(slug)
        return (False, None, None) if found is None else (True, found.workspace_id, found.default_model)

    def config_workspace(self, config_id: str) -> tuple[bool, str | None]:
        workspace = self._snapshot.config_workspaces.get(config_id)
        return workspace is not None, workspace

    def slugs(self) -> frozenset[str]:
        return frozenset(self._snapshot.providers)

    @property
    def snapshot(self) -> CatalogSnapshot:
        return self._snapshot

    @property
    def version(self) -> int:
        return self._snapshot.version

    # ---------------------------------------------------------------------------------------- lifecycle

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(snapshot)`` after every change; at once too, if the catalog is already loaded."""
        self._listeners.append(listener)
        if self._snapshot.version >= 0:
            self._notify(listener)

    async def start(self) -> None:
        """Load strictly (undecryptable credentials raise CatalogKeyError); ``follower`` keeps it fresh."""
        await self.refresh(strict=True)

    @property
    def follower(self) -> Follower:
        """What the process's reload loop (store/polling.py) needs to keep this catalog fresh."""
        return Follower(CATALOG_STATE_ID, self.follow, self._log,
                        failed=lambda exc: f"catalog reload failed, serving the last catalog: {_first_line(exc)}",
                        recovered="catalog reload works again")

    async def refresh(self, *, strict: bool = False) -> bool:
        """Reload from the store; True when the snapshot changed. Without ``strict``, a provider that does
        not decrypt keeps its previous entry (or stays absent) and is logged by slug, never by value."""
        async with self._lock:
            self._vault.reload_if_changed()  # a rotation rewrote the key file: adopt the new active key
            sealed = await self._load()
            opened, failures = self._open(sealed)
            if failures and strict:
                raise CatalogKeyError(failures)
            if failures and failures != self._failures:
                self._log.error("%s", CatalogKeyError(failures))
            self._failures = failures
            old = self._snapshot
            self._warn_of_stored_secrets(old.configs, sealed.configs)
            if (
                old.version == sealed.version
                and dict(old.providers) == opened
                and dict(old.configs) == sealed.configs
                and dict(old.config_workspaces) == sealed.config_workspaces
            ):
                return False
            self._snapshot = CatalogSnapshot(
                sealed.version, MappingProxyType(opened), MappingProxyType(sealed.configs),
                MappingProxyType(sealed.config_workspaces),
            )
        for listener in list(self._listeners):
            self._notify(listener)
        return True

    # ----------------------------------------------------------------------------------------- internals

    def _warn_of_stored_secrets(self, before: Mapping[str, str], now: Mapping[str, str]) -> None:
        """Each saved config that holds a credential in clear, said once when it is loaded or changed (never
        the value): the operator moves the credential to a catalog provider and saves the config again."""
        for config_id, text in now.items():
            if before.get(config_id) != text and (where := stored_secret(text)) is not None:
                self._log.warning(
                    "saved config %s holds a credential in clear at %s (saved before credentials in configs were "
                    "refused): move it to a catalog provider's auth header and reference it as \"@slug\", then "
                    "save the config again", config_id, where)

    async def follow(self, version: int) -> None:
        """The store's catalog version is ``version``: reload if it moved (or a provider failed to decrypt)."""
        if version != self._snapshot.version or self._failures:
            await self.refresh()

    async def _load(self) -> _Sealed:
        h = provider_headers
        async with self._engine.connect() as conn:
            # Version first: data read after it is at least that new, so a write racing this load only
            # causes one more reload, never a stale snapshot labelled fresh.
            version = await read_catalog_version(conn)
            rows = (await conn.execute(select(providers))).all()
            headers = (await conn.execute(select(h).order_by(h.c.provider_id, h.c.position))).all()
            c = saved_configs
            config_rows = (await conn.execute(select(c.c.id, c.c.text, c.c.workspace_id))).all()
        configs = {r.id: r.text for r in config_rows}
        return _Sealed(version, list(rows), list(headers), configs, {r.id: r.workspace_id for r in config_rows})

    def _open(self, sealed: _Sealed) -> tuple[dict[str, ResolvedProvider], dict[str, str]]:
        by_provider: dict[int, list[Row[Any]]] = {}
        for header in sealed.headers:
            by_provider.setdefault(header.provider_id, []).append(header)
        opened: dict[str, ResolvedProvider] = {}
        failures: dict[str, str] = {}
        for row in sealed.providers:
            try:
                opened[row.slug] = _resolved(row, self._decrypt_all(row.id, by_provider.get(row.id, [])))
            except VaultError as exc:
                failures[row.slug] = str(exc)
                previous = self._snapshot.providers.get(row.slug)
                if previous is not None:
                    opened[row.slug] = previous
        return opened, failures

    def _decrypt_all(self, provider_id: int, headers: list[Row[Any]]) -> tuple[tuple[str, str], ...]:
        result = []
        for header in headers:
            try:
                result.append(
                    (
                        header.name,
                        self._vault.decrypt(header.ciphertext, provider_header_aad(provider_id, header.name)),
                    )
                )
            except VaultError as exc:
                raise VaultError(f"header {header.name!r}: {exc}") from None
        return tuple(result)

    def _notify(self, listener: Listener) -> None:
        try:
            listener(self._snapshot)
        except Exception:  # one faulty listener must not stop the others or the poll
            self._log.exception("catalog change listener failed")


def _resolved(row: Row[Any], headers: tuple[tuple[str, str], ...]) -> ResolvedProvider:
    return ResolvedProvider(
        slug=row.slug,
        spec=row.spec,
        custom_host=row.custom_host,
        headers=headers,
        models=tuple(row.models or ()),
        default_model=row.default_model,
        forward_headers=tuple(row.forward_headers or ()),
        allow_entry=row.allow_entry,
        workspace_id=row.workspace_id,
    )


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"
