"""What a caller may use: pure checks over a Principal and the request's facts. Each refusal is a 403 that
names what is not allowed (never the key).

The request's facts come from the pipeline (pipeline/admit.py): the saved config it names, and for each
target of its config tree the provider (a catalog ``@slug`` with its workspace, or a provider id for
direct integration) and the model.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..config.model import Group, Node, Target
from ..errors import GatewayError
from .model import Permissions, Principal


class Forbidden(GatewayError):
    status = 403


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise Forbidden(f"This API key does not have the '{scope}' scope")


def _both(principal: Principal) -> tuple[Permissions, Permissions]:
    return principal.permissions, principal.workspace_permissions


def check_provider(principal: Principal, slug: str, workspace_id: str | None) -> None:
    """A catalog provider: it must belong to the key's workspace, and be in every allow-list that exists."""
    if principal.workspace_id is not None and workspace_id is not None and workspace_id != principal.workspace_id:
        raise Forbidden(f"This API key may not use provider @{slug}: it belongs to another workspace")
    for allowed in _both(principal):
        if allowed.providers is not None and slug not in allowed.providers:
            raise Forbidden(f"This API key may not use provider @{slug}")


def check_direct(principal: Principal, provider: str) -> None:
    if not all(p.direct_integration for p in _both(principal)):
        raise Forbidden(f"This API key may not use direct integration (provider '{provider[:64]}' named in "
                        "the request): use a catalog provider (@slug)")


def check_model(principal: Principal, model: str) -> None:
    for allowed in _both(principal):
        if allowed.models is not None and model not in allowed.models:
            raise Forbidden(f"This API key may not use model '{model[:128]}'")


def check_config(principal: Principal, config_id: str, workspace_id: str | None) -> None:
    if principal.workspace_id is not None and workspace_id is not None and workspace_id != principal.workspace_id:
        raise Forbidden(f"This API key may not use config {config_id}: it belongs to another workspace")
    for allowed in _both(principal):
        if allowed.configs is not None and config_id not in allowed.configs:
            raise Forbidden(f"This API key may not use config {config_id}")


def is_unrestricted(principal: Principal) -> bool:
    """No check below the workspace applies: an organisation key without restrictions (the admin token)."""
    return principal.workspace_id is None and all(
        p.providers is None and p.models is None and p.direct_integration for p in _both(principal))


def leaves(node: Node) -> Iterator[Target]:
    if isinstance(node, Target):
        yield node
        return
    assert isinstance(node, Group)
    for child in node.children:
        yield from leaves(child)
