"""The in-memory access snapshot the hot path reads: API keys by the digest of their secret, workspaces,
the admin token's hashes. Never a database read per request.

Like the catalog: the process's reload loop (store/polling.py) hands ``follow`` the access version at every
interval (and at once on a change notification, store/notify.py), which reloads everything when it moved;
admin writes in this process call ``refresh()``. A created or revoked key is
therefore honoured by every server within milliseconds on PostgreSQL, within one poll otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import Unauthorized
from ..store.access_tables import ACCESS_STATE_ID, api_keys, workspaces
from ..store.polling import Follower
from ..store.state import read_access_version
from ..store.tables import admin_tokens
from .model import ADMIN, REVOKED, KeyDefaults, KeyRecord, Permissions, Principal, stored_metadata
from .secrets import KeyHasher

VERIFIED_CACHE_MAX = 10_000  # presented secrets whose digest matched a key: the HMAC is skipped next time
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    id: str
    slug: str
    permissions: Permissions
    metadata: Mapping[str, Any]  # the workspace's defaults.metadata (under a key's and the request's)


@dataclass(frozen=True)
class AccessSnapshot:
    version: int = -1
    keys: Mapping[str, KeyRecord] = field(default_factory=lambda: _EMPTY)  # by digest of the secret
    principals: Mapping[str, Principal] = field(default_factory=lambda: _EMPTY)  # by digest, built once
    digests: Mapping[str, str] = field(default_factory=lambda: _EMPTY)  # key id → digest of its secret
    workspaces: Mapping[str, WorkspaceInfo] = field(default_factory=lambda: _EMPTY)
    admin_hashes: frozenset[str] = frozenset()  # sha256 of the stored admin tokens

    @property
    def has_keys(self) -> bool:
        return bool(self.keys)


class AccessRegistry:
    def __init__(self, engine: AsyncEngine, hasher: KeyHasher, *, env_admin_token: str | None = None,
                 logger: logging.Logger | None = None) -> None:
        self._engine = engine
        self._hasher = hasher
        self._env_admin_hash = _sha256(env_admin_token) if env_admin_token else None
        self._log = logger or logging.getLogger("sluicegate.access")
        self._snapshot = AccessSnapshot()
        self._lock = asyncio.Lock()
        # secret → digest, for keys that verified (never for unknown values, which must not fill it); the
        # digest is still looked up in the current snapshot, so a revocation counts at once.
        self._verified: dict[str, str] = {}

    @property
    def hasher(self) -> KeyHasher:
        return self._hasher

    @property
    def snapshot(self) -> AccessSnapshot:
        return self._snapshot

    # ------------------------------------------------------------------------------------------- hot path

    def authenticate(self, presented: str) -> Principal:
        """The caller behind ``presented`` (an API key or the admin token), or 401 (never echoing it)."""
        snapshot = self._snapshot
        digest = self._verified.get(presented) or self._hasher.digest(presented)
        principal = snapshot.principals.get(digest)
        if principal is not None:
            if presented not in self._verified:
                if len(self._verified) >= VERIFIED_CACHE_MAX:
                    self._verified.clear()
                self._verified[presented] = digest
            record = snapshot.keys[digest]
            if record.status == REVOKED:
                raise Unauthorized("This API key has been revoked")
            if record.expired():
                raise Unauthorized("This API key has expired")
            return principal
        if self._is_admin_token(presented, snapshot):
            return ADMIN
        raise Unauthorized("Invalid API key")

    def _is_admin_token(self, presented: str, snapshot: AccessSnapshot) -> bool:
        digest = _sha256(presented)
        if self._env_admin_hash is not None:
            return hmac.compare_digest(digest, self._env_admin_hash)
        return digest in snapshot.admin_hashes

    def workspace(self, workspace_id: str | None) -> WorkspaceInfo | None:
        return self._snapshot.workspaces.get(workspace_id) if workspace_id else None

    def key_record(self, key_id: str) -> KeyRecord | None:
        """A key by its id, as the current snapshot holds it (revoked and expired ones included)."""
        snapshot = self._snapshot
        digest = snapshot.digests.get(key_id)
        return snapshot.keys.get(digest) if digest is not None else None

    def current(self, key_id: str) -> Principal | None:
        """The key's caller as of now (its scopes may have changed), or None once it is revoked, expired or
        gone: what a session opened with that key must ask before each use."""
        snapshot = self._snapshot
        digest = snapshot.digests.get(key_id)
        record = snapshot.keys.get(digest) if digest is not None else None
        if record is None or record.status == REVOKED or record.expired():
            return None
        return snapshot.principals.get(digest) if digest is not None else None

    # ---------------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load the snapshot; ``follower`` keeps it fresh."""
        await self.refresh()

    @property
    def follower(self) -> Follower:
        """What the process's reload loop (store/polling.py) needs to keep this snapshot fresh."""
        return Follower(ACCESS_STATE_ID, self.follow, self._log,
                        failed=lambda exc: f"access reload failed, keeping the last snapshot: {type(exc).__name__}")

    async def refresh(self) -> None:
        async with self._lock:
            async with self._engine.connect() as conn:
                version = await read_access_version(conn)  # first: data read after it is at least as new
                key_rows = (await conn.execute(select(api_keys))).all()
                ws_rows = (await conn.execute(select(workspaces))).all()
                admin = frozenset((await conn.execute(select(admin_tokens.c.token_hash))).scalars())
            spaces = {row.id: _workspace(row) for row in ws_rows}
            keys = {row.key_hash: _record(row) for row in key_rows}
            principals = {digest: _principal(record, spaces) for digest, record in keys.items()}
            digests = {record.id: digest for digest, record in keys.items()}
            self._snapshot = AccessSnapshot(version, MappingProxyType(keys), MappingProxyType(principals),
                                            MappingProxyType(digests), MappingProxyType(spaces), admin)

    async def follow(self, version: int) -> None:
        """The store's access version is ``version``: reload if it moved."""
        if version != self._snapshot.version:
            await self.refresh()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _workspace(row: Any) -> WorkspaceInfo:
    metadata = row.defaults.get("metadata") if isinstance(row.defaults, dict) else None
    return WorkspaceInfo(row.id, row.slug, Permissions.from_json(row.permissions), stored_metadata(metadata))


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        id=row.id, type=row.type, sub_type=row.sub_type, name=row.name, workspace_id=row.workspace_id,
        scopes=frozenset(row.scopes or ()), defaults=KeyDefaults.stored(row.defaults),
        permissions=Permissions.from_json(row.permissions),
        expires_at=row.expires_at.timestamp() if row.expires_at else None, status=row.status,
    )


def _principal(record: KeyRecord, spaces: Mapping[str, WorkspaceInfo]) -> Principal:
    space = spaces.get(record.workspace_id) if record.workspace_id else None
    metadata = {**(space.metadata if space else {}), **record.defaults.metadata}
    defaults = KeyDefaults(record.defaults.config_id, MappingProxyType(metadata))
    return Principal(actor=record.id, workspace_id=record.workspace_id, scopes=record.scopes,
                     permissions=record.permissions,
                     workspace_permissions=space.permissions if space else Permissions(),
                     defaults=defaults, key_id=record.id)
