"""Dashboard sessions, held in this process's memory (one process: a restart signs everyone out).

A session id is 256 random bits sent only as an HttpOnly cookie; the store keys sessions by the id's SHA-256,
so the ids themselves are not kept. Each session carries its own CSRF token (synchronizer pattern): the page
reads it from ``GET /dashboard/api/session`` and sends it as ``X-CSRF-Token`` with every state change.
Sessions end at sign-out or ``ttl_s`` after sign-in, whichever comes first; at most ``max_sessions`` live at
once (the oldest goes first).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..access.principal import SignIn

DEFAULT_TTL_S = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    signed_in: SignIn  # who, as at sign-in (the guard renews the principal before each use)
    csrf_token: str
    expires_at: float  # wall clock, seconds

    def csrf_matches(self, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "replace"), self.csrf_token.encode())


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class SessionStore:
    def __init__(self, ttl_s: float = DEFAULT_TTL_S, *, max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.time) -> None:
        self._ttl_s = ttl_s
        self._max = max_sessions
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def open(self, signed_in: SignIn) -> tuple[str, Session]:
        """A new session: (its id, for the cookie only; the session)."""
        self._prune()
        while len(self._sessions) >= self._max:
            del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(32)
        session = Session(signed_in, secrets.token_urlsafe(32), self._clock() + self._ttl_s)
        self._sessions[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        key = _key(session_id)
        session = self._sessions.get(key)
        if session is not None and session.expires_at <= self._clock():
            del self._sessions[key]
            return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(_key(session_id), None)

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]
