"""Who calls an admin surface (``/admin/api``, and Portkey's Admin API under ``/v1``): the admin token
(an organisation admin: every scope, every workspace) or a gateway API key with its scopes and workspace.

The credential comes from ``Authorization: Bearer …`` or ``x-portkey-api-key`` (what the portkey-ai SDK
sends). Keys are checked against the in-memory snapshot; the admin token against the store, so that
``sluicegate admin-token reset`` takes effect at once.
"""

from __future__ import annotations

from aiohttp import web

from ..access.admin_token import TOKEN_HINT, AdminAuth
from ..access.model import ADMIN, Principal
from ..access.policy import Forbidden, require_scope
from ..access.registry import AccessRegistry
from ..access.secrets import looks_like_key
from ..errors import GatewayError, Unauthorized
from ..header_names import auth_scheme_split

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("sluicegate_principal", Principal)
MISSING = ("Missing admin token: send Authorization: Bearer <admin token> (or an API key with the right scope). "
           + TOKEN_HINT)
INVALID = f"Invalid admin token. {TOKEN_HINT}"


def presented_credential(request: web.Request) -> str | None:
    scheme, token = auth_scheme_split(request.headers.get("Authorization", "").strip())
    if scheme.lower() == "bearer" and token:  # split as the inference routes split it (a tab too)
        return token
    return request.headers.get("x-portkey-api-key", "").strip() or None


async def authenticate(request: web.Request, auth: AdminAuth, access: AccessRegistry | None) -> Principal:
    token = presented_credential(request)
    if token is None:
        raise Unauthorized(MISSING)
    if looks_like_key(token):
        if access is None:
            raise Unauthorized(INVALID)
        return access.authenticate(token)
    if await auth.check(token):
        return ADMIN
    raise Unauthorized(INVALID)


def principal_of(request: web.Request) -> Principal:
    return request.get(PRINCIPAL, ADMIN)


def require(request: web.Request, scope: str) -> Principal:
    principal = principal_of(request)
    require_scope(principal, scope)
    return principal


def check_workspace(principal: Principal, workspace_id: str | None, what: str) -> None:
    """A workspace key acts on its own workspace's records only; others are as if absent (404)."""
    if not principal.sees_workspace(workspace_id):
        raise _NotYours(f"{what} not found")


def workspace_for_write(principal: Principal, asked: str | None) -> str | None:
    """The workspace a new record goes to: a workspace key's own (naming another is refused)."""
    if principal.workspace_id is None:
        return asked
    if asked not in (None, principal.workspace_id):
        raise Forbidden("This API key may only act on its own workspace")
    return principal.workspace_id


class _NotYours(GatewayError):
    status = 404
