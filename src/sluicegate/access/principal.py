"""Who is calling the management surfaces: a credential is verified into a Principal, or refused.

The dashboard signs people in through a ``Verifier`` (credential → Principal or None), so that another kind
of credential (API keys with scopes, scoped to a workspace) plugs in beside the admin token without the
dashboard changing: it only ever asks "which scopes, which workspace".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from .admin_token import AdminAuth

# What the dashboard's pages need. The admin token holds every scope.
SCOPES = frozenset({
    "logs.read", "analytics.read", "providers.read", "providers.write", "configs.read", "configs.write",
})


@dataclass(frozen=True)
class Principal:
    name: str  # shown in the dashboard's header: never the credential itself
    scopes: frozenset[str]
    workspace: str | None = None  # None: every workspace (the admin token)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


Verifier = Callable[[str], Awaitable["Principal | None"]]


def admin_token_verifier(auth: AdminAuth) -> Verifier:
    async def verify(credential: str) -> Principal | None:
        return Principal("admin", SCOPES) if await auth.check(credential) else None

    return verify


def first_match(verifiers: Iterable[Verifier]) -> Verifier:
    """Try each verifier in turn (the admin token, then API keys once they exist)."""
    chain = tuple(verifiers)

    async def verify(credential: str) -> Principal | None:
        for candidate in chain:
            principal = await candidate(credential)
            if principal is not None:
                return principal
        return None

    return verify
