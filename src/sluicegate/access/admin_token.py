"""The admin token guarding ``/admin/api``.

``SLUICEGATE_ADMIN_TOKEN`` wins when set (nothing is stored). Otherwise a random token is generated on first
start, only its SHA-256 is stored, and the caller prints it once. A plain hash is enough here because the
generated token carries 256 random bits; there is nothing to brute-force that a slow KDF would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.tables import admin_tokens, utcnow

TOKEN_PREFIX = "sgadm_"  # recognisable in a leaked-secret scan
DEFAULT_NAME = "default"
MIN_ENV_TOKEN = 16
# What a refused admin call tells the caller (it never says which token would have been right).
TOKEN_HINT = (
    "The admin token is SLUICEGATE_ADMIN_TOKEN when the gateway was started with it; otherwise it was "
    "printed once in the gateway's output at its first start. Lost it? Run `sluicegate admin-token reset` "
    "with the gateway's data directory (SLUICEGATE_DATA_DIR) to get a new one."
)


class AdminTokenError(ValueError):
    """SLUICEGATE_ADMIN_TOKEN is unusable (too short to be a credential)."""


def hash_token(token: str) -> str:
    # A header's bytes that are not UTF-8 reach here as lone surrogates (aiohttp's surrogateescape): kept as
    # they are ("surrogatepass", as registry.py hashes), such a token hashes to what no real token does, so it
    # simply does not match (a 401) instead of failing to encode (a 500).
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_env_token(env_token: str | None) -> None:
    """Refuse an unusable SLUICEGATE_ADMIN_TOKEN (checked when the app is built, before any set-up)."""
    if not env_token:
        return
    if len(env_token) < MIN_ENV_TOKEN:
        raise AdminTokenError(f"SLUICEGATE_ADMIN_TOKEN must be at least {MIN_ENV_TOKEN} characters long")
    # A bearer token is sent as one run of visible ASCII: a token read from a file with its trailing
    # newline (or holding a space or a control character) started a server no client could sign in to.
    if not (env_token.isascii() and env_token.isprintable()) or " " in env_token:
        raise AdminTokenError("SLUICEGATE_ADMIN_TOKEN must be visible ASCII characters without spaces (a "
                              "trailing newline or space from a secret file is the usual cause)")


async def ensure_admin_token(engine: AsyncEngine, env_token: str | None) -> str | None:
    """Make sure an admin token exists; return it only if generated now (print it once, then forget it)."""
    if env_token:
        check_env_token(env_token)
        return None
    async with engine.connect() as conn:
        if await conn.scalar(select(admin_tokens.c.id).limit(1)) is not None:
            return None
    token = new_token()
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(admin_tokens).values(
                    name=DEFAULT_NAME, token_hash=hash_token(token), created_at=utcnow()
                )
            )
    except IntegrityError:  # another process started at the same moment and stored its own token
        return None
    return token


async def announce_admin_token(engine: AsyncEngine, env_token: str | None) -> None:
    """At start: make sure an admin token exists, and print it the one time it is generated."""
    generated = await ensure_admin_token(engine, env_token)
    if generated:  # shown once; only its hash is stored
        print(f"Admin token (shown once, keep it): {generated}", flush=True)


async def reset_admin_token(engine: AsyncEngine) -> str:
    """Replace every stored admin token with a new one (returned once; ``sluicegate admin-token reset``)."""
    token = new_token()
    async with engine.begin() as conn:
        await conn.execute(delete(admin_tokens))
        await conn.execute(
            insert(admin_tokens).values(name=DEFAULT_NAME, token_hash=hash_token(token), created_at=utcnow())
        )
    return token


class AdminAuth:
    """Checks a presented bearer token. Stored hashes are read per check: admin calls are rare, and a reset
    from the CLI then takes effect at once, with no cache to invalidate."""

    def __init__(self, engine: AsyncEngine, env_token: str | None = None) -> None:
        self._engine = engine
        self._env_hash = hash_token(env_token) if env_token else None

    async def check(self, presented: str | None) -> bool:
        if not presented:
            return False
        return await self.holds(hash_token(presented))

    async def holds(self, digest: str) -> bool:
        """Is ``digest`` the hash of a current admin token (a dashboard session asks on each use)?"""
        # Comparing fixed-length digests with compare_digest: timing reveals neither the token nor its length.
        if self._env_hash is not None:
            return hmac.compare_digest(digest, self._env_hash)
        async with self._engine.connect() as conn:
            stored = (await conn.execute(select(admin_tokens.c.token_hash))).scalars().all()
        matches = [hmac.compare_digest(digest, candidate) for candidate in stored]
        return any(matches)
