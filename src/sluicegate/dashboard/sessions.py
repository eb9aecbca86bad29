"""Dashboard sessions, kept in the gateway's store: every replica on the same database knows every sign-in,
and a restart signs nobody out.

A session id is 256 random bits sent only as an HttpOnly cookie; the store keeps the id's SHA-256, never the
id. Each session has its own CSRF token (synchronizer pattern), derived from the id with a keyed hash, so it
needs no column and a copy of the table yields neither: the page reads it from ``GET /dashboard/api/session``
and sends it as ``X-CSRF-Token`` with every state change. Sessions end at sign-out or ``ttl_s`` after
sign-in, whichever comes first; at most ``max_sessions`` live at once (the oldest goes first). The dashboard
is not the hot path: one primary-key read per dashboard API call.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..access.principal import SignIn
from ..store.access_tables import dashboard_sessions

DEFAULT_TTL_S = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    name: str  # who signed in, for the header: never the credential
    workspace_slug: str | None
    key_id: str | None  # None: the admin token (the guard renews the principal from it before each use)
    csrf_token: str
    expires_at: float  # wall clock, seconds
    admin_token_hash: str | None = None  # signed in with the admin token: that token's SHA-256

    def csrf_matches(self, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "replace"), self.csrf_token.encode())


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


def _csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode("utf-8", "replace"), b"sluicegate dashboard csrf", "sha256").hexdigest()


class SessionStore:
    def __init__(self, engine: AsyncEngine, ttl_s: float = DEFAULT_TTL_S, *, max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._max = max_sessions
        self._clock = clock

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    async def open(self, signed_in: SignIn) -> tuple[str, Session]:
        """A new session: (its id, for the cookie only; the session)."""
        session_id = secrets.token_urlsafe(32)
        session = Session(signed_in.name, signed_in.workspace_slug, signed_in.principal.key_id,
                          _csrf_token(session_id), self._clock() + self._ttl_s, signed_in.admin_token_hash)
        table = dashboard_sessions
        async with self._engine.begin() as conn:
            await conn.execute(delete(table).where(table.c.expires_at <= self._clock()))
            live = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            if live >= self._max:  # the oldest sign-ins go first
                oldest = select(table.c.id_hash).order_by(table.c.expires_at).limit(live - self._max + 1)
                await conn.execute(delete(table).where(table.c.id_hash.in_(oldest.scalar_subquery())))
            await conn.execute(insert(table).values(
                id_hash=_key(session_id), key_id=session.key_id, admin_token_hash=session.admin_token_hash,
                name=session.name[:512],
                workspace_slug=session.workspace_slug, expires_at=session.expires_at))
        return session_id, session

    async def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        table = dashboard_sessions
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(table).where(table.c.id_hash == _key(session_id)))).first()
        if row is None:
            return None
        if row.expires_at <= self._clock():
            await self.close(session_id)
            return None
        return Session(row.name, row.workspace_slug, row.key_id, _csrf_token(session_id), row.expires_at,
                       row.admin_token_hash)

    async def close(self, session_id: str | None) -> None:
        if session_id:
            async with self._engine.begin() as conn:
                await conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.id_hash == _key(session_id)))
