"""Who signs in to the dashboard: a credential is verified into a ``SignIn`` (a display name and the same
``Principal`` the admin APIs act for), or refused.

Two verifiers, tried in turn (``first_match``): the admin token (every scope, every workspace) and gateway
API keys (``sg-…``), with their own scopes and workspace. A key must hold at least one scope a dashboard
page uses (``DASHBOARD_SCOPES``): an inference-only key cannot sign in. A session opened with a key asks
``renewal`` before each use, so revoking the key, its expiry or a change of its scopes counts at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ..errors import GatewayError, Unauthorized
from .admin_token import AdminAuth, hash_token
from .model import ADMIN, SCOPE_ACTIONS, Principal
from .registry import AccessRegistry
from .secrets import looks_like_key, shown_prefix

# The resources some dashboard page reads or writes (docs/dashboard.md maps each page to its scopes).
DASHBOARD_RESOURCES = ("logs", "analytics", "providers", "configs", "organisation_service_api_keys",
                       "organisation_user_api_keys", "workspace_service_api_keys", "workspace_user_api_keys")
DASHBOARD_SCOPES = frozenset(f"{resource}.{action}" for resource in DASHBOARD_RESOURCES
                             for action in SCOPE_ACTIONS[resource])


class SignInForbidden(GatewayError):
    status = 403


@dataclass(frozen=True)
class SignIn:
    name: str  # shown in the dashboard's header: never the credential itself
    principal: Principal
    workspace_slug: str | None = None  # the workspace a key belongs to, for the header
    admin_token_hash: str | None = None  # signed in with the admin token: its SHA-256 (the session ends with it)


Verifier = Callable[[str], Awaitable["SignIn | None"]]
# A sign-in's principal as of now, from its key id, or (key id None) the hash of the admin token it signed in
# with; None once it may not act (the key revoked or expired, the admin token reset or replaced).
Renewal = Callable[[str | None, str | None], Awaitable["Principal | None"]]


def admin_token_verifier(auth: AdminAuth) -> Verifier:
    async def verify(credential: str) -> SignIn | None:
        if looks_like_key(credential):
            return None
        return SignIn("admin", ADMIN, admin_token_hash=hash_token(credential)) if await auth.check(credential) else None

    return verify


def api_key_verifier(access: AccessRegistry) -> Verifier:
    """An ``sg-`` key from the in-memory snapshot. Revoked or expired: the registry's 401 says which."""

    async def verify(credential: str) -> SignIn | None:
        if not looks_like_key(credential):
            return None
        try:
            principal = access.authenticate(credential)
        except Unauthorized as exc:  # unknown, revoked or expired: the registry's words, never the key
            raise Unauthorized(f"Sign-in refused: {exc.message}") from None
        if principal.key_id is None:  # an admin token that happens to start with "sg-"
            return SignIn("admin", ADMIN, admin_token_hash=hash_token(credential))
        if not principal.scopes & DASHBOARD_SCOPES:
            raise SignInForbidden("Sign-in refused: this API key holds no scope the dashboard uses (for example "
                                  "logs.list, analytics.view, providers.list, configs.list, "
                                  "workspace_service_api_keys.list)")
        record = access.key_record(principal.key_id)
        space = access.workspace(principal.workspace_id)
        name = f"{record.name if record else 'API key'} ({shown_prefix(credential)}…)"
        return SignIn(name, principal, space.slug if space else None)

    return verify


def key_renewal(access: AccessRegistry, auth: AdminAuth) -> Renewal:
    async def renew(key_id: str | None, admin_token_hash: str | None) -> Principal | None:
        if key_id is not None:
            return access.current(key_id)
        return ADMIN if admin_token_hash is not None and await auth.holds(admin_token_hash) else None

    return renew


def first_match(verifiers: Iterable[Verifier]) -> Verifier:
    """Try each verifier in turn (the admin token, then API keys)."""
    chain = tuple(verifiers)

    async def verify(credential: str) -> SignIn | None:
        for candidate in chain:
            signed_in = await candidate(credential)
            if signed_in is not None:
                return signed_in
        return None

    return verify
